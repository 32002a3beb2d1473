"""Figures for a model of 2-D points, where the data space itself can be drawn: the latent plane bent onto the
data, where each point is sent, and where the model's samples fall. Plain dicts, as in figures.py."""

from __future__ import annotations

import numpy as np

from vae_core.views.figures import Figure, _axis, _figure, _numbers

INK = "#1f77b4"  # one colour for what the model draws; the data stays grey beneath it
HEIGHT = 380
DENSITY = [[0, "rgba(255,255,255,0)"], [0.08, "#deebf7"], [1, "#08519c"]]  # no samples: no ink, not pale blue


def _data(data: np.ndarray, name: str = "data") -> dict:
    return dict(type="scatter", x=_numbers(data[:, 0]), y=_numbers(data[:, 1]), mode="markers", name=name,
                hoverinfo="skip", marker=dict(color="#c4c4c4", size=4))


def _joined(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths (K, S, 2) as one line broken by gaps: one trace instead of K (and one legend entry)."""
    gaps = np.full((len(paths), 1, 2), np.nan)
    flat = np.concatenate([paths, gaps], 1).reshape(-1, 2)
    return flat[:, 0], flat[:, 1]


def _square(traces: list[dict], revision: str) -> Figure:
    return _figure(traces, revision, HEIGHT, _axis("x₁"), _axis("x₂", scaleanchor="x", scaleratio=1))


def mesh_figure(data: np.ndarray, mesh: np.ndarray, revision: str = "mesh") -> Figure:
    """The decoded grid lines of the latent plane (explore.latent_mesh) over the data, as one warped mesh."""
    x, y = _joined(np.asarray(mesh))
    line = dict(type="scatter", x=_numbers(x), y=_numbers(y), mode="lines", name="latent grid, decoded",
                hoverinfo="skip", line=dict(color=INK, width=1.2))
    return _square([_data(np.asarray(data)), line], revision)


def arrows_figure(data: np.ndarray, reconstructions: np.ndarray, revision: str = "arrows") -> Figure:
    """An arrow from each data point to its reconstruction: a vector field of what encoding and decoding do."""
    data, reconstructions = np.asarray(data), np.asarray(reconstructions)
    x, y = _joined(np.stack([data, reconstructions], 1))
    heads = np.tile([0, 7, 0], len(data))  # a head at each arrow's end only
    arrows = dict(type="scatter", x=_numbers(x), y=_numbers(y), mode="lines+markers", name="data → reconstruction",
                  hoverinfo="skip", line=dict(color=INK, width=1),
                  marker=dict(symbol="arrow", size=heads.tolist(), angleref="previous", color=INK))
    return _square([_data(data), arrows], revision)


def density_figure(data: np.ndarray, samples: np.ndarray, revision: str = "density") -> Figure:
    """Where decoded prior samples fall, as density contours, with the data on top."""
    samples = np.asarray(samples)
    density = dict(type="histogram2dcontour", x=_numbers(samples[:, 0]), y=_numbers(samples[:, 1]),
                   name="prior samples, decoded", colorscale=DENSITY, showscale=False, ncontours=14,
                   contours=dict(coloring="fill", showlines=False), hoverinfo="skip", showlegend=True)
    return _square([density, _data(np.asarray(data))], revision)
