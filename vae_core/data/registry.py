"""The built-in datasets by name, and `load_dataset`, cached so each loads once per process."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from sklearn.datasets import load_digits

from . import idx
from .dataset import Dataset, from_splits, random_split
from .errors import DataError
from .shapes import load_shapes
from .toy import GENERATORS, load_toy


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    kind: str  # "image" or "points"


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("digits", "Digits 8×8", "scikit-learn's 1,797 handwritten digits, 8×8 pixels: embedded, "
                "no download, trains in seconds.", "image"),
    DatasetInfo("mnist", "MNIST", "70,000 handwritten digits, 28×28, from IDX files.", "image"),
    DatasetInfo("fashion-mnist", "Fashion-MNIST", "70,000 clothing images in 10 classes, 28×28, from IDX files.",
                "image"),
    DatasetInfo("shapes", "Shapes", "Generated 32×32 shapes with known factors (shape, scale, rotation, x, y).",
                "image"),
    DatasetInfo("moons", "Two moons", "2-D points on two interleaved half circles.", "points"),
    DatasetInfo("circles", "Circles", "2-D points on two concentric circles.", "points"),
    DatasetInfo("gaussians", "Gaussian mixture", "2-D points from 8 Gaussians on a ring.", "points"),
    DatasetInfo("swiss-roll", "Swiss roll", "2-D points along a spiral.", "points"),
)}


def dataset_names() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, seed: int = 0, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The named dataset with splits fixed by `seed`; loaded once per process and shared read-only."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r:.60}; choose one of {', '.join(DATASETS)}")
    if name in idx.IDX_DATASETS:
        return _load_idx(name, seed, idx.locate(name, data_dir))
    return _load_generated(name, seed)


@functools.lru_cache(maxsize=16)
def _load_idx(name: str, seed: int, folder: Path) -> Dataset:
    return idx.load_idx_dataset(name, seed, folder)


@functools.lru_cache(maxsize=16)
def _load_generated(name: str, seed: int) -> Dataset:
    if name == "digits":
        digits = load_digits()
        x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
        y = torch.tensor(digits.target, dtype=torch.int64)
        names = tuple(str(d) for d in range(10))
        return from_splits("digits", "image", x, y, names, random_split(len(x), 0.15, 0.15, seed))
    if name == "shapes":
        return load_shapes(seed)
    assert name in GENERATORS
    return load_toy(name, seed)



