"""The built-in datasets: their names and descriptions, and `load_dataset` with its in-process cache."""

from __future__ import annotations

import functools
import logging
import operator
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import idx
from .dataset import Dataset, from_splits, random_split
from .errors import DataError, LoadStopped
from .shapes import load_shapes
from .toy import load_toy


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    kind: str  # "image" or "points"


_T10K_ONLY = ("With only the 10,000 test (t10k) files, the first 8,000 images train, the next 1,000 validate "
              "and the last 1,000 are the test set.")
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("digits", "Digits (8×8)", "1,797 small handwritten digits 0-9 from scikit-learn; "
                "trains in seconds.", "image"),
    DatasetInfo("mnist", "MNIST (28×28)", "Handwritten digits 0-9, read from IDX files "
                f"(found on this machine, or downloaded on first use where it is online). {_T10K_ONLY}", "image"),
    DatasetInfo("fashion-mnist", "Fashion-MNIST (28×28)", "Photos of 10 kinds of clothing (shirts, "
                f"shoes, bags, ...), same format as MNIST. {_T10K_ONLY}", "image"),
    DatasetInfo("shapes", "Shapes (32×32)", "Generated squares, ellipses and triangles with known "
                "factors: shape, scale, rotation, x, y. For studying disentanglement.", "image"),
    DatasetInfo("moons", "Two moons (2-D)", "Two interleaved half circles of points.", "points"),
    DatasetInfo("circles", "Circles (2-D)", "Two concentric rings of points.", "points"),
    DatasetInfo("gaussians", "8 Gaussians (2-D)", "A mixture of 8 Gaussian blobs on a ring.", "points"),
    DatasetInfo("swiss-roll", "Swiss roll (2-D)", "A spiral of points, labelled by position "
                "along the roll.", "points"),
)}

log = logging.getLogger(__name__)

# One lock per dataset: concurrent first requests load (or download) it once, and a slow
# download of one dataset does not hold up the others.
_locks = {name: threading.Lock() for name in DATASETS}


def dataset_names() -> list[str]:
    """Built-in dataset names in display order, "digits" first."""
    return list(DATASETS)


def load_dataset(name: str, seed: int = 0, data_dir: str | os.PathLike | None = None,
                 stop: threading.Event | None = None) -> Dataset:
    """The built-in dataset `name`, split by `seed`; loaded once per process and shared.

    `data_dir` is only used by the IDX datasets (mnist, fashion-mnist); see vae_core.data.idx.
    Setting `stop` raises LoadStopped while waiting for another thread's load of `name` and between
    the pieces of a download; reading or generating a dataset (under a second) is not interrupted.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    seed = operator.index(seed)
    lock = _locks[name]
    while not lock.acquire(timeout=0.1):
        if stop is not None and stop.is_set():
            raise LoadStopped(f"stopped while waiting for {name} to load")
    try:
        folder = str(idx.locate(name, data_dir, stop)) if name in idx.IDX_DATASETS else None
        return _load(name, seed, folder)
    finally:
        lock.release()


@functools.lru_cache(maxsize=16)
def _load(name: str, seed: int, folder: str | None) -> Dataset:
    """A cache miss: the one place a dataset is really loaded, logged so a server's loads can be counted."""
    started = time.perf_counter()
    data = _read(name, seed, folder)
    log.info("loaded dataset %s (seed %d) in %.2f s", name, seed, time.perf_counter() - started)
    return data


def forget_loaded() -> None:
    """Drop every loaded dataset, so files just put in place (an upload of IDX files) are read anew."""
    _load.cache_clear()


def _read(name: str, seed: int, folder: str | None) -> Dataset:
    if name == "digits":
        return _load_digits(seed)
    if name in idx.IDX_DATASETS:
        return idx.load_idx_dataset(name, seed, Path(folder))
    if name == "shapes":
        return load_shapes(seed)
    return load_toy(name, seed)


def _load_digits(seed: int) -> Dataset:
    """scikit-learn's 8x8 digits (values 0..16 scaled to [0, 1]), split 70/15/15."""
    from sklearn.datasets import load_digits  # here, not at the top (bench/README.md, "Start-up imports")

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    splits = random_split(len(x), 0.15, 0.15, seed)
    return from_splits("digits", "image", x, y, tuple(str(d) for d in range(10)), splits)
