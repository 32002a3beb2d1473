"""The rule table of settings that do nothing (vae_core.controls), and the CLI's warnings from it."""

import dataclasses
from types import SimpleNamespace

from vae_core import controls
from vae_core.__main__ import main
from vae_core.config import TrainConfig

FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _why(**settings) -> dict[str, str]:
    return {name: rule.reason for name, rule in controls.silenced(TrainConfig(**settings)).items()}


def test_every_rule_names_settings_and_says_why():
    for rule in controls.RULES:
        assert set(rule.settings) <= FIELDS and rule.reason.strip()
        assert rule.insist is None or rule.caption  # an override needs a caption to sit under


def test_the_objective_and_the_mode_silence_what_they_make_irrelevant():
    ae = _why(mode="ae")
    for name in ("beta", "beta_schedule", "capacity", "capacity_gamma", "free_bits"):
        assert ae[name] == "an autoencoder has no KL term"
    capacity = _why(capacity=True)
    assert capacity["beta"] == capacity["free_bits"] == "the capacity objective sets the KL weight (γ)"
    assert "capacity_gamma" not in capacity and "beta" not in _why()  # a plain VAE uses β
    assert "mse_sigma" in _why() and "mse_sigma" not in _why(recon_loss="mixed")
    assert "mixed_weight" in _why(recon_loss="mse") and "mixed_weight" not in _why(recon_loss="mixed")
    assert {"beta_cycles", "beta_cycle_ratio"} <= set(_why(beta_schedule="warmup"))
    assert "beta_warmup_epochs" not in _why(beta_schedule="warmup")
    assert "lr_gamma" in _why(lr_schedule="cosine") and "lr_gamma" not in _why(lr_schedule="plateau")
    assert "momentum" in _why(optimizer="adam") and "momentum" not in _why(optimizer="rmsprop")
    assert "augment" in _why(dataset="moons", recon_loss="mse") and "augment" not in _why()


def test_a_value_that_validation_refuses_is_never_hidden():
    """The page's widgets can hold such values (rules read them unvalidated): their error must name a control
    the user can see."""
    assert "lr_warmup_epochs" in _why(lr_schedule="onecycle")
    for refused in ({"lr_schedule": "onecycle", "lr_warmup_epochs": 1.0}, {"optimizer": "adam", "nesterov": True}):
        widgets = SimpleNamespace(**{**TrainConfig().to_dict(), **refused})
        assert not set(refused) & set(controls.silenced(widgets)) - {"lr_schedule", "optimizer"}


def test_flips_on_digits_are_advice_the_user_can_overrule():
    rule = controls.silenced(TrainConfig(augment=True))["aug_flip"]
    assert rule.insist and "digit" in rule.caption
    assert "aug_flip" not in _why(dataset="fashion-mnist", augment=True)  # a mirrored shirt is still a shirt


def test_the_cli_warns_once_per_setting_moved_from_its_default_that_does_nothing(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--hidden", "16", "--mode", "ae", "--beta", "4", "--free-bits", "0.5",
                 "--runs-dir", str(tmp_path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: --beta 4.0: not used: an autoencoder has no KL term",
                        "warning: --free-bits 0.5: not used: an autoencoder has no KL term"]
    assert controls.ignored(TrainConfig(augment=True, aug_flip=True))["aug_flip"].insist
    assert not controls.ignored(TrainConfig(mode="ae"))  # silenced, but left at their defaults: nothing to say
