"""Random shifts, rotations, zooms and flips of an image batch, as one affine warp per image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vae_core.config import TrainConfig


def augment_batch(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """A randomly transformed copy of the image batch `x` (N, C, H, W); values stay in [0, 1]."""
    n, device = x.shape[0], x.device  # the generator's device too

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, device=device) * 2 - 1) * scale

    angle = uniform(math.radians(config.aug_rotation))
    zoom = 1 + uniform(config.aug_zoom)
    shift_x, shift_y = uniform(2 * config.aug_shift), uniform(2 * config.aug_shift)  # grid coordinates span 2
    flip = (torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -1.0, 1.0) if config.aug_flip
            else torch.ones(n, device=device))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift_x], 1), torch.stack([sin * flip, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
