"""Configuration is untrusted input: from a dict (JSON, a saved run, a draft) or from a shared link.

Any dict gives a valid TrainConfig or a ConfigError, never another exception; any link renders the
Train page, names what it ignored and falls back to defaults.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vae_core.config import ConfigError, TrainConfig

from reliability_helpers import errors, page_ok, warnings

FIELDS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}

json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**4000, max_value=2**4000)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=8)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


def plausible(type_name: str):
    """Values near what a field expects: right type and wrong range, wrong type, edge cases."""
    return {
        "int": st.integers(-10, 5000) | st.integers(),
        "float": st.floats(-10, 5000) | st.floats() | st.integers(-5, 100),
        "bool": st.booleans() | st.integers(0, 1),
        "str": st.sampled_from(["digits", "moons", "mlp", "conv", "vae", "ae", "bce", "mse", "mixed", "adam",
                                "sgd", "cosine", "onecycle", "plateau", "warmup", "cyclical", "relu", "tanh", ""])
               | st.text(max_size=20),
        "list[int]": st.lists(st.integers(-2, 5000), max_size=8) | st.tuples(st.integers(1, 64)),
    }[type_name] | json_values


field_values = st.one_of(*[st.tuples(st.just(name), plausible(kind)) for name, kind in FIELDS.items()])
config_dicts = st.builds(
    lambda known, other: {**dict(known), **other},
    st.lists(field_values, max_size=12),
    st.dictionaries(st.text(max_size=12) | st.integers() | st.booleans() | st.none(), json_values, max_size=3))


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_dicts, st.booleans())
def test_any_dict_gives_a_valid_config_or_a_config_error(data, strict):
    try:
        config = TrainConfig.from_dict(data, strict=strict)
    except ConfigError as exc:
        assert str(exc) and len(str(exc)) < 2000
        return
    config.validate()
    assert TrainConfig.from_json(config.to_json()) == config


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_any_json_text_gives_a_valid_config_or_a_config_error(text):
    try:
        TrainConfig.from_json(text).validate()
    except ConfigError:
        pass


@pytest.mark.parametrize("data", [
    {1: 2, "beta": 2.0},  # keys of mixed types could not be sorted
    {"lr": 10**400},  # an int too large for a float
    {"epochs": 10**5000},  # an int too long to print
    {"hidden": [10**5000]},
    {10**5000: 1},
    {"beta": [[[[[[[[1]]]]]]]]},
    {"dataset": "x" * 10**6},
    {"hidden": [1] * 100_000},
])
def test_extreme_values_are_config_errors(data):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    assert len(str(info.value)) < 300


# --- the shared link, through the Train page ------------------------------------------------------
LINKS = {
    "wrong types": {"beta": "lots", "latent_dim": "2.5", "dropout": "abc", "hidden": "a,b", "batch_norm": "maybe",
                    "seed": "-5"},
    "out of range": {"epochs": "100000", "latent_dim": "0", "lr": "1e9", "batch_size": "0", "free_bits": "-1",
                     "beta_cycle_ratio": "2"},
    "huge numbers": {"epochs": "9" * 4000, "batch_size": "9" * 5000, "lr": "1e308", "beta": "1e400",
                     "seed": "99999999999999999999"},
    "not finite": {"beta": "inf", "lr": "-inf", "mse_sigma": "nan"},
    "empty values": {"beta": "", "hidden": "", "activation": "", "epochs": " "},
    "hostile text": {"activation": "<script>alert(1)</script>", "dataset": "../../etc/passwd",
                     "optimizer": "ａｄａｍ", "recon_loss": "bce\x00", "lr_schedule": "' OR 1=1 --"},
    "unknown keys": {**{f"key{i}": "x" * 50 for i in range(300)}, "__class__": "1", "run_dir": "/etc"},
    "conflicting settings": {"nesterov": "true", "lr_schedule": "onecycle", "lr_warmup_epochs": "3"},
    "upload name": {"dataset": "upload:evil.npz"},
    "too many layers": {"hidden": ",".join(["64"] * 50)},
}


@pytest.mark.parametrize("case", list(LINKS))
def test_a_hostile_link_renders_warns_and_falls_back(new_app, case):
    at = new_app()
    for key, value in LINKS[case].items():
        at.query_params[key] = value
    at.run()
    page_ok(at)
    assert at.title[0].value == "Train a VAE"
    known_bad = [k for k in LINKS[case] if k in FIELDS]
    shown = " ".join(warnings(at))
    if known_bad:
        assert shown.count("Ignored a setting from the link") >= 1
        assert any(name in shown for name in known_bad)
    config = TrainConfig.from_dict(at.session_state["draft"])  # what the page now holds is valid
    assert not errors(at) and not at.button(key="start").disabled
    assert all(k in FIELDS for k in at.query_params)  # the URL was rewritten from the valid config
    for key, value in at.query_params.items():
        assert value != LINKS[case].get(key) or getattr(config, key) != TrainConfig().__getattribute__(key)
    at.run()  # and it keeps working: the warnings were shown once
    page_ok(at)
    assert not any("Ignored a setting" in w for w in warnings(at))


def test_a_link_with_the_largest_valid_numbers_renders_with_bounded_work(new_app, monkeypatch):
    import random

    from vae_core.maths import schedules
    steps = []
    real = schedules.LRSchedule.after_step

    def counted(self):
        steps.append(1)
        if len(steps) > 60_000:
            raise RuntimeError("stop: the preview is simulating every training step")
        real(self)
    monkeypatch.setattr(schedules.LRSchedule, "after_step", counted)
    at = new_app()
    at.query_params.update({"epochs": "500", "batch_size": "1", "lr_schedule": "cosine",
                            "seed": str(random.randrange(1, 2**31 - 1))})  # a seed no cached preview has
    at.run()
    page_ok(at)
    assert len(steps) <= 50_000, f"one page render simulated {len(steps):,} schedule steps"
