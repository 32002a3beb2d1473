"""Where a run trains. A config names a device ("auto", "cpu", "cuda", "mps"); the machine that trains resolves
it here, so a saved run says what was asked for and still loads on any CPU (its weights are saved from the CPU).

`auto` picks CUDA, then Apple's MPS, then the CPU.
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import nn

from vae_core.config import ConfigError, TrainConfig


def available() -> list[str]:
    """The devices this machine can train on besides auto: the CPU, then CUDA and MPS where present."""
    return ["cpu", *(name for name in ("cuda", "mps") if _present(name))]


def resolve(name: str) -> torch.device:
    """The torch device that `name` (one of config.DEVICES) means here; ConfigError in plain words when the
    device asked for is not here."""
    if name == "auto":
        name = next((n for n in ("cuda", "mps") if _present(n)), "cpu")
    if name != "cpu" and not _present(name):
        raise ConfigError(f"device: {name} was asked for, but {missing(name)}; choose auto or cpu")
    return torch.device(name)


def missing(name: str) -> str:
    """Why `name` is not available here, in words."""
    if name == "cuda":
        return ("this torch build has no CUDA support" if not torch.backends.cuda.is_built()
                else "this machine has no CUDA GPU that torch can see")
    return "this machine has no Apple MPS (a Mac with Apple silicon)"


@functools.lru_cache(maxsize=8)
def describe(device: torch.device) -> str:
    """The device in words, for the pages and the CLI: "the CPU", "the GPU (NVIDIA A100, CUDA)", "Apple's MPS"."""
    if device.type == "cuda":
        return f"the GPU ({torch.cuda.get_device_name(device)}, CUDA)"
    return "Apple's MPS" if device.type == "mps" else "the CPU"


def wants_gpu(config: TrainConfig) -> bool:
    """Whether a run asks for a GPU of its own, so that a cluster backend reserves one (Ray's num_gpus=1): only
    when its config says cuda. Auto reserves none, and Ray hides the GPUs from an actor that reserved none
    (CUDA_VISIBLE_DEVICES=""): there auto trains on the CPU."""
    return config.device == "cuda"


def of(model: nn.Module) -> torch.device:
    """The device a model's weights are on (the CPU for a module without any, such as a test's stand-in)."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _present(name: str) -> bool:
    return torch.cuda.is_available() if name == "cuda" else torch.backends.mps.is_available()
