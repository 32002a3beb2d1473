"""The training loop: `fit` trains a `Trainer` epoch by epoch, top to bottom.

    trainer = Trainer(config, dataset)
    outcome = fit(trainer, on_epoch=print)

Whoever hosts a run (a thread or process of the app, the CLI, a test, a benchmark) passes hooks and
nothing else: `hold` before every step (pause there, apply live changes), `should_stop` before every
step and validation chunk, `on_step` with each step's losses, `on_epoch` with each epoch's row.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae_core import devices
from vae_core.config import TrainConfig, check_compatible
from vae_core.data import Dataset, load_dataset
from vae_core.maths.augment import augment_batch
from vae_core.maths.collapse import active_units
from vae_core.maths.models import Discriminator, build_model
from vae_core.maths.objectives import beta_at, capacity_at, kl_per_dim, objective, reconstruction_nll, vae_loss
from vae_core.maths.schedules import LRSchedule, build_optimizer

log = logging.getLogger(__name__)
_seed_lock = threading.Lock()  # model initialisation reads the global RNG: one run at a time
CHUNK_VALUES = 2**17  # input values per inference chunk (bench/README.md, "Inference chunks")
# A loss this many times the first step's counts as diverged (bench/README.md, "Divergence guard").
DIVERGENCE_FACTOR = 1e6


class Status(enum.StrEnum):
    """Where a run is: the first three while a job hosts it, the others how it ended."""
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    EARLY_STOPPED = "early-stopped"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self not in (Status.QUEUED, Status.RUNNING, Status.PAUSED)

    @property
    def completed(self) -> bool:
        """Trained to its end: all epochs, or until early stopping."""
        return self in (Status.FINISHED, Status.EARLY_STOPPED)


ENDED = tuple(status for status in Status if status.ended)


@dataclass(frozen=True)
class Epoch:
    """An epoch's end, as `fit` hands it to `on_epoch`: its metrics row and a copy of its weights."""
    row: dict
    weights: dict[str, torch.Tensor]
    best_epoch: int | None  # the best validation −ELBO so far (early stopping restores it)


@dataclass(frozen=True)
class Outcome:
    """How `fit` ended, and a message for the user."""
    status: Status
    message: str
    best_epoch: int | None = None


@dataclass
class Track:
    """What `fit` carries from epoch to epoch besides the trainer's state: early stopping's record (the best
    validation −ELBO, its epoch and weights, the epochs since) and the divergence guard's first loss. The trainer
    holds it, so that a checkpoint (vae_core/checkpoints.py) carries it: a restored run stops early exactly when
    the unbroken one would."""
    best_val: float = math.inf
    best_epoch: int | None = None
    best: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    first_loss: float | None = None


def fit(trainer: Trainer, *, on_step: Callable[[dict], None] | None = None,
        on_epoch: Callable[[Epoch], None] | None = None, hold: Callable[[], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False) -> Outcome:
    """Train every epoch of the trainer's config; the weights kept at the end are those the outcome names.

    Guards: a loss that turns NaN or blows up ends the run as DIVERGED with the last good epoch's weights;
    early stopping ends it after `patience` epochs without improvement, with the best epoch's weights.
    An exception (in the maths or in a hook) ends the run as FAILED, with the weights as they were; its
    traceback goes to the log."""
    config, track = trainer.config, trainer.track
    last_good = trainer.weights()
    try:
        for epoch in range(trainer.epoch + 1, config.epochs + 1):  # from a checkpoint's epoch on, when restored
            sums, count = {"loss": 0.0, "recon": 0.0, "kl": 0.0}, 0
            for x in trainer.batches():
                if hold is not None:
                    hold()
                if should_stop():
                    return Outcome(Status.STOPPED, "Stopped.", track.best_epoch)
                row = trainer.train_step(x)
                track.first_loss = row["loss"] if track.first_loss is None else track.first_loss
                problem = _divergence(row["loss"], track.first_loss)
                if problem:
                    if on_step is not None:
                        on_step(row)  # the chart shows the blow-up that ended the run
                    trainer.load_weights(last_good)
                    return Outcome(Status.DIVERGED, _diverged(problem, row["step"], epoch, trainer.schedule.lr),
                                   track.best_epoch)
                for k in sums:
                    sums[k] += row[k]
                count += 1
                if on_step is not None:
                    on_step(row)

            val = trainer.evaluate(trainer.val_split, should_stop)
            if val is None:
                return Outcome(Status.STOPPED, "Stopped.", track.best_epoch)
            if not math.isfinite(val["neg_elbo"]):
                trainer.load_weights(last_good)
                return Outcome(Status.DIVERGED, _diverged("became NaN or infinite", trainer.step, epoch,
                                                          trainer.schedule.lr), track.best_epoch)
            trainer.end_epoch(val["neg_elbo"])
            last_good = trainer.weights()
            if val["neg_elbo"] < track.best_val - config.min_delta:
                track.best_val, track.best, track.best_epoch, track.bad_epochs = val["neg_elbo"], last_good, epoch, 0
            else:
                track.bad_epochs += 1
            if on_epoch is not None:
                row = {"epoch": epoch, "step": trainer.step, "lr": trainer.schedule.lr, "beta_now": trainer.beta_used,
                       **{f"train_{k}": v / max(count, 1) for k, v in sums.items()},
                       **{f"val_{k}": v for k, v in val.items()}}
                on_epoch(Epoch(row, last_good, track.best_epoch))
            if config.early_stopping and track.bad_epochs >= config.patience:
                trainer.load_weights(track.best)
                return Outcome(Status.EARLY_STOPPED, f"Early stopping: no improvement for {track.bad_epochs} epochs; "
                                                     f"restored the best weights (epoch {track.best_epoch}).",
                               track.best_epoch)
        if config.early_stopping and track.best_epoch is not None:
            trainer.load_weights(track.best)
            return Outcome(Status.FINISHED, f"Finished; restored the best weights (epoch {track.best_epoch}).",
                           track.best_epoch)
        return Outcome(Status.FINISHED, "Finished.", track.best_epoch)
    except Exception as exc:
        log.exception("training failed")
        return Outcome(Status.FAILED, f"Training failed: {exc}", track.best_epoch)


def _divergence(loss: float, first: float) -> str | None:
    """What went wrong when the loss diverged (NaN, infinite, or far above the first step's), else None."""
    if not math.isfinite(loss):
        return "became NaN or infinite"
    if math.isfinite(first) and loss > DIVERGENCE_FACTOR * max(abs(first), 1.0):
        return f"grew to {loss:.3g}, over {DIVERGENCE_FACTOR:,.0f} times its first value ({first:.3g}),"
    return None


def _diverged(problem: str, step: int, epoch: int, lr: float) -> str:
    return (f"The loss {problem} at step {step} (epoch {epoch}), so training stopped. "
            f"This usually means the learning rate ({lr:g}) is too high: try a value 10 times smaller, "
            "or turn on gradient clipping. " + ("The weights from the last good epoch were kept." if epoch > 1 else
                                               "No epoch had finished: the model kept is the untrained one."))


@dataclass(frozen=True)
class Posterior:
    """q(z|x) of every row of a split, as the model was at a training step."""
    split: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    step: int


class Trainer:
    """One run's model and optimisation state, advanced one step at a time, on the config's device: the
    model, the optimiser, the training and validation splits (moved there once) and the run's generator."""

    def __init__(self, config: TrainConfig, data: Dataset):
        check_compatible(config, data.is_image)
        self.config = config
        self.data = data
        self.device = devices.resolve(config.device)
        self.train_split, self.val_split = data.train.to(self.device), data.val.to(self.device)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        with _seed_lock:  # built on the CPU, then moved: the same initial weights on every device
            torch.manual_seed(config.seed)
            self.model = build_model(config, data.sample_shape).to(self.device)
            self.discriminator = (Discriminator(data.sample_shape).to(self.device) if config.adv_weight > 0
                                  else None)
        if config.normalize_inputs:
            self.model.set_input_normalization(self.train_split)
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self.optimizer = build_optimizer(self.model.parameters(), config)
        self.schedule = LRSchedule(self.optimizer, config, self.steps_per_epoch)
        self.disc_optimizer = (torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999),
                                                fused=True)
                               if self.discriminator else None)
        self.beta = config.beta  # the β setting: live changes replace it, the schedule shapes it into beta_now()
        self.beta_used = self.beta_now_at(0)  # β of the last step taken (the schedule's next may differ: a new cycle)
        self._posterior: Posterior | None = None  # of the split `evaluate` saw last
        self.step = 0
        self.epoch = 0
        self.track = Track()

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def beta_now(self) -> float:
        """β at this step: the setting as the β schedule shapes it."""
        return self.beta_now_at(self.step)

    def beta_now_at(self, step: int) -> float:
        return beta_at(step, self.beta, self.config, self.steps_per_epoch)

    def set_lr(self, lr: float) -> None:
        """Change the base learning rate from the next step on, keeping the optimiser's state."""
        self.schedule.rescale(lr / self.config.lr)
        self.config = self.config.replace(lr=lr)

    def batches(self):
        """This epoch's training batches, shuffled from the run's seed, augmented when asked."""
        train = self.train_split
        order = torch.randperm(len(train), generator=self.generator, device=self.device)
        for start in range(0, len(train), self.config.batch_size):
            x = train[order[start:start + self.config.batch_size]]
            yield augment_batch(x, self.config, self.generator) if self.config.augment else x

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        """One optimisation step on batch x; returns its losses as plain floats."""
        config, model = self.config, self.model
        if not model.training:  # after a validation pass only: train() walks every module
            model.train()
        beta = self.beta_used = self.beta_now()
        capacity = capacity_at(self.step, config, self.steps_per_epoch)
        raw, mu, logvar, _ = model(x, self.generator)
        terms = vae_loss(raw, x, mu, logvar, config, model.is_image, beta, capacity)
        loss = terms.loss
        extra = {}  # the terms beyond the data's objective (the adversarial ones unweighted)
        if self.discriminator is not None:
            recon = model.output_mean(raw)
            d_fake = self.discriminator(recon)
            extra["adv_g"] = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            loss = loss + config.adv_weight * extra["adv_g"]
        if config.l1 > 0:
            extra["l1"] = config.l1 * sum(p.abs().sum() for n, p in model.named_parameters() if n.endswith("weight"))
            loss = loss + extra["l1"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        self.optimizer.step()
        lr = self.schedule.lr
        self.schedule.after_step()
        if self.discriminator is not None:
            extra["adv_d"] = self._discriminator_step(x, recon.detach())
        self.step += 1
        # one copy to the CPU for all: loss is everything backpropagated; recon + kl_term is the data's
        # objective, the quantity validation measures
        names = ["loss", "recon", "kl", "kl_term", *extra]
        values = torch.stack([t.detach() for t in (loss, terms.recon, terms.kl, terms.kl_term, *extra.values())])
        out = {"step": self.step, **dict(zip(names, values.tolist())), "beta_now": beta, "lr": lr}
        if config.capacity:
            out["capacity"] = capacity
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
    def evaluate(self, x: torch.Tensor, should_stop: Callable[[], bool] = lambda: False) -> dict[str, float] | None:
        """Mean losses over a whole split (one z per input, drawn from a fixed seed) and active units;
        None when `should_stop()` turns true before the last chunk. Keeps the split's posterior (see `posterior`).
        A split on the CPU is copied to the run's device for the pass (`val_split` is there already).

        "loss" is the objective trained on (β, capacity or free bits at the current step) over the whole
        split; the adversarial and L1 terms are left out, as they measure the networks, not the data.
        """
        model, config = self.model, self.config
        model.eval()
        x = x.to(self.device)
        noise = torch.Generator(self.device).manual_seed(0)
        recon_sum, kl_dims_sum = 0.0, torch.zeros(model.latent_dim, dtype=torch.float64)
        mus, logvars = [], []
        chunk = chunk_rows(x[0])
        for start in range(0, len(x), chunk):
            if should_stop():
                return None
            xb = x[start:start + chunk]
            mu, logvar = model.encode(xb)
            raw = model.decode(model.reparameterize(mu, logvar, noise))
            recon_sum += reconstruction_nll(raw, xb, config, model.is_image, per_sample=False).item()
            if model.variational:
                kl_dims_sum += kl_per_dim(mu, logvar).sum(0).cpu()  # float64 on the CPU: MPS has none
            mus.append(mu)
            logvars.append(logvar)
        self._posterior = Posterior(x, torch.cat(mus), torch.cat(logvars), self.step)
        n = len(x)
        recon, kl_dims = recon_sum / n, kl_dims_sum / n
        kl = kl_dims.sum()
        loss = objective(torch.tensor(recon, dtype=torch.float64), kl, kl_dims, config, self.beta_now(),
                         capacity_at(self.step, config, self.steps_per_epoch))
        kl = kl.item()
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "loss": loss.item(),
                "active_units": active_units(self._posterior.mu.cpu())}

    def end_epoch(self, val_loss: float) -> None:
        self.epoch += 1
        self.schedule.after_epoch(val_loss)

    def weights(self) -> dict[str, torch.Tensor]:
        """A copy of the model's weights on the CPU (the best and last-good checkpoints): where they are saved
        from and sent to the pages, and no GPU memory held for two more models."""
        return {name: tensor.detach().to("cpu", copy=True) for name, tensor in self.model.state_dict().items()}

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
    multiples of 16 (torch draws normal noise in blocks of 16: noise drawn chunk by chunk does not depend on
    the chunk size)."""
    return max(16, min(1024, CHUNK_VALUES // sample.numel()) // 16 * 16)


def warm_up() -> threading.Thread:
    """Pay on a background thread what a process's first run would: the first optimiser imports torch's
    compiler stack (about 1.5 s), and the default dataset loads (its reader's imports too)."""
    def work() -> None:
        build_optimizer([torch.zeros(1, requires_grad=True)], TrainConfig())
        load_dataset(TrainConfig().dataset)

    thread = threading.Thread(target=work, name="vae-lab-warm-up", daemon=True)
    thread.start()
    return thread
