"""dSprites-like images: one white shape on black, drawn from five known generative factors.

Factors (float, in this column order):
  shape     0 square, 1 ellipse, 2 triangle (also the label)
  scale     one of SCALES, the shape's outer radius as a fraction of MAX_RADIUS
  rotation  radians in [0, 2 pi / k), k = the shape's rotational symmetry (4, 2, 3), so every
            value gives a different picture
  x, y      position of the centre in [0, 1] across the range that keeps the largest shape inside
"""

from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset, from_splits

SIZE = 32
N_TRAIN, N_VAL, N_TEST = 6000, 1000, 1000
SHAPE_NAMES = ("square", "ellipse", "triangle")
FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SYMMETRY = np.array([4, 2, 3])
SCALES = np.linspace(0.5, 1.0, 6)
MAX_RADIUS = 8.0  # pixels
ELLIPSE_AXES = (1.0, 0.5)  # semi-axes, in units of the radius
# Outward edge normals of an equilateral triangle with circumradius 1 (inradius 0.5), apex up.
TRIANGLE_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad([90 + 180, 30, 150])])


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 5) factor values, independent and uniform."""
    shape = rng.integers(0, len(SHAPE_NAMES), n)
    scale = SCALES[rng.integers(0, len(SCALES), n)]
    rotation = rng.random(n) * 2 * np.pi / SYMMETRY[shape]
    x, y = rng.random(n), rng.random(n)
    return np.stack([shape, scale, rotation, x, y], axis=1)


def render(factors: np.ndarray) -> np.ndarray:
    """float32 (n, SIZE, SIZE) images in [0, 1], anti-aliased from a signed distance in pixels."""
    shape = factors[:, 0].astype(int)
    radius = (factors[:, 1] * MAX_RADIUS).astype(np.float32)[:, None, None]
    theta = factors[:, 2].astype(np.float32)[:, None, None]
    margin = MAX_RADIUS + 1.5  # the anti-aliased edge of a corner stays off the border pixels
    cx = (margin + factors[:, 3] * (SIZE - 2 * margin)).astype(np.float32)[:, None, None]
    cy = (margin + factors[:, 4] * (SIZE - 2 * margin)).astype(np.float32)[:, None, None]
    centres = np.arange(SIZE, dtype=np.float32) + 0.5
    dx, dy = centres[None, None, :] - cx, centres[None, :, None] - cy
    # Pixel centres in the shape's own frame, where its outer radius is 1 (y grows downwards).
    cos, sin = np.cos(theta), np.sin(theta)
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius

    distance = np.empty_like(u)  # signed, in units of the radius: < 0 inside
    square, ellipse, triangle = (shape == k for k in range(3))
    distance[square] = np.maximum(abs(u[square]), abs(v[square])) - 1 / np.sqrt(2)
    a, b = ELLIPSE_AXES
    ue, ve = u[ellipse], v[ellipse]
    f = np.sqrt((ue / a) ** 2 + (ve / b) ** 2)
    gradient = np.sqrt((ue / a**2) ** 2 + (ve / b**2) ** 2)
    distance[ellipse] = (f - 1) * f / np.maximum(gradient, 1e-6)  # first-order distance to f = 1
    ut, vt = u[triangle], -v[triangle]  # flip so the apex points up on screen
    distance[triangle] = np.max([n[0] * ut + n[1] * vt for n in TRIANGLE_NORMALS], axis=0) - 0.5
    return np.clip(0.5 - distance * radius, 0, 1)


def load_shapes(seed: int) -> Dataset:
    """N_TRAIN + N_VAL + N_TEST images with random factors from `seed`, cut in that order."""
    factors = sample_factors(N_TRAIN + N_VAL + N_TEST, np.random.default_rng(seed))
    images = torch.from_numpy(render(factors)).unsqueeze(1)
    splits = (slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VAL), slice(N_TRAIN + N_VAL, None))
    return from_splits("shapes", "image", images, torch.from_numpy(factors[:, 0].astype(np.int64)),
                       SHAPE_NAMES, splits, FACTOR_NAMES, torch.from_numpy(factors.astype(np.float32)))
