"""Forks: a new run that goes on from a saved run's state at an epoch's end with some settings changed, so a student
can ask "what if I had raised β at epoch 10?". The fork is a run of its own (its owner is whoever forked it); its
history starts with the parent's up to the fork, and the parent's folder is only ever read.

A fork may change the settings in FORKABLE: the objective's (β and its schedule, capacity, free bits, L1), the
learning rate, gradient clipping, augmentation, early stopping, and the number of epochs (unless the LR schedule's
shape depends on it). Every other setting shapes the model, the optimiser, the LR schedule or the batches the
saved state belongs to, and stays the parent's.
"""

from __future__ import annotations

from dataclasses import dataclass

from safetensors import SafetensorError

from vae_core import checkpoints
from vae_core.checkpoints import Checkpoint
from vae_core.classroom import cards
from vae_core.config import TrainConfig
from vae_core.runs import RunError, SavedRun

FORKABLE = ("beta", "beta_schedule", "beta_warmup_epochs", "beta_cycles", "beta_cycle_ratio", "capacity",
            "capacity_gamma", "capacity_max", "capacity_ramp_epochs", "free_bits", "l1", "lr", "grad_clip",
            "augment", "aug_shift", "aug_rotation", "aug_zoom", "aug_flip", "early_stopping", "patience",
            "min_delta", "epochs")
MODEL = ("dataset", "normalize_inputs", "architecture", "hidden", "latent_dim", "activation", "batch_norm", "dropout",
         "mode", "adv_weight")  # settings that make the model (and its critic) what it is
ON_EPOCHS = ("cosine", "onecycle")  # LR schedules whose shape is drawn over the run's epochs


class ForkError(ValueError):
    """A fork this run cannot have; the message says why in plain words."""


@dataclass(frozen=True)
class Fork:
    """Where a new run starts: a parent run's state at an epoch's end, and the parent's history up to there."""
    parent: str  # the parent's run folder name
    title: str  # the parent's title, as labels show it
    checkpoint: Checkpoint
    settings: dict  # the parent's β and base LR at the fork, to show what the fork changed
    epochs: list[dict]  # the parent's epoch rows up to the fork
    steps: list[dict]  # the parent's step rows up to the fork
    changes: list[dict]  # the parent's live changes up to the fork, which its curves up to there show

    @property
    def epoch(self) -> int:
        return self.checkpoint.epoch

    def record(self) -> dict:
        """The fork as its run's meta.json and live changes keep it."""
        return {"parent": self.parent, "title": self.title, "epoch": self.epoch,
                "fresh_optimizer": not self.checkpoint.full}


def epochs_offered(run: SavedRun) -> list[int]:
    """The epochs `run` can be forked at: those it kept checkpoints of; a run saved before checkpoints existed,
    its last epoch (from its weights, with a fresh optimiser)."""
    done = run.meta.get("epochs_done") or 0
    kept = checkpoints.kept(run.path, done)
    return kept or ([done] if done >= 1 and (run.path / "weights.safetensors").is_file() else [])


def check(parent: SavedRun, config: TrainConfig, epoch: int) -> None:
    """ForkError unless `config` forked from `parent` at `epoch` makes sense: an epoch it kept, more epochs than
    that, and only FORKABLE settings changed."""
    offered = epochs_offered(parent)
    if not offered:
        raise ForkError("This run has no finished epoch to go on from.")
    if epoch not in offered:
        raise ForkError(f"Epoch {epoch} is not one this run kept: pick one of {_listed(offered)}.")
    if config.epochs <= epoch:
        raise ForkError(f"The fork must train past epoch {epoch}: set its epochs above {epoch}.")
    was = parent.config
    for name, value in config.to_dict().items():
        if name in FORKABLE or getattr(was, name) == value:
            continue
        if name in MODEL:
            raise ForkError(f"{name} cannot change in a fork: it would change the model the fork goes on training.")
        raise ForkError(f"{name} cannot change in a fork: the optimiser, learning-rate schedule and batches it "
                        f"goes on with depend on it. A fork may change {', '.join(FORKABLE)}.")
    if config.epochs != was.epochs and was.lr_schedule in ON_EPOCHS and epoch in checkpoints.kept(parent.path, epoch):
        raise ForkError(f"epochs cannot change in a fork of a run with the {was.lr_schedule} learning-rate schedule: "
                        f"its shape is drawn over the run's {was.epochs} epochs.")


def prepare(parent: SavedRun, config: TrainConfig, epoch: int) -> Fork:
    """The fork of `parent` at `epoch` with `config`, checked (ForkError) and its state read (RunError naming the
    file). Its β and LR are those of `config`; the rest of the state is the parent's at that epoch's end."""
    check(parent, config, epoch)
    if epoch in checkpoints.kept(parent.path, epoch):
        checkpoint = checkpoints.load(parent.path, epoch)
        settings = {"lr": checkpoint.values["lr"], "beta": checkpoint.values["beta"]}
    else:
        checkpoint = Checkpoint(checkpoints.prefixed("model", _weights(parent)),
                                {"epoch": epoch, "step": _step_at(parent, epoch)})
        settings = {"lr": parent.config.lr, "beta": parent.config.beta}
    step = checkpoint.values["step"]
    history = [_row(row) for row in parent.epochs[:epoch]]
    steps = [row for row in parent.steps if isinstance(row, dict) and isinstance(row.get("step"), (int, float))
             and row["step"] <= step]
    changes = parent.meta.get("live_changes") if isinstance(parent.meta.get("live_changes"), list) else []
    changes = [c for c in changes if isinstance(c, dict) and isinstance(c.get("step"), int) and c["step"] <= step]
    return Fork(parent.name, cards.title(parent), checkpoint, settings, history, steps, changes)


def _weights(run: SavedRun) -> dict:
    try:
        return {name: t.detach().clone() for name, t in run.load_model().state_dict().items()}
    except SafetensorError as exc:
        raise RunError(f"{run.name}/weights.safetensors is damaged ({exc})") from None


def _step_at(run: SavedRun, epoch: int) -> int:
    steps = run.epochs[epoch - 1].get("step") if len(run.epochs) >= epoch else None
    return int(steps) if isinstance(steps, float) and steps >= 0 else int(run.meta.get("steps_done") or 0)


def _row(row: dict) -> dict:
    """A metrics.csv row as the job's history holds it: counters as whole numbers, no final-score columns."""
    return {k: int(v) if k in ("epoch", "step") else v for k, v in row.items() if not k.startswith("test_")}


def _listed(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs)) if len(epochs) <= 12 else f"{epochs[0]}, {epochs[1]}, …, {epochs[-1]}"

