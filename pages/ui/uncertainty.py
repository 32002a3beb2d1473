"""Explore's "Show each point's uncertainty (σ)": the region q(z|x) of a few inputs drawn on the latent scatter
(vae_core.views.ellipses), so a student sees that a VAE encodes a region, not a point, and that β widens it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vae_core.views import ellipses, figures


def controls(variational: bool) -> float | None:
    """The toggle and the ellipses' size; their n_std, or None when they are off."""
    left, right = st.columns([3, 2], vertical_alignment="center")
    shown = left.toggle("Show each point's uncertainty (σ)", key="explore_sigma", disabled=not variational,
                        help="Each input is encoded as a Gaussian N(μ, σ²), a region of the latent space: the "
                             "ellipse holds its mean ± n σ along each axis." if variational else
                             "An autoencoder encodes each input as a point: σ = 0.")
    if not (shown and variational):
        return None
    return right.segmented_control("Ellipse", [1.0, 2.0], default=1.0, key="explore_sigma_n",
                                   format_func=lambda n: f"{n:g} σ", label_visibility="collapsed") or 1.0


def overlay(figure: figures.Figure, mu: np.ndarray, logvar: np.ndarray, labels: np.ndarray | None,
            picked: list[int], n_std: float | None, drawn=None) -> figures.Figure:
    """The ellipses of one input per class and of the picked ones, and the student's own digit (`drawn`)."""
    if n_std is not None:
        picks = list(dict.fromkeys(ellipses.chosen(labels) + picked))
        ellipses.add_ellipses(figure, mu, logvar, picks, labels, n_std)
    if drawn is not None:
        ellipses.mark(figure, mu, drawn.mu, drawn.logvar if n_std is not None else None, n_std or 1.0)
    return figure


def caption(latent_dim: int, n_std: float | None) -> None:
    if n_std is None:
        return
    through = ("" if latent_dim <= 2 else f" The {latent_dim}-D Gaussian is projected onto the scatter's two "
               "principal axes (its covariance Aᵀ diag(σ²) A), so each ellipse is the exact shadow of the region.")
    st.caption(f"Each ellipse holds its input's code within {n_std:g} σ: q(z|x) = N(μ, diag σ²), for one input "
               "per class (six at most) and for A and B. A larger β pulls these regions towards the prior N(0, I), "
               "wider and overlapping: codes carry less about their input." + through)
