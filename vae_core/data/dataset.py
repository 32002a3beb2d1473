"""The Dataset record every loader returns, and the helper that cuts arrays into splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch

KINDS = ("image", "points")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/val/test tensors of one dataset.

    Images are float32 (N, C, H, W) in [0, 1]; points are float32 (N, 2).
    Loaded datasets are cached and shared between users: treat the tensors as read-only.
    """

    name: str
    kind: str
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None
    val_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    class_names: tuple[str, ...] | None
    factor_names: tuple[str, ...] = ()
    train_factors: torch.Tensor | None = None
    val_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Dataset.kind must be one of {KINDS}, got {self.kind!r}")
        expected_ndim = 4 if self.kind == "image" else 2
        for split in ("train", "val", "test"):
            x = getattr(self, split)
            if x.dtype != torch.float32 or x.ndim != expected_ndim or len(x) == 0:
                raise ValueError(f"Dataset {self.name}: {split} must be a non-empty float32 tensor "
                                 f"with {expected_ndim} dimensions, got {x.dtype} {tuple(x.shape)}")
            if x.shape[1:] != self.train.shape[1:]:
                raise ValueError(f"Dataset {self.name}: {split} samples have shape {tuple(x.shape[1:])}, "
                                 f"train samples {tuple(self.train.shape[1:])}")
            labels = getattr(self, f"{split}_labels")
            if labels is not None and (labels.dtype != torch.int64 or labels.shape != (len(x),)):
                raise ValueError(f"Dataset {self.name}: {split}_labels must be int64 of shape ({len(x)},)")
            factors = getattr(self, f"{split}_factors")
            if factors is not None and factors.shape != (len(x), len(self.factor_names)):
                raise ValueError(f"Dataset {self.name}: {split}_factors must have shape "
                                 f"({len(x)}, {len(self.factor_names)})")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """(C, H, W) for images, (2,) for points."""
        return tuple(self.train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.kind == "image"


def random_split(n: int, val_fraction: float, test_fraction: float, seed: int):
    """Seeded permutation of range(n) cut into (train, val, test) index tensors; val and test get at least one."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(n * val_fraction))
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def from_splits(name: str, kind: str, x: torch.Tensor, labels: torch.Tensor | None,
                class_names: tuple[str, ...] | None, splits, factor_names: tuple[str, ...] = (),
                factors: torch.Tensor | None = None) -> Dataset:
    """Cut x, labels and factors by `splits` = (train, val, test) index tensors or slices."""
    def cut(t):
        return None if t is None else tuple(t[s] for s in splits)

    (train, val, test), label_parts, factor_parts = cut(x), cut(labels), cut(factors)
    label_parts = label_parts or (None, None, None)
    factor_parts = factor_parts or (None, None, None)
    return Dataset(name, kind, train, val, test, *label_parts, class_names,
                   factor_names, *factor_parts)
