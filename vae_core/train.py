"""The training loop's parts: one Trainer holds the model, optimisers and schedules of a run.

`TrainingJob` (job.py) drives it on a thread; tests and benchmarks can drive it directly:

    trainer = Trainer(config, dataset)
    for epoch in range(config.epochs):
        for x in trainer.batches():
            trainer.train_step(x)
        trainer.end_epoch(trainer.evaluate(dataset.val)["neg_elbo"])
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae_core.augment import augment_batch
from vae_core.config import ConfigError, TrainConfig
from vae_core.data import Dataset
from vae_core.models import Discriminator, build_model
from vae_core.objectives import beta_at, capacity_at, kl_per_dim, objective, reconstruction_nll, vae_loss
from vae_core.schedules import LRSchedule, build_optimizer

_seed_lock = threading.Lock()  # model initialisation reads the global RNG: one job at a time
# Input values per inference chunk. Small chunks keep a conv model's activations in cache: 1,000 MNIST images
# go through the 32-64 conv encoder in 12 ms in chunks of 160 rows, and in 30 ms in chunks of 320 or more.
CHUNK_VALUES = 2**17


def check_compatible(config: TrainConfig, data: Dataset) -> None:
    """Refuse settings that make no sense for this dataset, naming the field."""
    if not data.is_image:
        if config.recon_loss != "mse":
            raise ConfigError("recon_loss: 2-D points are not in [0, 1]; use mse for this dataset")
        if config.augment:
            raise ConfigError("augment: augmentation applies to images only")
        if config.architecture == "conv":
            raise ConfigError("architecture: the convolutional model needs image data; use mlp for 2-D points")


@dataclass(frozen=True)
class Posterior:
    """q(z|x) of every row of a split, as the model was at a training step."""
    split: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    step: int


class Trainer:
    """One run's model and optimisation state, advanced one step at a time."""

    def __init__(self, config: TrainConfig, data: Dataset):
        check_compatible(config, data)
        self.config = config
        self.data = data
        self.generator = torch.Generator().manual_seed(config.seed)
        with _seed_lock:
            torch.manual_seed(config.seed)
            self.model = build_model(config, data.sample_shape)
            self.discriminator = Discriminator(data.sample_shape) if config.adv_weight > 0 else None
        if config.normalize_inputs:
            self.model.set_input_normalization(data.train)
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.schedule = LRSchedule(self.optimizer, config, self.steps_per_epoch)
        self.disc_optimizer = (torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999),
                                                fused=True)
                               if self.discriminator else None)
        self.beta = config.beta  # the base β; live changes replace it, the schedule shapes it
        self._posterior: Posterior | None = None  # of the split `evaluate` saw last
        self.step = 0
        self.epoch = 0

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def current_beta(self) -> float:
        return beta_at(self.step, self.beta, self.config, self.steps_per_epoch)

    def set_lr(self, lr: float) -> None:
        """Change the base learning rate from the next step on, keeping the optimiser's state."""
        self.schedule.rescale(lr / self.config.lr)
        self.config = self.config.replace(lr=lr)

    def batches(self):
        """This epoch's training batches, shuffled from the run's seed, augmented when asked."""
        train = self.data.train
        order = torch.randperm(len(train), generator=self.generator)
        for start in range(0, len(train), self.config.batch_size):
            x = train[order[start:start + self.config.batch_size]]
            yield augment_batch(x, self.config, self.generator) if self.config.augment else x

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        """One optimisation step on batch x; returns its losses as plain floats."""
        config, model = self.config, self.model
        if not model.training:  # after a validation pass (train() walks every module: 2 % of a digits step)
            model.train()
        beta = self.current_beta()
        raw, mu, logvar, _ = model(x, self.generator)
        terms = vae_loss(raw, x, mu, logvar, config, model.is_image, beta,
                         capacity_at(self.step, config, self.steps_per_epoch))
        loss = terms.loss
        extra = []
        if self.discriminator is not None:
            recon = model.output_mean(raw)
            d_fake = self.discriminator(recon)
            adv = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            loss = loss + config.adv_weight * adv
            extra.append(adv)
        if config.l1 > 0:
            loss = loss + config.l1 * sum(p.abs().sum() for n, p in model.named_parameters() if n.endswith("weight"))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        self.optimizer.step()
        lr = self.schedule.lr
        self.schedule.after_step()
        if self.discriminator is not None:
            extra.append(self._discriminator_step(x, recon.detach()))
        self.step += 1
        values = torch.stack([loss.detach(), terms.recon.detach(), terms.kl.detach(), *extra]).tolist()
        out = {"step": self.step, "loss": values[0], "recon": values[1], "kl": values[2], "beta": beta,
               "beta_kl": beta * values[2], "lr": lr}
        if extra:
            out["adv_g"], out["adv_d"] = values[3], values[4]
        return out

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.disc_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.disc_optimizer.step()
        return loss.detach()

    @torch.inference_mode()
    def evaluate(self, x: torch.Tensor, stop: threading.Event | None = None) -> dict[str, float] | None:
        """Mean losses over a whole split (one z per input, drawn from a fixed seed) and active units;
        None when `stop` is set before the last chunk. Keeps the split's posterior (see `posterior`).

        "loss" is the objective trained on (β, capacity or free bits at the current step) over the whole
        split; the adversarial and L1 terms are left out, as they measure the networks, not the data.
        """
        model, config = self.model, self.config
        model.eval()
        noise = torch.Generator().manual_seed(0)
        recon_sum, kl_dims_sum = 0.0, torch.zeros(model.latent_dim, dtype=torch.float64)
        mus, logvars = [], []
        chunk = chunk_rows(x[0])
        for start in range(0, len(x), chunk):
            if stop is not None and stop.is_set():
                return None
            xb = x[start:start + chunk]
            mu, logvar = model.encode(xb)
            raw = model.decode(model.reparameterize(mu, logvar, noise))
            recon_sum += reconstruction_nll(raw, xb, config, model.is_image, per_sample=False).item()
            if model.variational:
                kl_dims_sum += kl_per_dim(mu, logvar).sum(0)
            mus.append(mu)
            logvars.append(logvar)
        self._posterior = Posterior(x, torch.cat(mus), torch.cat(logvars), self.step)
        n = len(x)
        recon, kl_dims = recon_sum / n, kl_dims_sum / n
        kl = kl_dims.sum()
        loss = objective(torch.tensor(recon, dtype=torch.float64), kl, kl_dims, config, self.current_beta(),
                         capacity_at(self.step, config, self.steps_per_epoch))
        kl = kl.item()
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "loss": loss.item(),
                "active_units": active_units(self._posterior.mu)}

    def end_epoch(self, val_loss: float) -> None:
        self.epoch += 1
        self.schedule.after_epoch(val_loss)

    def weights(self) -> dict[str, torch.Tensor]:
        """A detached copy of the model's weights (for best and last-good checkpoints)."""
        return {name: tensor.detach().clone() for name, tensor in self.model.state_dict().items()}

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
        self._posterior = None  # of other weights

    @property
    def posterior(self) -> Posterior | None:
        """q(z|x) of the split the last validation pass saw, while the weights are still the ones it saw."""
        fresh = self._posterior is not None and self._posterior.step == self.step
        return self._posterior if fresh else None


def chunk_rows(sample: torch.Tensor) -> int:
    """Rows per inference chunk for inputs like `sample`: CHUNK_VALUES input values, at most 1024 rows, in
    multiples of 16 (torch draws normal noise in blocks of 16, so noise drawn chunk by chunk does not depend
    on the chunk size)."""
    return max(16, min(1024, CHUNK_VALUES // sample.numel()) // 16 * 16)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across inputs: Cov_x(E[z|x]) > 0.01 (Burda et al.)."""
    if len(mu) < 2:
        return 0
    return int((mu.var(0) > threshold).sum().item())
