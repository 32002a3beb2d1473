"""Where runs ended, side by side, for the lessons Compare opens on: each run's last epoch as one labelled point
in the rate–distortion plane (a sweep reads as a curve), and each run's weights as a histogram of their sizes
(L1 against L2: how many weights are near zero)."""

from __future__ import annotations

import numpy as np
import torch

from vae_core.views.figures import PALETTE, Figure, _axis, _figure, _is_number, _legend_name, _plain

NEAR_ZERO = 1e-3  # a weight this small (in absolute value) does next to nothing: the L1 lesson counts them
_DECADES = (-6, 1)  # the histogram's x axis: |w| from 10⁻⁶ to 10, ten bins per decade


def rate_distortion_points_figure(runs: dict[str, dict], revision: str = "rate-distortion-points") -> Figure:
    """One point per run at its last epoch: x = rate (validation KL), y = distortion (validation reconstruction),
    labelled with the run's name, joined in order of rate so a sweep reads as the trade-off it traces.

    `runs`: label -> the run's last metrics row (`val_kl`, `val_recon`); runs without both are left out."""
    points = sorted(((row["val_kl"], row["val_recon"], label, i) for i, (label, row) in enumerate(runs.items())
                     if _is_number(row.get("val_kl")) and _is_number(row.get("val_recon"))), key=lambda p: p[0])
    traces = [dict(type="scatter", x=[p[0] for p in points], y=[p[1] for p in points], mode="lines",
                   line=dict(color="#b0b0b0", dash="dot"), hoverinfo="skip", showlegend=False)] if points else []
    for rate, distortion, label, i in points:  # coloured as the run is in Compare's other charts
        name = _plain(label)
        traces.append(dict(type="scatter", x=[rate], y=[distortion], mode="markers+text", name=_legend_name(label),
                           text=[_legend_name(label)], textposition="top right", meta=name,
                           marker=dict(size=12, color=PALETTE[i % len(PALETTE)]), showlegend=False,
                           hovertemplate="%{meta}<br>rate (KL) %{x:.2f} nats<br>distortion %{y:.2f} nats"
                                         "<extra></extra>"))
    return _figure(traces, revision, 420, _axis("rate: KL (nats)"), _axis("distortion: reconstruction (nats)"))


def weights_of(model: torch.nn.Module) -> np.ndarray:
    """Every weight of the model's weight matrices and kernels (biases and normalisation statistics left out):
    the parameters L1 and L2 act on."""
    return torch.cat([p.detach().flatten().cpu() for name, p in model.named_parameters()
                      if name.endswith("weight") and p.dim() > 1]).numpy()


def near_zero_share(weights: np.ndarray, tol: float = NEAR_ZERO) -> float:
    """The share of weights whose size is below `tol`."""
    return float((np.abs(weights) < tol).mean()) if len(weights) else 0.0


def weight_histogram_figure(runs: dict[str, np.ndarray], revision: str = "weights") -> Figure:
    """Each run's weight sizes |w| as a histogram on a log axis (share of weights per bin), with the share
    below NEAR_ZERO in its legend entry: L1 piles weights up at the left, L2 shrinks them all a little."""
    low, high = _DECADES
    edges = np.logspace(low, high, 10 * (high - low) + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    traces = []
    for i, (label, weights) in enumerate(runs.items()):
        if not len(weights):
            continue
        sizes = np.clip(np.abs(weights), edges[0], edges[-1])  # the smallest land in the first bin
        counts, _ = np.histogram(sizes, edges)
        share = near_zero_share(weights)
        traces.append(dict(type="scatter", x=centres.tolist(), y=(counts / len(weights)).tolist(), mode="lines",
                           line=dict(color=PALETTE[i % len(PALETTE)], shape="hvh"),
                           name=_legend_name(f"{label} · {share:.0%} near 0"), meta=_plain(label),
                           hovertemplate="%{meta}<br>|w| ≈ %{x:.1e}: %{y:.1%} of weights<extra></extra>"))
    near_zero = dict(type="line", x0=NEAR_ZERO, x1=NEAR_ZERO, yref="paper", y0=0, y1=1,
                     line=dict(color="#888", dash="dash", width=1))
    return _figure(traces, revision, 360, _axis("weight size |w| (log scale)", type="log"),
                   _axis("share of weights", tickformat=".0%"), shapes=[near_zero])
