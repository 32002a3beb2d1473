"""Each dataset's recommended settings, and switching datasets: kept per dataset, whatever the order."""

import itertools

import pytest

from vae_core.config import TrainConfig, check_compatible
from vae_core.data import DATASETS
from vae_core.data.recommended import (
    PER_DATASET,
    RECOMMENDED,
    changes,
    recommended,
    switch,
)
from vae_core.maths.models import build_model


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_recommendation_is_a_valid_config_for_its_data(name):
    assert set(RECOMMENDED[name]) <= set(PER_DATASET)
    config = TrainConfig(dataset=name, **recommended(name, DATASETS[name].kind))
    check_compatible(config, DATASETS[name].kind == "image")


SAMPLE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "shapes": (1, 32, 32)}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_recommended_model_builds_within_the_limits(name):
    config = TrainConfig(dataset=name, **recommended(name, DATASETS[name].kind))
    build_model(config, SAMPLE_SHAPES.get(name, (2,)))  # a model too big for the server raises


def test_the_defaults_are_the_digits_recommendation():
    """The app opens on digits with the defaults: they must be what digits recommends, or the first switch
    back to digits would change settings nobody touched."""
    defaults = TrainConfig()
    assert recommended("digits", "image") == {field: getattr(defaults, field) for field in PER_DATASET}


def test_recommendations_stay_within_the_servers_limits(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "3")
    monkeypatch.setenv("VAE_LAB_MAX_LATENT", "2")
    for name, info in DATASETS.items():
        values = recommended(name, info.kind)
        assert values["epochs"] <= 3 and values["latent_dim"] <= 2


def test_an_upload_starts_from_the_defaults_of_its_kind():
    assert recommended("upload:cats.zip", "image") == recommended("digits", "image")


def _session(order, edits):
    """Click through `order` from digits, changing `edits[name]` while on `name`; the settings each dataset
    ends up with when chosen last."""
    memory, current, on = {}, recommended("digits", "image"), "digits"
    for name in order:
        current = {**current, **edits.get(on, {})}
        current = switch(current, name, DATASETS[name].kind, memory, old=on)
        on = name
    current = {**current, **edits.get(on, {})}
    return {name: switch(current, name, DATASETS[name].kind, dict(memory), old=on) for name in DATASETS}


def test_the_order_of_clicking_does_not_matter():
    edits = {"shapes": {"architecture": "conv", "beta": 4.0}, "moons": {"latent_dim": 3}}
    names = ["shapes", "moons", "digits", "circles"]
    outcomes = [_session(list(order) + ["digits"], edits) for order in itertools.permutations(names)]
    assert all(outcome == outcomes[0] for outcome in outcomes)
    assert outcomes[0]["shapes"]["architecture"] == "conv" and outcomes[0]["shapes"]["beta"] == 4.0
    assert outcomes[0]["moons"]["latent_dim"] == 3
    assert outcomes[0]["digits"] == recommended("digits", "image")  # nothing the others did stuck to digits
    assert outcomes[0]["circles"] == recommended("circles", "points")


def test_shapes_with_conv_then_moons_then_back():
    """The issue's clicks: shapes + conv → Two moons → back to shapes, then digits."""
    memory = {}
    on_shapes = {**recommended("shapes", "image"), "architecture": "conv"}
    on_moons = switch(on_shapes, "moons", "points", memory, old="shapes")
    assert on_moons["recon_loss"] == "mse" and on_moons["architecture"] == "mlp"
    assert "architecture conv → mlp" in changes(on_shapes, on_moons)
    back = switch(on_moons, "shapes", "image", memory, old="moons")
    assert back == on_shapes
    digits = switch(back, "digits", "image", memory, old="shapes")
    assert digits["recon_loss"] == "bce" and digits == recommended("digits", "image")


def test_changes_are_said_in_words():
    before = {**recommended("digits", "image"), "hidden": [64, 32], "augment": True}
    after = {**before, "recon_loss": "mse", "hidden": [128], "augment": False, "lr": 0.001}
    assert changes(before, after) == ["hidden widths 64, 32 → 128", "loss bce → mse", "learning rate 0.002 → 0.001",
                                      "augmentation on → off"]
