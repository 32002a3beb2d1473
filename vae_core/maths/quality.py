"""What the pages report of a trained model beyond its loss: how good its samples are, and how well its
codes line up with known generative factors.

Sample quality reads a model's prior samples against held-out data, on fixed draws and fixed subsets so
two measurements (two epochs, two runs) compare:
  sharpness   mean jump between neighbouring pixels, over the held-out images' own (below 1: blurrier)
  diversity   mean distance between two samples, over that between two held-out examples (below 1: alike)
  nearest     mean distance of each sample to its nearest training example, beside the held-out data's
              own (far below: copying the training set; far above: unlike the data)
Sharpness needs pixels: for 2-D points it is None.

Disentanglement (datasets with factors, e.g. shapes): the normalised mutual information between each
latent dimension and each factor, the mutual information gap (MIG) it gives, and the factor each
dimension captures most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae_core import devices
from vae_core.maths.metrics import nearest_distance, prior_samples, sharpness
from vae_core.maths.models import VAE

N_SAMPLES = 256  # prior samples, and held-out examples, per measurement
N_TRAIN = 2000  # training examples the nearest-neighbour search looks through (its cost grows with them)
SEED = 0  # the same prior draws for every run, so runs of one latent size are judged on the same z
DISCRETE_FACTOR_LEVELS = 20  # a factor with at most this many values is used as it is, others are binned
FACTOR_BINS = 10


def mean_pairwise_distance(x) -> float:
    """Mean RMS distance between two different rows of x (images or points)."""
    flat = torch.as_tensor(x, dtype=torch.float32).reshape(len(x), -1)
    if len(flat) < 2:
        raise ValueError("need at least two rows")
    sq = (flat * flat).sum(1)
    d2 = (sq[:, None] + sq[None] - 2 * flat @ flat.T).clamp_min(0) / flat.shape[1]
    d2.fill_diagonal_(0)  # rounding leaves small positives there
    return float(d2.sqrt().sum() / (len(flat) * (len(flat) - 1)))


@dataclass(frozen=True)
class SampleQuality:
    """A model's prior samples scored against held-out data; `real_*` are the held-out data's own scores."""
    sharpness: float | None  # None for 2-D points
    diversity: float
    nearest: float
    real_sharpness: float | None
    real_diversity: float
    real_nearest: float

    @property
    def sharpness_ratio(self) -> float | None:
        return None if self.sharpness is None else self.sharpness / max(self.real_sharpness, 1e-12)

    @property
    def diversity_ratio(self) -> float:
        return self.diversity / max(self.real_diversity, 1e-12)


class QualityMeter:
    """The fixed training subset, held-out examples and their scores, computed once per dataset, on the CPU
    whatever device the model trains on (a few hundred samples: not worth a GPU's memory)."""

    def __init__(self, train: torch.Tensor, held_out: torch.Tensor, n: int = N_SAMPLES, n_train: int = N_TRAIN):
        self.n, self.train, held = n, train[:n_train].cpu(), held_out[:n].cpu()
        self.is_image = held.dim() == 4
        self.real = self._scores(held)

    def _scores(self, x: torch.Tensor) -> tuple[float | None, float, float]:
        return (sharpness(x) if self.is_image else None, mean_pairwise_distance(x),
                float(nearest_distance(x, self.train).mean()))

    def measure(self, model: VAE) -> SampleQuality:
        """Scores of the model's decoded prior samples (the same draws each time)."""
        return SampleQuality(*self._scores(prior_samples(model, self.n, SEED).cpu()), *self.real)


# --- disentanglement ------------------------------------------------------------------------------
def discretize(values, bins: int) -> np.ndarray:
    """Equal-width histogram bin index (0 … bins − 1) of each value of a 1-D array."""
    v = np.asarray(values, dtype=np.float64)
    edges = np.histogram_bin_edges(v, bins)
    return np.clip(np.digitize(v, edges[1:-1]), 0, bins - 1)


def _entropy(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Discrete mutual information in nats from the joint histogram of two label arrays."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def factor_bins(factors) -> list[int | None]:
    """How to discretise each factor column: None (as it is) for few distinct values, else FACTOR_BINS bins."""
    factors = np.asarray(factors)
    return [None if len(np.unique(factors[:, k])) <= DISCRETE_FACTOR_LEVELS else FACTOR_BINS
            for k in range(factors.shape[1])]


def factor_information(codes, factors, code_bins: int = 20, factor_bins=None) -> np.ndarray:
    """(D, K) I(z_j; v_k) / H(v_k): the share of factor k's entropy that code dimension j carries.

    codes: (N, D) latent means; factors: (N, K). Each code dimension is cut into `code_bins` equal-width
    bins; factor k is used as it is when `factor_bins[k]` is None, else cut into that many bins. A constant
    factor (no entropy) gets a column of NaN."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError("codes (N, D) and factors (N, K) must have the same N")
    factor_bins = [None] * factors.shape[1] if factor_bins is None else list(factor_bins)
    z = [discretize(codes[:, j], code_bins) for j in range(codes.shape[1])]
    out = np.full((codes.shape[1], factors.shape[1]), np.nan)
    for k in range(factors.shape[1]):
        v = factors[:, k] if factor_bins[k] is None else discretize(factors[:, k], factor_bins[k])
        h = _entropy(v)
        if h > 0:
            out[:, k] = [_mutual_information(zj, v) / h for zj in z]
    return out


def mutual_information_gap(codes, factors, code_bins: int = 20, factor_bins=None) -> float:
    """MIG (Chen et al. 2018), with the histogram estimator of Locatello et al. 2019: for each factor, the
    gap between the two largest normalised I(z_j; v_k), averaged over factors. 1 when every factor lives in
    one dimension alone, 0 when none does."""
    return gap(factor_information(codes, factors, code_bins, factor_bins))


def gap(information: np.ndarray) -> float:
    """MIG from a `factor_information` matrix (constant factors left out)."""
    columns = information[:, ~np.isnan(information).any(0)]
    if columns.shape[1] == 0:
        raise ValueError("every factor is constant")
    top = -np.sort(-np.vstack([columns, np.zeros((1, columns.shape[1]))]), axis=0)
    return float((top[0] - top[1]).mean())


@dataclass(frozen=True)
class Disentanglement:
    """MIG and, per latent dimension, the factor it carries most of."""
    mig: float
    information: np.ndarray  # (D, K) from `factor_information`
    factor_names: tuple[str, ...]

    def strongest(self) -> list[tuple[str, float]]:
        """(factor name, normalised MI) of the factor each latent dimension carries most of."""
        filled = np.nan_to_num(self.information, nan=-1.0)
        return [(self.factor_names[k], float(self.information[j, k])) for j, k in enumerate(filled.argmax(1))]


def disentanglement(codes, factors, factor_names) -> Disentanglement:
    """MIG and the per-dimension factor of codes (N, D) against ground-truth factors (N, K)."""
    information = factor_information(codes, factors, factor_bins=factor_bins(factors))
    return Disentanglement(gap(information), information, tuple(factor_names))


@torch.inference_mode()
def model_disentanglement(model: VAE, data) -> Disentanglement | None:
    """`disentanglement` of the model's posterior means of the validation split; None without known factors
    (or with factors that never vary there)."""
    if data.val_factors is None or not data.factor_names or bool((data.val_factors == data.val_factors[0]).all()):
        return None
    was_training = model.training
    model.eval()
    device = devices.of(model)
    mu = torch.cat([model.encode(xb.to(device))[0].cpu() for xb in data.val.split(256)])
    model.train(was_training)
    return disentanglement(mu.numpy(), data.val_factors.numpy(), data.factor_names)
