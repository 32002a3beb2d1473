import json

import pytest

from vae_core.config import ConfigError, TrainConfig


def test_defaults_are_valid_and_round_trip_through_json():
    config = TrainConfig(beta=4.0, hidden=[64, 32], batch_norm=True)
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(config.to_json())["hidden"] == [64, 32]


@pytest.mark.parametrize("field,value", [
    ("beta", -1.0), ("latent_dim", 0), ("latent_dim", 65), ("lr", 0.0), ("epochs", 0), ("dropout", 0.95),
    ("batch_size", 0), ("hidden", []), ("hidden", [0]), ("free_bits", 11.0), ("seed", -1),
])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("field,value", [
    ("optimizer", "adagrad"), ("lr_schedule", "linear"), ("activation", "sigmoid"), ("recon_loss", "l1"),
    ("architecture", "rnn"), ("mode", "gan"), ("beta_schedule", "random"),
])
def test_unknown_choices_list_the_allowed_ones(field, value):
    with pytest.raises(ConfigError, match=f"{field}: must be one of"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("data", [
    {"beta": "4"}, {"epochs": 2.5}, {"batch_norm": 1}, {"hidden": "256"}, {"hidden": [1.5]}, {"lr": float("nan")},
    {"epochs": True}, {"beta": 1e308 * 10},
])
def test_wrong_types_from_untrusted_data_are_refused(data):
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(data)


def test_unknown_keys_are_refused_when_strict_and_ignored_otherwise():
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({"beta": 2.0, "rm_rf": True})
    assert TrainConfig.from_dict({"beta": 2.0, "rm_rf": True}, strict=False).beta == 2.0


def test_integers_are_accepted_where_floats_belong():
    assert TrainConfig.from_dict({"beta": 4}).beta == 4.0


def test_bad_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{beta: 4")
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_json("[1, 2]")


def test_latent_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_LATENT", "8")
    with pytest.raises(ConfigError, match="latent_dim"):
        TrainConfig(latent_dim=9)
    assert TrainConfig(latent_dim=8).latent_dim == 8


def test_epoch_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "10")
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=11)


def test_nesterov_needs_sgd_with_momentum():
    """torch refuses Nesterov without momentum in words that do not name the setting; the config names it."""
    with pytest.raises(ConfigError, match="nesterov: needs a momentum above 0"):
        TrainConfig(optimizer="sgd", momentum=0.0, nesterov=True)
    assert TrainConfig(optimizer="sgd", momentum=0.5, nesterov=True).nesterov
