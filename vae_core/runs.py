"""Saved runs: one folder each with config.json, metrics.csv, steps.json, meta.json, weights.safetensors.

Every file is written atomically (a temporary file, then a rename), so a run folder is always
consistent even if the process dies mid-write. Loading never unpickles anything.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vae_core.config import ConfigError, TrainConfig
from vae_core.maths import score as final_score
from vae_core.maths.models import VAE, build_model, parameter_count

if TYPE_CHECKING:
    from vae_core.train import Trainer

FILES = ("config.json", "meta.json", "metrics.csv", "steps.json", "weights.safetensors")
MAX_FILE_BYTES = 200 * 1024 * 1024
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunError(ValueError):
    """A run folder is missing, incomplete or corrupt; the message names the file."""


def default_runs_dir() -> Path:
    return Path(os.environ.get("VAE_LAB_RUNS", "runs"))


def new_run_dir(runs_dir: str | os.PathLike, config: TrainConfig) -> Path:
    """A fresh folder named from the time, a safe form of the dataset name and a random suffix."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", config.dataset).strip("-")[:30] or "data"
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(3)}"
    path = Path(runs_dir) / name
    path.mkdir(parents=True, exist_ok=False)
    return path


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metrics_csv(epochs: list[dict[str, float]], score: dict | None = None) -> str:
    """One row per epoch; the final score's columns (test_neg_elbo, …) on the last, once the run has one."""
    if score and epochs:
        epochs = [*epochs[:-1], {**epochs[-1], **final_score.csv_columns(score)}]
    columns = sorted({k for row in epochs for k in row}, key=lambda k: (k != "epoch", k))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(epochs)
    return out.getvalue()


def started(run_dir: Path) -> tuple[float, str]:
    """When a run started, to order runs by (its config.json is written once, at the start; the folder's
    name says the second only)."""
    try:
        return (run_dir / "config.json").stat().st_mtime, run_dir.name
    except OSError:
        return 0.0, run_dir.name


def save_config(run_dir: Path, config: TrainConfig) -> None:
    write_atomic(run_dir / "config.json", config.to_json().encode())


def run_meta(trainer: Trainer, status: str, message: str, best_epoch: int | None = None,
             live_changes: list[dict] | tuple = (), score: dict | None = None) -> dict:
    """meta.json of a run as far as `trainer` got: how it stands, what its model needs to load, and its final
    score on the test split once it has one."""
    return {"status": str(status), "message": message, "dataset": trainer.config.dataset,
            "sample_shape": list(trainer.data.sample_shape), "parameters": parameter_count(trainer.model),
            "epochs_done": trainer.epoch, "steps_done": trainer.step, "best_epoch": best_epoch,
            "live_changes": list(live_changes), "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")} \
        | ({"score": score} if score else {})


def save_progress(run_dir: Path, meta: dict, epochs: list[dict], steps: list[dict],
                  weights: dict[str, torch.Tensor] | None) -> None:
    """Write metrics and (when given) weights first, then meta.json, which says how far the run got."""
    write_atomic(run_dir / "metrics.csv", metrics_csv(epochs, meta.get("score")).encode())
    write_atomic(run_dir / "steps.json", json.dumps(steps).encode())
    if weights is not None:
        write_atomic(run_dir / "weights.safetensors",
                     save_safetensors({k: v.contiguous() for k, v in weights.items()}))
    write_atomic(run_dir / "meta.json", json.dumps(meta, indent=2).encode())


@dataclass
class SavedRun:
    path: Path
    config: TrainConfig
    meta: dict
    epochs: list[dict[str, float]]
    steps: list[dict[str, float]]

    @property
    def name(self) -> str:
        return self.path.name

    def load_model(self) -> VAE:
        """The trained model, from safetensors (no pickle), checked against the config's architecture."""
        raw = _read(self.path / "weights.safetensors")
        try:
            state = load_safetensors(raw)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise RunError(f"{self.name}/weights.safetensors is not a valid safetensors file ({exc})") from None
        shape = tuple(self.meta["sample_shape"])
        try:
            with torch.device("meta"):  # checks the parameter limit without allocating the model
                build_model(self.config, shape)
            model = build_model(self.config, shape)
        except ConfigError as exc:
            raise RunError(f"{self.name}: config.json and meta.json describe a model this server refuses ({exc})") \
                from None
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RunError(f"{self.name}/weights.safetensors does not fit the model in config.json "
                           f"({str(exc).splitlines()[0]})") from None
        if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
            raise RunError(f"{self.name}/weights.safetensors holds NaN or infinite weights")
        model.eval()
        return model


def _read(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise RunError(f"{path.parent.name}/{path.name} is missing")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RunError(f"{path.parent.name}/{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB")
        return path.read_bytes()
    except OSError as exc:  # unreadable (permissions, I/O error)
        raise RunError(f"{path.parent.name}/{path.name} cannot be read ({exc.strerror or exc})") from None


def _valid_meta(meta) -> bool:
    """meta.json as the job writes it: a sample shape the models accept, a count of finished epochs, and a
    final score as maths/score.py writes it, if any (runs saved before scores have none)."""
    if not isinstance(meta, dict):
        return False
    shape = meta.get("sample_shape")
    ints = isinstance(shape, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
    shape_ok = ints and (shape == [2] or (len(shape) == 3 and shape[0] in (1, 3)
                                          and all(1 <= v <= 4096 for v in shape[1:])))
    epochs = meta.get("epochs_done", 0)
    return (shape_ok and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0
            and isinstance(meta.get("status", ""), str)
            and ("score" not in meta or final_score.valid(meta["score"])))


def _json(path: Path):
    try:
        return json.loads(_read(path))
    except (ValueError, RecursionError):  # also UnicodeDecodeError, and ints too long to convert
        raise RunError(f"{path.parent.name}/{path.name} is not valid JSON") from None


def load_run(path: str | os.PathLike, *, steps: bool = True) -> SavedRun:
    """A run folder, checked (RunError names what is wrong). Without `steps`, the per-step history is left
    unread (a board of many runs needs their epochs only)."""
    path = Path(path)
    try:
        config = TrainConfig.from_dict(_json(path / "config.json"), strict=False)
    except ConfigError as exc:
        raise RunError(f"{path.name}/config.json: {exc}") from None
    meta = _json(path / "meta.json")
    if not _valid_meta(meta):
        raise RunError(f"{path.name}/meta.json lacks a valid sample shape, epoch count, status or score")
    try:
        epochs = []
        for row in csv.DictReader(io.StringIO(_read(path / "metrics.csv").decode())):
            if None in row:  # more fields than the header names
                raise ValueError("a row is longer than the header")
            epochs.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error):
        raise RunError(f"{path.name}/metrics.csv is not a valid metrics table") from None
    # metrics.csv is written just before meta.json: a process killed between the two leaves one epoch
    # more in the table than meta.json says were done; meta.json is the record of how far the run got.
    epochs = epochs[:meta.get("epochs_done", len(epochs))]
    steps = _json(path / "steps.json") if steps else []
    if not isinstance(steps, list):
        raise RunError(f"{path.name}/steps.json is not a list of steps")
    return SavedRun(path, config, meta, epochs, steps)


def run_path(runs_dir: str | os.PathLike, name: str) -> Path:
    """The folder of a run named by a user, refusing names that could leave the runs directory."""
    if not RUN_NAME.match(name):
        raise RunError(f"{name!r:.60} is not a valid run name")
    return Path(runs_dir) / name


def list_runs(runs_dir: str | os.PathLike, *, steps: bool = True) -> list[SavedRun]:
    """Every loadable run in the folder, newest first; broken folders are skipped."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(root.iterdir(), reverse=True):
        if path.is_dir() and RUN_NAME.match(path.name):
            try:
                runs.append(load_run(path, steps=steps))
            except RunError:
                continue
    return runs
