"""What the UI shows of a model while it trains, computed on a fixed evaluation batch; sample quality once an
epoch, as it costs more than the rest (bench/README.md, "Sample quality")."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from vae_core.maths.collapse import active_units
from vae_core.maths.metrics import project_2d
from vae_core.maths.models import VAE
from vae_core.maths.objectives import kl_per_dim
from vae_core.maths.quality import QualityMeter, SampleQuality
from vae_core.train import Posterior, chunk_rows

N_IMAGES = 16  # originals, reconstructions and prior samples shown for image data
N_POINTS = 1000  # latent points, and prior samples for 2-D data
# Throttled snapshots take at most this share of the training thread's time; the forced first and last come
# on top, and the target for all of them is 5 % (bench/README.md, "Snapshots").
SNAPSHOT_SHARE = 0.04


@dataclass(frozen=True)
class Snapshot:
    step: int
    epoch: int
    originals: np.ndarray  # (n, ...) inputs whose reconstructions are shown
    reconstructions: np.ndarray  # decoder means for the originals
    samples: np.ndarray  # decoder means for fixed draws from the prior
    latent_mu: np.ndarray  # (m, latent_dim) posterior means of the evaluation subset
    latent_logvar: np.ndarray
    latent_2d: np.ndarray  # (m, 2) latent means as drawn (PCA above 2 dimensions)
    labels: np.ndarray | None  # (m,) labels of the evaluation subset
    kl_per_dim: np.ndarray  # (latent_dim,) mean KL of each dimension on the subset
    active_units: int
    quality: SampleQuality | None = None  # of the last epoch ended (None before the first)


class SnapshotMaker:
    """Holds the fixed evaluation inputs and prior draws, so successive snapshots are comparable. They stay on
    the device of `val` (the trainer's `val_split`); snapshots come back to the CPU as numpy arrays."""

    def __init__(self, val: torch.Tensor, labels: torch.Tensor | None, latent_dim: int, seed: int,
                 train: torch.Tensor | None = None):
        self.val = val
        self._meter = None if train is None or len(val) < 2 else QualityMeter(train, val)  # diversity needs pairs
        self._quality: SampleQuality | None = None
        self._quality_epoch = 0
        self.x = val[:N_POINTS]
        self.labels = None if labels is None else labels[:N_POINTS].numpy()
        is_image = val.dim() == 4
        n_shown = N_IMAGES if is_image else N_POINTS
        self.shown = slice(0, min(n_shown, len(self.x)))
        self.originals = self.x[self.shown].cpu().numpy()
        prior_z = torch.randn(n_shown, latent_dim, generator=torch.Generator().manual_seed(seed + 1))
        self.prior_z = prior_z.to(val.device)  # drawn on the CPU: the same draws on every device

    @torch.inference_mode()
    def take(self, model: VAE, step: int, epoch: int, posterior: Posterior | None = None) -> Snapshot:
        """The snapshot at `step`; a `posterior` of the validation split at this step saves encoding it again."""
        was_training = model.training
        model.eval()
        if posterior is not None and posterior.split is self.val and posterior.step == step:
            mu, logvar = posterior.mu[:len(self.x)], posterior.logvar[:len(self.x)]
        else:
            encoded = [model.encode(xb) for xb in self.x.split(chunk_rows(self.x[0]))]
            mu, logvar = (torch.cat(parts) for parts in zip(*encoded))
        if self._meter is not None and epoch > self._quality_epoch:  # the first snapshot since an epoch ended
            self._quality, self._quality_epoch = self._meter.measure(model), epoch
        recon = model.output_mean(model.decode(mu[self.shown]))
        samples = model.output_mean(model.decode(self.prior_z))
        kl_dims = kl_per_dim(mu, logvar).mean(0) if model.variational else torch.zeros_like(mu[0])
        model.train(was_training)
        mu, logvar, recon, samples, kl_dims = (t.cpu() for t in (mu, logvar, recon, samples, kl_dims))
        mu_np = mu.numpy()
        return Snapshot(step=step, epoch=epoch, originals=self.originals, reconstructions=recon.numpy(),
                        samples=samples.numpy(), latent_mu=mu_np, latent_logvar=logvar.numpy(),
                        latent_2d=project_2d(mu_np), labels=self.labels, kl_per_dim=kl_dims.numpy(),
                        active_units=active_units(mu), quality=self._quality)


class SnapshotThrottle:
    """When a job may take its next snapshot: at most every `interval` seconds, and all of them within
    SNAPSHOT_SHARE of the time since the throttle was made. The cost counted ahead is that of the last
    throttled snapshot that encoded its points: a forced one may pay the model's first inference, and one
    from a fresh posterior costs next to nothing."""

    def __init__(self, interval: float, now=time.perf_counter):
        self.interval, self._now = interval, now
        self._began = now()
        self._last_end = -float("inf")
        self._spent = 0.0  # seconds all snapshots took
        self._cost = 0.0  # seconds the next one is expected to take

    def due(self) -> bool:
        now = self._now()
        return (now - self._last_end >= self.interval
                and self._spent + self._cost <= SNAPSHOT_SHARE * (now - self._began))

    def took(self, started: float, forced: bool, encoded: bool) -> None:
        """A snapshot begun at `started` has just been taken."""
        self._last_end = self._now()
        self._spent += self._last_end - started
        if not forced and encoded:
            self._cost = self._last_end - started
