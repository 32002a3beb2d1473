"""Explore's views of a model of 2-D points (moons, circles, gaussians, swiss roll): the data plane can be drawn
itself, so these show the model in it instead of image mosaics."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.maths.models import VAE
from vae_core.views import explore, points

ARROWS = 300  # validation points drawn with their reconstruction's arrow: more would hide the data
SAMPLES = 2000  # prior samples behind the density


def picked(model: VAE, x: torch.Tensor, a: int, b: int) -> None:
    """A and B as a small table, rounded, with where the model sends each."""
    pair = x[[a, b]]
    recon = explore.reconstruct(model, pair).numpy()
    pair = pair.numpy()
    st.dataframe({"sample": [f"A: #{a}", f"B: #{b}"], "x₁": pair[:, 0], "x₂": pair[:, 1],
                  "reconstructed x₁": recon[:, 0], "reconstructed x₂": recon[:, 1],
                  "error": np.linalg.norm(pair - recon, axis=1)},
                 hide_index=True, column_config={k: st.column_config.NumberColumn(format="%.2f") for k in (
                     "x₁", "x₂", "reconstructed x₁", "reconstructed x₂", "error")})
    st.caption("Their path through the latent space is drawn below, under Interpolation.")


def views(model: VAE, config: TrainConfig, data: Dataset) -> None:
    """The latent plane bent onto the data (2-D codes only), where each point goes, and where samples fall."""
    st.subheader("The model in the data plane")
    val = data.val.numpy()
    mesh, field, density = st.columns(3) if config.latent_dim == 2 else (None, *st.columns(2))
    if mesh is not None:
        with mesh:
            st.markdown("**The latent plane, decoded**")
            c1, c2 = st.columns(2)
            lines = c1.slider("Grid lines", 3, 21, 11, 2, key="mesh_lines")
            span = c2.slider("Range ±", 0.5, 5.0, 2.5, 0.5, key="mesh_span")
            st.plotly_chart(points.mesh_figure(val, explore.latent_mesh(model, lines, span).numpy()),
                            key="mesh_points")
            st.caption(f"A square grid of codes (z₁ and z₂ from −{span:g} to +{span:g}), decoded: where the mesh "
                       "crowds, many codes decode to little of the data; where it stretches across a gap, codes "
                       "between the clusters decode to points no data is near.")
    with field:
        st.markdown("**Where each point goes**")
        x = data.val[:ARROWS]
        st.plotly_chart(points.arrows_figure(x.numpy(), explore.reconstruct(model, x).numpy()), key="field_points")
        st.caption("An arrow from each data point to its reconstruction: short arrows, a faithful code; long "
                   "ones pointing inwards, a model that pulls points to the middle of the data (a blurred answer).")
    with density:
        st.markdown("**Where its samples fall**")
        samples = explore.prior_samples(model, SAMPLES, config.seed).numpy()
        st.plotly_chart(points.density_figure(val, samples), key="density_points")
        st.caption(f"The density of {SAMPLES:,} codes from the prior N(0, I), decoded: a good model's follows the "
                   "data's shape; where it fills gaps between the grey points, the model makes up data.")
