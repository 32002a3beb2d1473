"""Measured quantities behind the lesson claims: each a small function of a model or of plain arrays.

Distances between images are root-mean-square pixel differences (images in [0, 1]), so they read
the same on 8×8 digits and 28×28 MNIST: 0 is identical, 1 is black against white.

  projection_2d             the centre and axes project_2d uses, for what else lands in its picture
  nearest_distance          RMS distance of each image to its nearest neighbour in a reference set
  prior_sample_distance     mean nearest-training-image distance of decoded prior samples (lower: more data-like)
  fitted_sample_distance    the same for points drawn from a Gaussian fitted to the model's own codes
  data_like_threshold       a "looks like data" cut-off from held-out real images
  latent_plane_coverage     share of the latent plane (grid over the data's own range) whose decodings look like data
  reconstruction_rmse       RMS pixel error of posterior-mean reconstructions (comparable across losses)
  sharpness                 mean absolute difference between neighbouring pixels (blur lowers it)
  train_val_gap             validation minus training −ELBO, both measured the same way
  kl_per_dimension          mean KL of each latent dimension on a split
  informative_dimensions    latent dimensions above 0.1 nats of KL whose mean varies (maths.collapse)
  reconstruction_spread     how much reconstructions differ between inputs (0: one image for every input)
  curve_roughness           how much a loss curve jumps from step to step, relative to its level
  kl_by_cycle               mean KL at the start and at the end of each cycle of a cyclical β schedule

Sample quality and disentanglement, as the pages report them, are in `quality.py`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vae_core import devices
from vae_core.maths import collapse
from vae_core.maths.models import VAE
from vae_core.maths.objectives import kl_per_dim


def project_2d(mu: np.ndarray) -> np.ndarray:
    """Latent means in 2-D: as they are for 1 or 2 dimensions, the first two principal components above."""
    centre, axes = projection_2d(mu)
    return (np.asarray(mu, dtype=np.float64) - centre) @ axes


def projection_2d(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (centre, d×2 axes) that `project_2d` applies to `mu`, so anything else in its latent space (a
    posterior's covariance, a new input's code) lands in the same picture."""
    mu = np.asarray(mu, dtype=np.float64)
    d = mu.shape[1]
    if d <= 2:
        return np.zeros(d), np.eye(d, 2)
    centre = mu.mean(0)
    centred = mu - centre
    # Eigenvectors of the small d×d scatter matrix: far cheaper than the SVD of the n×d matrix next to a
    # training thread (bench/README.md, "Projection"). Signs are fixed (largest loading positive) so frames do not flip.
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1][:, :2]
    return centre, axes * np.sign(axes[np.abs(axes).argmax(0), [0, 1]])


def _flat(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    return t.reshape(len(t), -1)


@torch.inference_mode()
def nearest_distance(queries, reference, chunk: int = 512, exclude_self: bool = False) -> torch.Tensor:
    """RMS pixel distance of each query to its nearest reference row, shape (len(queries),).

    With `exclude_self` (queries and reference the same set) each row's match with itself is skipped.
    """
    q, r = _flat(queries), _flat(reference)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values each, the reference {r.shape[1]}")
    r_sq = (r * r).sum(1)
    out = []
    for start in range(0, len(q), chunk):
        qb = q[start:start + chunk]
        d2 = (qb * qb).sum(1, keepdim=True) + r_sq[None] - 2 * qb @ r.T
        if exclude_self:
            idx = torch.arange(start, start + len(qb))
            d2[torch.arange(len(qb)), idx] = math.inf
        out.append(d2.min(1).values.clamp_min(0))
    return (torch.cat(out) / q.shape[1]).sqrt()


@torch.inference_mode()
def decode_mean(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """The decoder's mean image for each latent vector (eval mode)."""
    was_training = model.training
    model.eval()
    out = model.output_mean(model.decode(z))
    model.train(was_training)
    return out


def prior_samples(model: VAE, n: int = 500, seed: int = 0) -> torch.Tensor:
    """Decoder means of n draws from the prior N(0, I), as the app shows them, on the model's device. The draws
    come from the CPU: the same z whatever the device."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode_mean(model, z.to(devices.of(model)))


def prior_sample_distance(model: VAE, train: torch.Tensor, n: int = 500, seed: int = 0) -> float:
    """Mean RMS distance of decoded prior samples to their nearest training image: lower is more data-like."""
    return float(nearest_distance(prior_samples(model, n, seed), train).mean())


@torch.inference_mode()
def fitted_gaussian_samples(model: VAE, x: torch.Tensor, n: int = 500, seed: int = 0) -> torch.Tensor:
    """Decoder means of n draws from N(m, S), the mean and covariance of the posterior means of x.

    For an autoencoder, whose codes need not sit near N(0, I), these are the fairest "random latent points":
    they fill the region its codes occupy, holes included."""
    model.eval()
    mu, _ = model.encode(x)
    mu = mu.double()
    mean, cov = mu.mean(0), torch.atleast_2d(torch.cov(mu.T))
    chol = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal().mean() * torch.eye(len(mean), dtype=cov.dtype))
    eps = torch.randn(n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return decode_mean(model, (mean + eps @ chol.T).float())


def fitted_sample_distance(model: VAE, x: torch.Tensor, train: torch.Tensor, n: int = 500, seed: int = 0) -> float:
    """Mean nearest-training-image distance of decodings of a Gaussian fitted to the codes of x."""
    return float(nearest_distance(fitted_gaussian_samples(model, x, n, seed), train).mean())


def data_like_threshold(train: torch.Tensor, held_out: torch.Tensor, quantile: float = 0.9) -> float:
    """A cut-off for "looks like data": the `quantile` of held-out real images' distances to the training set."""
    return float(torch.quantile(nearest_distance(held_out, train), quantile))


@torch.inference_mode()
def latent_plane_coverage(model: VAE, x: torch.Tensor, train: torch.Tensor, threshold: float,
                          steps: int = 25, low: float = 0.02, high: float = 0.98) -> float:
    """Share of the 2-D latent plane whose decodings look like data (nearest-training distance ≤ threshold).

    The grid spans, on each axis, the `low`–`high` quantiles of the posterior means of `x`, so each model
    is judged on the region its own data occupies, whatever its scale: holes between clusters count
    against it, empty space far outside the data does not.
    """
    if model.latent_dim != 2:
        raise ValueError("latent-plane coverage needs a 2-D latent space")
    model.eval()
    mu, _ = model.encode(x)
    qs = torch.quantile(mu, torch.tensor([low, high]), dim=0)  # (2, 2)
    a = torch.linspace(float(qs[0, 0]), float(qs[1, 0]), steps)
    b = torch.linspace(float(qs[0, 1]), float(qs[1, 1]), steps)
    z1, z2 = torch.meshgrid(a, b, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)
    return float((nearest_distance(decode_mean(model, z), train) <= threshold).float().mean())


@torch.inference_mode()
def reconstructions(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Decoder means at the posterior means of x."""
    model.eval()
    mu, _ = model.encode(x)
    return decode_mean(model, mu)


def reconstruction_rmse(model: VAE, x: torch.Tensor) -> float:
    """RMS pixel error of posterior-mean reconstructions: the same unit whatever loss trained the model."""
    return float((reconstructions(model, x) - x).pow(2).mean().sqrt())


def sharpness(images) -> float:
    """Mean absolute difference between horizontally and vertically adjacent pixels of (N, C, H, W) images.

    A blurred image has smaller jumps between neighbours, so blur lowers this number.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images, dtype=torch.float32)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return float((dx + dy) / 2)


def train_val_gap(trainer, data, n: int | None = None) -> float:
    """Validation minus training −ELBO (nats per sample), both from `Trainer.evaluate` (eval mode, fixed noise).

    `n` limits both splits to their first n samples (the same count on each side)."""
    train, val = data.train, data.val
    if n is not None:
        train, val = train[:n], val[:n]
    return trainer.evaluate(val)["neg_elbo"] - trainer.evaluate(train)["neg_elbo"]


@torch.inference_mode()
def kl_per_dimension(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Mean KL(q(z|x) ‖ N(0, 1)) of each latent dimension over x, shape (latent_dim,); zeros for an autoencoder."""
    model.eval()
    mu, logvar = model.encode(x)
    if not model.variational:
        return torch.zeros(model.latent_dim)
    return kl_per_dim(mu, logvar).mean(0)


@torch.inference_mode()
def informative_dimensions(model: VAE, x: torch.Tensor) -> int:
    """How many latent dimensions are informative over x: above 0.1 nats of KL, with a mean that varies
    across inputs (the definition of vae_core.maths.collapse, which the Train page's KL bars count too)."""
    model.eval()
    mu, _ = model.encode(x)
    return int(collapse.informative(kl_per_dimension(model, x), mu).sum())


def reconstruction_spread(model: VAE, x: torch.Tensor) -> float:
    """RMS difference of each reconstruction from the mean reconstruction: about 0 when the decoder
    returns the same image whatever the input (a collapsed posterior), near the data's own spread otherwise."""
    recon = reconstructions(model, x)
    return float((recon - recon.mean(0, keepdim=True)).pow(2).mean().sqrt())


def curve_roughness(values, window: int = 20) -> float:
    """How much a per-step loss curve jumps: mean |step-to-step change| / mean level, over its last `window` steps.

    Non-finite values (a blown-up run) give infinity."""
    v = np.asarray(values, dtype=np.float64)[-(window + 1):]
    if len(v) < 2:
        raise ValueError("need at least two values")
    if not np.all(np.isfinite(v)):
        return math.inf
    return float(np.abs(np.diff(v)).mean() / max(np.abs(v).mean(), 1e-12))


def kl_by_cycle(rows: list[dict], cycles: int, share: float = 0.1) -> list[tuple[float, float]]:
    """(mean KL over the first `share` of the cycle, mean KL over its last `share`) for each of `cycles`
    equal stretches of a run's step history (rows with "step" and "kl", as `TrainingJob` records them)."""
    steps = np.array([r["step"] for r in rows], dtype=np.float64)
    kl = np.array([r["kl"] for r in rows], dtype=np.float64)
    period = steps.max() / cycles
    out = []
    for c in range(cycles):
        phase = (steps - 1) - c * period  # steps are counted from 1
        head = kl[(phase >= 0) & (phase < share * period)]
        tail = kl[(phase >= (1 - share) * period) & (phase < period)]
        if len(head) == 0 or len(tail) == 0:
            raise ValueError("too few recorded steps per cycle")
        out.append((float(head.mean()), float(tail.mean())))
    return out
