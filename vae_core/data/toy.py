"""2-D toy point sets (kind "points"), scaled to lie roughly in [-3, 3]."""

from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset, from_splits

N_TRAIN, N_VAL, N_TEST = 3000, 500, 500

# scikit-learn is imported by the generators that use it (bench/README.md, "Start-up imports").


def _moons(n: int, seed: int):
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=0.08, random_state=seed)
    return (x - [0.5, 0.25]) * 1.8, y, ("upper moon", "lower moon")


def _circles(n: int, seed: int):
    from sklearn.datasets import make_circles

    x, y = make_circles(n, noise=0.05, factor=0.5, random_state=seed)
    return x * 2.5, y, ("outer circle", "inner circle")


def _gaussians(n: int, seed: int):
    rng = np.random.RandomState(seed)
    component = rng.randint(0, 8, size=n)
    angle = component * (2 * np.pi / 8)
    centres = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + 0.2 * rng.randn(n, 2), component, tuple(f"component {k}" for k in range(8))


def _swiss_roll(n: int, seed: int):
    from sklearn.datasets import make_swiss_roll

    x3, t = make_swiss_roll(n, noise=0.3, random_state=seed)
    # t runs over [1.5 pi, 4.5 pi]; five equal stretches of the roll are the classes.
    position = np.clip(((t - 1.5 * np.pi) / (3 * np.pi) * 5).astype(int), 0, 4)
    return x3[:, [0, 2]] / 5.0, position, tuple(f"part {k + 1} of 5" for k in range(5))


GENERATORS = {"moons": _moons, "circles": _circles, "gaussians": _gaussians, "swiss-roll": _swiss_roll}


def load_toy(name: str, seed: int) -> Dataset:
    """Generate N_TRAIN + N_VAL + N_TEST i.i.d. points from `seed` and cut them in that order."""
    x, y, class_names = GENERATORS[name](N_TRAIN + N_VAL + N_TEST, seed)
    splits = (slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VAL), slice(N_TRAIN + N_VAL, None))
    return from_splits(name, "points", torch.tensor(x, dtype=torch.float32),
                       torch.tensor(y, dtype=torch.int64), class_names, splits)
