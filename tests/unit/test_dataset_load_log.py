"""load_dataset logs a line when it really loads a dataset (a cache miss) and none when its cache answers."""

import logging

from vae_core.data import load_dataset

LOGGER = "vae_core.data.registry"


def test_a_miss_logs_one_line_and_a_hit_none(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    seed = 90417  # a split no other test asks for, so the first call is a miss
    first = load_dataset("moons", seed=seed)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1 and lines[0].startswith(f"loaded dataset moons (seed {seed})"), lines
    caplog.clear()
    assert load_dataset("moons", seed=seed) is first
    assert not [r for r in caplog.records if r.name == LOGGER]
