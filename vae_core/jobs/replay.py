"""A run's replay: a small frame at every epoch's end (the latent positions of a fixed set of validation points,
reconstructions of a few fixed originals, decoded fixed prior draws), kept in the run folder as
replay.safetensors so a saved or imported run shows how its latent space formed.

Sizes are capped so a replay stays small next to the weights: at most MAX_FRAMES frames (a long run keeps every
`stride`-th epoch, the stride doubling as it grows, and always its latest) and MAX_BYTES of arrays. Images are kept
as uint8 at most MAX_SIDE pixels a side, positions as float16. A 30-epoch digits run's replay is about 70 KB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from vae_core import runs
from vae_core.jobs import snapshots
from vae_core.maths.metrics import project_2d
from vae_core.maths.models import VAE
from vae_core.train import Posterior, chunk_rows

REPLAY = "replay.safetensors"
N_POINTS = 300  # latent points per frame, and 2-D data's reconstructions and prior samples
N_IMAGES = 8  # originals (with their reconstructions) and prior samples per frame, for image data
MAX_SIDE = 64  # larger images are averaged down to this many pixels a side
MAX_FRAMES = 60  # a 200-epoch run keeps 51 (every 4th epoch)
MAX_BYTES = 2 * 2**20  # of arrays; the file adds a header of a few hundred bytes
MAX_FILE_BYTES = MAX_BYTES + 2**16
MAX_LABEL = 1000
FLOAT16_MAX = 65_000.0  # positions beyond float16's range are kept at its edge, not as infinities
ARRAYS = {"epochs": np.int32, "latent": np.float16, "labels": np.int32}  # images: uint8, or float16 points


@dataclass(frozen=True)
class Frame:
    epoch: int
    latent: np.ndarray  # (points, 2) float16: posterior means as drawn (PCA above 2 dimensions)
    reconstructions: np.ndarray  # (originals, C, H, W) uint8, or (points, 2) float16 for 2-D data
    samples: np.ndarray  # decoded fixed prior draws, as reconstructions


@dataclass
class Replay:
    originals: np.ndarray  # (n, C, H, W) uint8 or (n, 2) float16: the inputs the reconstructions are of
    labels: np.ndarray | None  # (points,) int32 labels of the latent points
    frames: list[Frame] = field(default_factory=list)
    cap: int = MAX_FRAMES  # frames kept at most
    stride: int = 1  # epochs between kept frames (the latest is kept whatever its epoch)

    @property
    def is_image(self) -> bool:
        return self.originals.ndim == 4

    def add(self, frame: Frame) -> None:
        """Keep `frame` as the latest; thin evenly (double the stride) when over the cap."""
        if self.frames and self.frames[-1].epoch % self.stride:  # kept only as the latest
            self.frames.pop()
        self.frames.append(frame)
        while len(self.frames) > self.cap:
            self.stride *= 2
            self.frames = [f for f in self.frames[:-1] if f.epoch % self.stride == 0] + self.frames[-1:]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"epochs": np.array([f.epoch for f in self.frames], np.int32),
               "latent": np.stack([f.latent for f in self.frames]), "originals": self.originals,
               "reconstructions": np.stack([f.reconstructions for f in self.frames]),
               "samples": np.stack([f.samples for f in self.frames])}
        return out | ({} if self.labels is None else {"labels": self.labels})


def frame_cap(frame_bytes: int) -> int:
    """Frames kept at most when each takes `frame_bytes`: MAX_FRAMES, fewer for large images."""
    return max(3, min(MAX_FRAMES, MAX_BYTES // max(1, frame_bytes)))


class Recorder:
    """Takes a run's frames from fixed inputs (the first validation rows) and fixed prior draws (the first of
    the live view's: snapshots.SnapshotMaker draws them from the same seed), and saves them when new."""

    def __init__(self, val: torch.Tensor, labels: torch.Tensor | None, latent_dim: int, seed: int):
        self.val = val
        self.x = val[:N_POINTS]
        is_image = val.dim() == 4
        n_shown = min(N_IMAGES if is_image else N_POINTS, len(self.x))
        self.shown = slice(0, n_shown)
        n_drawn = snapshots.N_IMAGES if is_image else snapshots.N_POINTS  # drawn as the live view's
        prior_z = torch.randn(n_drawn, latent_dim, generator=torch.Generator().manual_seed(seed + 1))
        self.prior_z = prior_z[:N_IMAGES if is_image else N_POINTS].to(val.device)
        labels = None if labels is None else labels[:N_POINTS].numpy().astype(np.int32)
        originals = _kept(self.x[self.shown])
        frame_bytes = len(self.x) * 2 * 2 + originals[:1].nbytes * (n_shown + len(self.prior_z)) + 4  # + epoch
        self.replay = Replay(originals, labels, cap=frame_cap(frame_bytes))
        self._saved = None  # the latest frame's epoch when last saved

    @torch.inference_mode()
    def record(self, model: VAE, epoch: int, posterior: Posterior | None = None) -> None:
        """The frame of the model at the end of `epoch` (0: before training); a `posterior` of the validation
        split at this step saves encoding it again."""
        was_training = model.training
        model.eval()
        if posterior is not None and posterior.split is self.val:
            mu = posterior.mu[:len(self.x)]
        else:
            mu = torch.cat([model.encode(xb)[0] for xb in self.x.split(chunk_rows(self.x[0]))])
        recon = model.output_mean(model.decode(mu[self.shown]))
        samples = model.output_mean(model.decode(self.prior_z))
        model.train(was_training)
        latent = np.clip(project_2d(mu.cpu().numpy()), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
        self.replay.add(Frame(epoch, latent, _kept(recon), _kept(samples)))

    def save(self, run_dir: Path) -> None:
        """Write the replay atomically when it has a frame not yet saved (before meta.json: see `load`)."""
        latest = self.replay.frames[-1].epoch if self.replay.frames else None
        if latest is not None and latest != self._saved:
            runs.write_atomic(run_dir / REPLAY, save_arrays(self.replay.arrays()))
            self._saved = latest


def _kept(x: torch.Tensor) -> np.ndarray:
    """Images as uint8 at most MAX_SIDE a side; 2-D points as float16."""
    x = x.detach().float().cpu()
    if x.dim() == 2:
        return np.clip(x.numpy(), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
    factor = math.ceil(max(x.shape[-2:]) / MAX_SIDE)
    if factor > 1:
        x = F.avg_pool2d(x, factor, ceil_mode=True)
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def load(run_dir: str | Path, epochs_done: int | None = None) -> Replay | None:
    """The run's replay, None when it has none (runs saved before replays). Frames past `epochs_done` are left
    out: replay.safetensors is written before meta.json, which says how far the run got. RunError when the
    file is damaged, over its caps or not a replay; nothing in it runs (safetensors, no pickle)."""
    path = Path(run_dir) / REPLAY
    where = f"{path.parent.name}/{REPLAY}"
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            raise runs.RunError(f"{where} is larger than a replay may be ({MAX_FILE_BYTES // 1024} KB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise runs.RunError(f"{where} cannot be read ({exc.strerror or exc})") from None
    try:
        arrays = load_arrays(raw)
    except (SafetensorError, ValueError, RuntimeError, OverflowError, TypeError) as exc:
        raise runs.RunError(f"{where} is not a valid safetensors file ({exc})") from None
    problem = _problem(arrays)
    if problem:
        raise runs.RunError(f"{where} is not a valid replay: {problem}")
    frames = [Frame(int(e), latent, recon, samples) for e, latent, recon, samples in
              zip(arrays["epochs"], arrays["latent"], arrays["reconstructions"], arrays["samples"])
              if epochs_done is None or e <= epochs_done]
    return Replay(arrays["originals"], arrays.get("labels"), frames) if frames else None


def _problem(arrays: dict[str, np.ndarray]) -> str:
    """What is wrong with a replay's arrays ("" when nothing): names, dtypes, shapes, caps."""
    names = set(arrays)
    expected = {"epochs", "latent", "originals", "reconstructions", "samples"}
    if not expected <= names <= expected | {"labels"}:
        return f"it holds {', '.join(sorted(names)) or 'nothing'}; a replay holds {', '.join(sorted(expected))}"
    for name, dtype in ARRAYS.items():
        if name in arrays and arrays[name].dtype != dtype:
            return f"{name} is {arrays[name].dtype}, not {np.dtype(dtype)}"
    if sum(a.nbytes for a in arrays.values()) > MAX_BYTES:
        return f"its arrays take more than {MAX_BYTES // 1024} KB"
    epochs, latent, originals = arrays["epochs"], arrays["latent"], arrays["originals"]
    frames = len(epochs)
    if epochs.ndim != 1 or not 1 <= frames <= MAX_FRAMES:
        return f"it must hold 1 to {MAX_FRAMES} frames"
    if epochs[0] < 0 or (np.diff(epochs) <= 0).any():
        return "its epochs are not increasing from 0 or more"
    if latent.ndim != 3 or latent.shape[0] != frames or not 1 <= latent.shape[1] <= N_POINTS or latent.shape[2] != 2:
        return f"latent must be (frames, at most {N_POINTS} points, 2), not {latent.shape}"
    labels = arrays.get("labels")
    if labels is not None and (labels.shape != latent.shape[1:2] or labels.min() < 0 or labels.max() >= MAX_LABEL):
        return f"labels must be one per latent point, from 0 to {MAX_LABEL - 1}"
    image = originals.ndim == 4
    if image and (originals.dtype != np.uint8 or originals.shape[1] not in (1, 3)
                  or not 1 <= originals.shape[0] <= N_IMAGES or max(originals.shape[2:]) > MAX_SIDE):
        return f"originals must be at most {N_IMAGES} uint8 images of 1 or 3 channels, {MAX_SIDE} pixels a side"
    if not image and (originals.dtype != np.float16 or originals.ndim != 2 or originals.shape[1] != 2
                      or not 1 <= len(originals) <= N_POINTS):
        return f"originals must be images or at most {N_POINTS} float16 2-D points"
    for name, count in (("reconstructions", len(originals)), ("samples", N_IMAGES if image else N_POINTS)):
        a = arrays[name]
        if a.dtype != originals.dtype or a.shape[0] != frames or a.shape[2:] != originals.shape[1:] \
                or not 1 <= a.shape[1] <= count or (name == "reconstructions" and a.shape[1] != count):
            return f"{name} must be (frames, at most {count}, {', '.join(map(str, originals.shape[1:]))}) " \
                   f"{originals.dtype}, not {a.shape} {a.dtype}"
    return ""
