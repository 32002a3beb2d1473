"""Checkpoints: a trainer's whole state at an epoch's end, kept in its run folder so a run can be forked there.

A run folder's `checkpoints/` holds `epoch-0010.safetensors` (the tensors: model, critic, the optimisers'
moments, the best weights early stopping would restore, the random stream) and `epoch-0010.json` (the plain
values: counters, β, the base LR, the LR schedule's and the optimisers' settings, early stopping's record), each
written atomically, the JSON second: an epoch counts as kept once both are there and meta.json says it was done.

What a run keeps (`every`): the state at every n-th epoch's end, n the smallest that keeps them all within 20 MB
(KEEP_BYTES), and always at its latest epoch's end, which a fork "from the end" needs. Nothing here unpickles: the
tensors load through safetensors, the rest is JSON, each file under a size cap.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vae_core import limits
from vae_core.runs import RunError, write_atomic
from vae_core.train import Track, Trainer

FOLDER = "checkpoints"
KEEP_BYTES = 20 * 2**20  # one run's checkpoints together, at most (but for its latest epoch's)
FILE = re.compile(r"^epoch-(\d{4,6})\.(safetensors|json)$")
MAX_JSON_BYTES = 2**20


@dataclass(frozen=True)
class Checkpoint:
    """A trainer's state between two epochs, as tensors (safetensors) and plain values (JSON): restored into a
    trainer of the same shape (`restore`), training goes on as if it had never stopped. A checkpoint of
    weights only (a run saved before checkpoints existed) has no "optimizer" value."""
    tensors: dict[str, torch.Tensor]
    values: dict

    @property
    def epoch(self) -> int:
        return self.values["epoch"]

    @property
    def full(self) -> bool:
        return "optimizer" in self.values

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


# --- in a run folder ---------------------------------------------------------------------------------
def every(one: Checkpoint, epochs: int) -> int:
    """Keep every n-th epoch's checkpoint: n the smallest that keeps a run's `epochs` of model, critic and optimiser
    state within KEEP_BYTES (the best weights early stopping would restore, held once the best epoch is behind, come
    on top)."""
    size = sum(t.numel() * t.element_size() for name, t in one.tensors.items() if not name.startswith("best/"))
    return max(1, math.ceil(size * epochs / KEEP_BYTES))


def _path(run_dir: Path, epoch: int, kind: str) -> Path:
    return Path(run_dir) / FOLDER / f"epoch-{epoch:04d}.{kind}"


def save(run_dir: Path, checkpoint: Checkpoint) -> None:
    """Write the checkpoint of its epoch: the tensors first, then the values (which say the pair is whole)."""
    (Path(run_dir) / FOLDER).mkdir(exist_ok=True)
    tensors = {name: tensor.contiguous() for name, tensor in checkpoint.tensors.items()}
    write_atomic(_path(run_dir, checkpoint.epoch, "safetensors"), save_safetensors(tensors))
    write_atomic(_path(run_dir, checkpoint.epoch, "json"), json.dumps(checkpoint.values).encode())


def prune(run_dir: Path, latest: int, every_n: int) -> None:
    """Remove the checkpoints before `latest` that are not every `every_n`-th epoch's (call it once meta.json
    says `latest` was done: a crash before then leaves the one before)."""
    for epoch in _epochs(run_dir):
        if epoch < latest and epoch % every_n:
            for kind in ("json", "safetensors"):  # the JSON first: without it the pair no longer counts
                _path(run_dir, epoch, kind).unlink(missing_ok=True)


def _epochs(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / FOLDER
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return sorted({int(m[1]) for m in map(FILE.match, names) if m and m[2] == "json"
                   and f"epoch-{m[1]}.safetensors" in names})


def kept(run_dir: Path, epochs_done: int) -> list[int]:
    """The epochs whose checkpoints the run folder holds whole, up to those meta.json says were done."""
    return [epoch for epoch in _epochs(run_dir) if 1 <= epoch <= epochs_done]


def max_bytes() -> int:
    """The largest checkpoint file this server reads: a model at the parameter limit with two moments per
    parameter and the best weights, a critic, and room to spare."""
    return 16 * limits.current().max_params + 64 * 2**20


def load(run_dir: Path, epoch: int) -> Checkpoint:
    """The checkpoint of `epoch`, checked as far as files can be (RunError naming the file); `restore`
    checks that it fits the model."""
    tensors_path, values_path = _path(run_dir, epoch, "safetensors"), _path(run_dir, epoch, "json")
    where = f"{Path(run_dir).name}/{FOLDER}/{tensors_path.stem}"
    try:
        if tensors_path.stat().st_size > max_bytes() or values_path.stat().st_size > MAX_JSON_BYTES:
            raise RunError(f"{where} is larger than this server reads")
        tensors = load_safetensors(tensors_path.read_bytes())
        values = json.loads(values_path.read_bytes())
    except FileNotFoundError:
        raise RunError(f"{where}: the run kept no checkpoint of epoch {epoch}") from None
    except OSError as exc:
        raise RunError(f"{where} cannot be read ({exc.strerror or exc})") from None
    except (SafetensorError, ValueError, RecursionError) as exc:
        raise RunError(f"{where} is damaged ({str(exc)[:80]})") from None
    if not _valid(values, epoch) or not all(t.dtype == torch.uint8 if name == "generator" else t.is_floating_point()
                                            or t.dim() == 0 for name, t in tensors.items()):
        raise RunError(f"{where} lacks the counters, settings or tensors of a checkpoint")
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise RunError(f"{where} holds NaN or infinite values")
    return Checkpoint(tensors, values)


def _valid(values, epoch: int) -> bool:
    def count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    track = values.get("track") if isinstance(values, dict) else None
    return (isinstance(track, dict) and values.get("epoch") == epoch and count(values.get("step"))
            and count(values.get("schedule_steps")) and all(number(values.get(k)) for k in ("lr", "beta", "beta_used"))
            and isinstance(values.get("device"), str) and isinstance(values.get("optimizer"), dict)
            and count(track.get("bad_epochs")) and (track.get("best_epoch") is None or count(track["best_epoch"]))
            and isinstance(track.get("best_val"), (int, float))
            and (track.get("first_loss") is None or number(track["first_loss"])))


# --- a trainer's state as tensors and values ----------------------------------------------------------
def take(trainer: Trainer) -> Checkpoint:
    """`trainer`'s state as it is between two epochs (take it from `on_epoch`), copied to the CPU."""
    tensors = prefixed("model", trainer.weights()) | {"generator": trainer.generator.get_state().cpu()}
    track = trainer.track
    if track.best is not None and track.best_epoch != trainer.epoch:  # else the best weights are the model's
        tensors |= prefixed("best", track.best)
    schedule = trainer.schedule
    values = {"epoch": trainer.epoch, "step": trainer.step, "lr": trainer.config.lr, "beta": trainer.beta,
              "beta_used": trainer.beta_used, "device": trainer.device.type, "schedule_steps": schedule.steps,
              "per_step": schedule.per_step.state_dict() if schedule.per_step else None,
              "plateau": schedule.plateau.state_dict() if schedule.plateau else None,
              "track": {"best_val": track.best_val, "best_epoch": track.best_epoch,
                        "bad_epochs": track.bad_epochs, "first_loss": track.first_loss},
              "optimizer": optimizer_values(trainer.optimizer, "optimizer", tensors)}
    if trainer.discriminator is not None:
        tensors |= prefixed("critic", {k: v.detach().to("cpu", copy=True)
                                        for k, v in trainer.discriminator.state_dict().items()})
        values["critic_optimizer"] = optimizer_values(trainer.disc_optimizer, "critic_optimizer", tensors)
    return Checkpoint(tensors, values)


def restore(trainer: Trainer, checkpoint: Checkpoint) -> None:
    """Make `trainer` go on from `checkpoint`, a trainer of its shape's: the model, critic, optimisers, LR
    schedule, β, the step and epoch counters, early stopping's record and the random stream. One of weights only
    sets the model and the counters; the optimiser and LR schedule start afresh. ValueError when it does not fit."""
    tensors, values = checkpoint.tensors, checkpoint.values
    try:
        trainer.load_weights(part(tensors, "model"))
    except RuntimeError as exc:
        raise ValueError(f"its weights do not fit this model ({str(exc).splitlines()[0]})") from None
    trainer.step, trainer.epoch = values["step"], values["epoch"]
    if not checkpoint.full:
        return
    if values["device"] != trainer.device.type:  # the random stream's state is the device's own kind
        raise ValueError(f"it was trained on {values['device']!r:.10} and cannot go on on {trainer.device.type}")
    trainer.generator.set_state(tensors["generator"])
    load_optimizer(trainer.optimizer, values["optimizer"], tensors, "optimizer")
    if trainer.discriminator is not None:
        trainer.discriminator.load_state_dict(part(tensors, "critic"))
        load_optimizer(trainer.disc_optimizer, values["critic_optimizer"], tensors, "critic_optimizer")
    for scheduler, state in ((trainer.schedule.per_step, values["per_step"]), (trainer.schedule.plateau,
                                                                            values["plateau"])):
        if scheduler is not None:
            same_kind(scheduler.state_dict(), state, "the learning-rate schedule")
            scheduler.load_state_dict(state)
    trainer.schedule.steps = values["schedule_steps"]
    trainer.config = trainer.config.replace(lr=values["lr"])  # the base LR then (live changes included)
    trainer.beta, trainer.beta_used = values["beta"], values["beta_used"]
    track = values["track"]
    best = part(tensors, "best") or (trainer.weights() if track["best_epoch"] == trainer.epoch else None)
    trainer.track = Track(track["best_val"], track["best_epoch"], best, track["bad_epochs"], track["first_loss"])


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{name}": tensor for name, tensor in tensors.items()}


def part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix) + 1:]: t for name, t in tensors.items() if name.startswith(prefix + "/")}


def optimizer_values(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
    """An optimiser's state: its tensors go into `tensors` (as prefix/parameter/name), the rest is returned."""
    state = optimizer.state_dict()
    plain = {}
    for index, entries in state["state"].items():
        plain[str(index)] = {key: value for key, value in entries.items() if not torch.is_tensor(value)}
        tensors |= {f"{prefix}/{index}/{key}": value.detach().to("cpu", copy=True)
                    for key, value in entries.items() if torch.is_tensor(value)}
    return {"groups": state["param_groups"], "state": plain}


def load_optimizer(optimizer: torch.optim.Optimizer, values: dict, tensors: dict[str, torch.Tensor],
                   prefix: str) -> None:
    """Load what `optimizer_values` took, checked against the optimiser's own parameters and settings."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    same_kind(optimizer.state_dict()["param_groups"], values.get("groups"), "the optimiser's settings")
    state = {}
    for index, plain in values.get("state", {}).items():
        i = int(index) if str(index).isdigit() else -1
        if not 0 <= i < len(params) or not isinstance(plain, dict):
            raise ValueError(f"the optimiser's state names a parameter this model does not have ({index!r:.20})")
        state[i] = dict(plain)
        for key, tensor in part(tensors, f"{prefix}/{index}").items():
            if tensor.dim() and tensor.shape != params[i].shape:
                raise ValueError(f"the optimiser's {key} of parameter {i} does not fit its shape")
            state[i][key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": values["groups"]})


def same_kind(fresh, loaded, what: str) -> None:
    """ValueError unless `loaded` has the structure of `fresh` (the same keys and lengths, numbers for numbers,
    text for text): a schedule's or optimiser's state from a file never brings attributes of its own."""
    if isinstance(fresh, dict):
        ok = isinstance(loaded, dict) and set(fresh) == set(loaded)
    elif isinstance(fresh, (list, tuple)):
        ok = isinstance(loaded, (list, tuple)) and len(fresh) == len(loaded)
    elif isinstance(fresh, (bool, str)) or fresh is None:
        ok = type(loaded) is type(fresh)
    else:
        ok = isinstance(fresh, (int, float)) and isinstance(loaded, (int, float)) and not isinstance(loaded, bool)
    if not ok:
        raise ValueError(f"{what} in the checkpoint are not of this run's kind")
    if isinstance(fresh, dict):
        for key in fresh:
            same_kind(fresh[key], loaded[key], what)
    elif isinstance(fresh, (list, tuple)):
        for a, b in zip(fresh, loaded):
            same_kind(a, b, what)
