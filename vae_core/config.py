"""TrainConfig: every setting of a training run, as plain validated data with a JSON form."""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
from dataclasses import dataclass, field, fields

from vae_core import limits

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "gelu")
ARCHITECTURES = ("mlp", "conv")
MODES = ("vae", "ae")
RECON_LOSSES = ("bce", "mse", "mixed")
BETA_SCHEDULES = ("constant", "warmup", "cyclical")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "plateau")
DEVICES = ("auto", "cpu", "cuda", "mps")  # auto: CUDA, then Apple's MPS, then the CPU (vae_core/devices.py)


# Bounds of every numeric setting (latent_dim and epochs are also capped by the server's limits). Widgets,
# live changes and validation all read them here.
RANGES: dict[str, tuple[float, float]] = {
    "dropout": (0.0, 0.9), "mse_sigma": (1e-3, 10.0), "mixed_weight": (0.0, 1.0), "beta": (0.0, 1000.0),
    "beta_warmup_epochs": (0.0, 1000.0), "beta_cycles": (1, 100), "beta_cycle_ratio": (0.01, 1.0),
    "capacity_gamma": (0.0, 10000.0), "capacity_max": (0.0, 1000.0), "capacity_ramp_epochs": (0.0, 1000.0),
    "free_bits": (0.0, 10.0), "adv_weight": (0.0, 100.0), "l1": (0.0, 1.0), "lr": (1e-7, 1e4),
    "momentum": (0.0, 0.999), "weight_decay": (0.0, 1.0), "lr_warmup_epochs": (0.0, 1000.0),
    "lr_step_epochs": (1, 1000), "lr_gamma": (0.01, 1.0), "lr_patience": (0, 100), "grad_clip": (0.0, 1000.0),
    "batch_size": (1, 4096), "seed": (0, 2**31 - 1), "aug_shift": (0.0, 0.5), "aug_rotation": (0.0, 180.0),
    "aug_zoom": (0.0, 0.5), "patience": (1, 1000), "min_delta": (0.0, 1000.0),
}
LIVE = ("lr", "beta")  # the settings a running job accepts changes of
# What 2-D point data needs, and why: the one rule between a dataset's kind and the settings.
FOR_POINTS = {
    "recon_loss": ("mse", "2-D points are not in [0, 1]; use mse for this dataset"),
    "architecture": ("mlp", "the convolutional model needs image data; use mlp for 2-D points"),
    "augment": (False, "augmentation applies to images only"),
}


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range; the message names the field."""


@dataclass
class TrainConfig:
    # data
    dataset: str = "digits"
    normalize_inputs: bool = False  # standardise the encoder's input per feature; targets stay as they are
    # model
    architecture: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # MLP widths, or conv channels per layer
    latent_dim: int = field(default_factory=lambda: min(2, limits.current().max_latent))
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    mode: str = "vae"  # "ae": deterministic encoder, no KL term
    # objective
    recon_loss: str = "bce"
    mse_sigma: float = 0.1  # σ of the Gaussian decoder for MSE
    mixed_weight: float = 0.5  # share of BCE in the mixed loss
    beta: float = 1.0
    beta_schedule: str = "constant"
    beta_warmup_epochs: float = 5.0
    beta_cycles: int = 4
    beta_cycle_ratio: float = 0.5
    capacity: bool = False
    capacity_gamma: float = 2.0  # large γ keeps a full-size gradient at the target and swamps reconstruction
    capacity_max: float = 25.0  # nats
    capacity_ramp_epochs: float = 10.0
    free_bits: float = 0.0  # nats per latent dimension
    adv_weight: float = 0.0  # 0 turns the discriminator off
    l1: float = 0.0
    # optimisation
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_warmup_epochs: float = 0.0
    lr_step_epochs: int = 10
    lr_gamma: float = 0.5  # decay factor of step (per step_epochs), exponential (per epoch) and plateau
    lr_patience: int = 2
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    epochs: int = field(default_factory=lambda: min(30, limits.current().max_epochs))  # within the server's cap
    batch_size: int = 32
    seed: int = 0
    # augmentation (images, training batches only)
    augment: bool = False
    aug_shift: float = 0.1  # fraction of the side
    aug_rotation: float = 10.0  # degrees
    aug_zoom: float = 0.1  # relative
    aug_flip: bool = False
    # early stopping on validation loss
    early_stopping: bool = False
    patience: int = 5
    min_delta: float = 0.0
    # where it trains: resolved by the machine that trains it, so a saved run loads anywhere
    device: str = "auto"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        lim = limits.current()
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        _choice("architecture", self.architecture, ARCHITECTURES)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("mode", self.mode, MODES)
        _choice("recon_loss", self.recon_loss, RECON_LOSSES)
        _choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("device", self.device, DEVICES)
        if not self.dataset or len(self.dataset) > 200:
            raise ConfigError("dataset: must be a dataset name of 1 to 200 characters")
        if not 1 <= len(self.hidden) <= 6:
            raise ConfigError(f"hidden: must list 1 to 6 layer widths, got {len(self.hidden)}")
        for w in self.hidden:
            _range("hidden", w, 1, 4096)
        _range("latent_dim", self.latent_dim, 1, min(64, lim.max_latent))
        _range("epochs", self.epochs, 1, lim.max_epochs)
        for name, (low, high) in RANGES.items():
            _range(name, getattr(self, name), low, high)
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError("nesterov: only applies to the sgd optimizer")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov: needs a momentum above 0")
        if self.lr_schedule == "onecycle" and self.lr_warmup_epochs > 0:
            raise ConfigError("lr_warmup_epochs: the one-cycle schedule has its own warm-up; set it to 0")

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, *, strict: bool = True) -> "TrainConfig":
        """Build from untrusted data: unknown keys are an error when `strict`, else ignored."""
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(k[:60] if isinstance(k, str) else _show(k) for k in set(data) - set(known))
        if unknown and strict:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown[:10])}")
        values = {k: _coerce(k, v, known[k].type) for k, v in data.items() if k in known}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, *, strict: bool = True) -> "TrainConfig":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ConfigError(f"config: not valid JSON ({exc})") from None
        return cls.from_dict(data, strict=strict)


def live_value(name: str, value: float) -> float:
    """A live change of a LIVE setting as a float; ConfigError naming it when outside its range."""
    if name not in LIVE:
        raise ConfigError(f"{name}: cannot be changed while a run trains")
    low, high = RANGES[name]
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high):
        raise ConfigError(f"{name}: must be between {low} and {high}, got {_show(value)}")
    return float(value)


def check_compatible(config: TrainConfig, is_image: bool) -> None:
    """Refuse settings that make no sense for the data (FOR_POINTS), naming the field."""
    if is_image:
        return
    for name, (needed, why) in FOR_POINTS.items():
        if getattr(config, name) != needed:
            raise ConfigError(f"{name}: {why}")


def parse_numbers(text: str, kind: type = int) -> list:
    """ "64, 32" as [64, 32]: numbers separated by commas (spaces around them ignored; "16 8" is refused, not
    read as 168); ValueError names the bad one."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [kind(part) for part in parts]
    except ValueError:
        noun = "whole numbers" if kind is int else "numbers"
        raise ValueError(f"expected {noun} separated by commas, got {text!r:.40}") from None


def _coerce(name: str, value, type_name: str):
    """Lists arrive from JSON as lists; keep everything else as given and let validation judge it."""
    if type_name == "list[int]" and isinstance(value, tuple):
        return list(value)
    if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{name}: expected a finite number, got {_show(value)}") from None
    return value


class _ShortRepr(reprlib.Repr):
    """repr for error messages about untrusted values: short, and safe for ints too long to print."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother, self.maxlong = 3, 60, 60, 40

    def repr_int(self, x, level):
        if x.bit_length() > 128:  # str() of a huge int is slow, and refused past 4300 digits
            return f"<a {x.bit_length()}-bit number>"
        return super().repr_int(x, level)


def _show(value) -> str:
    return _ShortRepr().repr(value)


def _check_type(name: str, value, type_name: str) -> None:
    ok = {
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
        "list[int]": lambda v: isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
    }[type_name]
    if not ok(value):
        expected = {"list[int]": "a list of whole numbers", "int": "a whole number", "float": "a finite number",
                    "bool": "true or false", "str": "text"}[type_name]
        raise ConfigError(f"{name}: expected {expected}, got {_show(value)}")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}; got {_show(value)}")


def _range(name: str, value, low, high) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {_show(value)}")
