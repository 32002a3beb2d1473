"""The settings each built-in dataset trains well with, and what switching dataset does to the settings.

A few settings depend on the data (PER_DATASET); each dataset has its own values of them: those the user
left it with, else its recommendation. So the settings a dataset opens with never depend on the order in
which datasets were picked. The figures behind each recommendation: bench/README.md, "Recommended settings".
"""

from __future__ import annotations

from vae_core import limits
from vae_core.config import FOR_POINTS, TrainConfig

PER_DATASET = ("architecture", "hidden", "latent_dim", "recon_loss", "mse_sigma", "beta", "lr", "epochs",
               "batch_size", "augment")
LABELS = {"architecture": "architecture", "hidden": "hidden widths", "latent_dim": "latent size",
          "recon_loss": "loss", "mse_sigma": "decoder σ", "beta": "β", "lr": "learning rate", "epochs": "epochs",
          "batch_size": "batch size", "augment": "augmentation"}
_POINTS = {name: needed for name, (needed, _) in FOR_POINTS.items()}

# Only what differs from TrainConfig's defaults (which are digits'); 2-D points also take FOR_POINTS.
RECOMMENDED: dict[str, dict] = {
    "digits": {},
    "mnist": {},
    "fashion-mnist": {},
    # Small shapes on a black ground: the defaults (an MLP, 2 latent dimensions) reconstruct blurred blobs
    # (test −ELBO 67.6); a small conv net with 10 dimensions draws squares, ellipses and triangles (46.1).
    "shapes": {"architecture": "conv", "hidden": [16, 32, 64], "latent_dim": 10, "batch_size": 64},
    "moons": {},
    "circles": {},
    "gaussians": {},
    "swiss-roll": {},
}


def recommended(name: str, kind: str) -> dict:
    """The PER_DATASET settings `name` starts with (an uploaded dataset: the defaults for its kind),
    within this server's limits."""
    defaults = TrainConfig()
    values = {field: getattr(defaults, field) for field in PER_DATASET}
    if kind == "points":
        values |= _POINTS
    values |= RECOMMENDED.get(name, {})
    lim = limits.current()
    values["latent_dim"] = min(values["latent_dim"], lim.max_latent)
    values["epochs"] = min(values["epochs"], lim.max_epochs)
    return values


def switch(current: dict, new: str, kind: str, memory: dict[str, dict], old: str | None = None) -> dict:
    """The PER_DATASET settings for dataset `new` (of `kind`): those kept in `memory` for it, else its
    recommendation. `current` (the settings as they are) is first kept in `memory` under `old`."""
    if old is not None:
        memory[old] = {field: current[field] for field in PER_DATASET}
    return dict(memory.get(new) or recommended(new, kind))


def changes(before: dict, after: dict) -> list[str]:
    """What differs, in words: ["loss bce → mse", "architecture conv → mlp"]."""
    return [f"{LABELS[field]} {_show(before[field])} → {_show(after[field])}"
            for field in PER_DATASET if field in before and field in after and before[field] != after[field]]


def _show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)
