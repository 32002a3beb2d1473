"""Looking into a trained model: encode, decode, interpolate, traverse, the latent plane (the IWAE bound is in
maths/score.py)."""

from __future__ import annotations

import torch

from vae_core.maths.models import VAE


@torch.inference_mode()
def encode(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean μ and log-variance of each input."""
    model.eval()
    return model.encode(x)


@torch.inference_mode()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """The decoder's mean for each latent vector: images in [0, 1] or 2-D points."""
    model.eval()
    return model.output_mean(model.decode(z))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors a and b at fractions t (falls back to linear when parallel)."""
    omega = torch.arccos(torch.clamp(torch.dot(a / a.norm(), b / b.norm()), -1.0, 1.0))
    if omega.abs() < 1e-6:
        return torch.lerp(a, b, t[:, None])
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a + (torch.sin(t * omega) / so)[:, None] * b


def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8,
                method: str = "linear") -> torch.Tensor:
    """Decodings along the path between the posterior means of two inputs (linear or spherical)."""
    mu, _ = encode(model, torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps)
    z = slerp(mu[0], mu[1], t) if method == "spherical" else torch.lerp(mu[0][None], mu[1][None], t[:, None])
    return decode(model, z)


def traverse(model: VAE, x: torch.Tensor, dims: list[int] | None = None, span: float = 3.0,
             steps: int = 7) -> torch.Tensor:
    """A grid (len(dims), steps, ...): each row moves one latent dimension of x's code over [−span, span]."""
    mu, _ = encode(model, x[None])
    dims = list(range(model.latent_dim)) if dims is None else dims
    values = torch.linspace(-span, span, steps)
    z = mu.repeat(len(dims) * steps, 1)
    for row, d in enumerate(dims):
        z[row * steps:(row + 1) * steps, d] = values
    return decode(model, z).view(len(dims), steps, *model.sample_shape)


def latent_grid(model: VAE, steps: int = 15, span: float = 2.5) -> torch.Tensor:
    """Decodings of an evenly spaced grid over the 2-D latent plane, (steps, steps, ...); top row is high z₂."""
    if model.latent_dim != 2:
        raise ValueError("the latent plane grid needs a 2-D latent space")
    values = torch.linspace(-span, span, steps)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)
    return decode(model, z).view(steps, steps, *model.sample_shape)


def prior_samples(model: VAE, n: int = 16, seed: int = 0) -> torch.Tensor:
    """Decodings of n codes drawn from the prior N(0, I), seeded: two runs compared decode the same codes."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode(model, z)


def latent_mesh(model: VAE, lines: int = 9, span: float = 2.5, resolution: int = 40) -> torch.Tensor:
    """The grid lines of the 2-D latent plane, decoded: (2 * lines, resolution, ...), the lines of constant z₂
    first, then those of constant z₁. Drawn over 2-D data they show how the decoder bends the plane onto it."""
    if model.latent_dim != 2:
        raise ValueError("the latent plane mesh needs a 2-D latent space")
    levels, along = torch.linspace(-span, span, lines), torch.linspace(-span, span, resolution)
    rows = torch.stack([torch.stack([along, level.expand(resolution)], 1) for level in levels])
    z = torch.cat([rows, rows.flip(2)])  # (z₁ varies, z₂ fixed), then (z₁ fixed, z₂ varies)
    return decode(model, z.reshape(-1, 2)).view(2 * lines, resolution, *model.sample_shape)


def reconstruct(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Each input decoded from its posterior mean: where the model sends it."""
    return decode(model, encode(model, x)[0])
