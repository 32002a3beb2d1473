"""Explore's views of 2-D point models: the decoded latent mesh, reconstructions' arrows, decoded samples' density."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from vae_core.config import TrainConfig
from vae_core.maths.models import build_model
from vae_core.views import explore, points


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(TrainConfig(dataset="moons", recon_loss="mse", latent_dim=2, hidden=[16]), (2,))


def test_the_mesh_decodes_the_latent_grid_lines_each_way(model):
    mesh = explore.latent_mesh(model, lines=3, span=2.0, resolution=5)
    assert mesh.shape == (6, 5, 2)
    # the first line is z₂ = −2 with z₁ from −2 to 2; the fourth is z₁ = −2 with z₂ from −2 to 2
    z = torch.tensor([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]])
    ends = explore.decode(model, z)
    assert torch.allclose(mesh[0, 0], ends[0]) and torch.allclose(mesh[0, -1], ends[1])
    assert torch.allclose(mesh[3, 0], ends[0]) and torch.allclose(mesh[3, -1], ends[2])
    with pytest.raises(ValueError):
        explore.latent_mesh(build_model(TrainConfig(dataset="moons", recon_loss="mse", latent_dim=3), (2,)))


def test_prior_samples_are_seeded_so_runs_compared_decode_the_same_codes(model):
    assert torch.equal(explore.prior_samples(model, 8, seed=3), explore.prior_samples(model, 8, seed=3))
    assert not torch.equal(explore.prior_samples(model, 8, seed=3), explore.prior_samples(model, 8, seed=4))


def test_point_figures_are_valid_plotly_and_draw_one_trace_per_thing(model):
    data = np.random.default_rng(0).normal(size=(50, 2))
    recon = explore.reconstruct(model, torch.tensor(data, dtype=torch.float32)).numpy()
    mesh = points.mesh_figure(data, explore.latent_mesh(model, 4, 2.0, 10).numpy())
    arrows = points.arrows_figure(data, recon)
    density = points.density_figure(data, explore.prior_samples(model, 200).numpy())
    for figure in (mesh, arrows, density):
        go.Figure(figure)  # validates
        assert len(figure["data"]) == 2
    assert mesh["data"][1]["x"][10] is None  # the lines are broken by gaps: one trace, one colour
    heads = arrows["data"][1]["marker"]["size"]
    assert heads[:3] == [0, 7, 0] and len(heads) == len(arrows["data"][1]["x"]) == 150
    assert arrows["data"][1]["x"][1] == pytest.approx(float(recon[0, 0]))  # each arrow ends at its reconstruction
