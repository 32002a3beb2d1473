"""A VAE encodes each input as a region, q(z|x) = N(μ, diag σ²), not as a point: these draw that region on the
latent scatter as the ellipse holding its mean ± n_std σ.

Above two latent dimensions the scatter shows the first two principal components of the means
(`maths.metrics.project_2d`: z ↦ (z − c)·A). A Gaussian stays Gaussian under that linear map: its mean goes to
(μ − c)·A and its covariance to Aᵀ diag(σ²) A, so the ellipse drawn is exactly that of the projected posterior.
"""

from __future__ import annotations

import numpy as np

from vae_core.maths.metrics import projection_2d
from vae_core.views.figures import PALETTE, Figure, _numbers

POINTS = 61  # vertices of an ellipse's polygon, the first repeated at the end to close it
SHOWN = 6  # inputs given an ellipse: one per class, where the data has classes


def projected(mu: np.ndarray, logvar: np.ndarray, centre: np.ndarray,
              axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means (N, 2) and covariances (N, 2, 2) of the posteriors N(μ, diag σ²) seen through z ↦ (z − c)·A."""
    mu, variance = np.asarray(mu, dtype=np.float64), np.exp(np.asarray(logvar, dtype=np.float64))
    return (mu - centre) @ axes, np.einsum("dk,nd,dl->nkl", axes, variance, axes)


def ellipse(mean: np.ndarray, cov: np.ndarray, n_std: float = 1.0, points: int = POINTS) -> np.ndarray:
    """The closed polygon (points, 2) of {x : (x − mean)ᵀ cov⁻¹ (x − mean) = n_std²}."""
    values, vectors = np.linalg.eigh(cov)
    angle = np.linspace(0, 2 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)], 1) * n_std * np.sqrt(np.clip(values, 0, None))
    return mean + circle @ vectors.T


def area(cov: np.ndarray, n_std: float = 1.0) -> np.ndarray:
    """The area of each ellipse of `ellipse` for covariances (..., 2, 2): π n_std² √det."""
    return np.pi * n_std**2 * np.sqrt(np.clip(np.linalg.det(cov), 0, None))


def mean_area(mu: np.ndarray, logvar: np.ndarray, n_std: float = 1.0) -> float:
    """The mean area of the inputs' ellipses as the scatter draws them (through its own projection)."""
    _, cov = projected(mu, logvar, *projection_2d(mu))
    return float(area(cov, n_std).mean())


def chosen(labels: np.ndarray | None, count: int = SHOWN) -> list[int]:
    """The inputs to draw: the first of each of the first `count` classes, or the first `count` inputs."""
    if labels is None:
        return list(range(count))
    classes = np.unique(labels)[:count]
    return [int(np.flatnonzero(labels == k)[0]) for k in classes]


def add_ellipses(figure: Figure, mu: np.ndarray, logvar: np.ndarray, picks: list[int], labels: np.ndarray | None,
                 n_std: float = 1.0) -> Figure:
    """The ellipses of the inputs `picks` (indices into `mu`) over a `latent_figure` of `mu`, each in the colour
    of its class; one legend entry toggles them all."""
    index = np.array(picks, dtype=int)
    means, covs = projected(mu[index], logvar[index], *projection_2d(mu))
    for i, (mean, cov) in enumerate(zip(means, covs)):
        colour = PALETTE[int(labels[index[i]]) % len(PALETTE)] if labels is not None else PALETTE[0]
        figure["data"].append(_outline(ellipse(mean, cov, n_std), colour, f"{n_std:g}σ of q(z|x)", i == 0))
    return figure


def mark(figure: Figure, mu: np.ndarray, code: np.ndarray, logvar: np.ndarray | None = None,
         n_std: float = 1.0, name: str = "yours") -> Figure:
    """A new input's mean `code` as a star over a `latent_figure` of `mu`, with its ellipse given its `logvar`."""
    spread = np.zeros_like(code) if logvar is None else logvar
    (mean,), (cov,) = projected(code[None], spread[None], *projection_2d(mu))
    if logvar is not None:
        figure["data"].append(_outline(ellipse(mean, cov, n_std), "#000000", f"{n_std:g}σ of q(z|x)", False))
    figure["data"].append(dict(type="scatter", x=[float(mean[0])], y=[float(mean[1])], mode="markers+text",
                               text=[name], textposition="bottom center", name=name, hoverinfo="skip",
                               marker=dict(symbol="star", size=18, color="#000000",
                                           line=dict(color="white", width=1))))
    return figure


def _outline(polygon: np.ndarray, colour: str, legend: str, first: bool) -> dict:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return dict(type="scatter", x=_numbers(polygon[:, 0]), y=_numbers(polygon[:, 1]), mode="lines",
                fill="toself", fillcolor=f"rgba({red},{green},{blue},0.12)", line=dict(color=colour, width=1.5),
                name=legend, legendgroup="sigma", showlegend=first, hoverinfo="skip")
