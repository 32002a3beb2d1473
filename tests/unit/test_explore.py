import numpy as np
import pytest
import torch

from vae_core.maths import metrics
from vae_core.views import explore
from vae_core.config import TrainConfig
from vae_core.train import Trainer


@pytest.fixture(scope="module")
def trained(digits):
    config = TrainConfig(epochs=10, batch_size=64, lr=3e-3, latent_dim=2)
    trainer = Trainer(config, digits)
    for _ in range(config.epochs):
        for x in trainer.batches():
            trainer.train_step(x)
    return trainer


def test_interpolation_runs_between_the_two_reconstructions(trained, digits):
    model = trained.model
    a, b = digits.val[0], digits.val[1]
    for method in ("linear", "spherical"):
        strip = explore.interpolate(model, a, b, steps=6, method=method)
        mu, _ = explore.encode(model, torch.stack([a, b]))
        ends = explore.decode(model, mu)
        assert strip.shape == (6, 1, 8, 8)
        assert torch.allclose(strip[0], ends[0], atol=1e-5) and torch.allclose(strip[-1], ends[1], atol=1e-5)
        assert not torch.allclose(strip[2], strip[0], atol=1e-3)


def test_slerp_keeps_the_norm_between_equal_norm_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = explore.slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.lerp(a, b, 0.5).norm() < 0.8


def test_traversal_moves_one_dimension_per_row(trained, digits):
    grid = explore.traverse(trained.model, digits.val[0], span=2.0, steps=5)
    assert grid.shape == (2, 5, 1, 8, 8)
    assert not torch.allclose(grid[0, 0], grid[0, -1], atol=1e-3)


def test_latent_plane_grid_decodes_every_cell(trained):
    grid = explore.latent_grid(trained.model, steps=7)
    assert grid.shape == (7, 7, 1, 8, 8) and 0 <= grid.min() and grid.max() <= 1
    with pytest.raises(ValueError, match="2-D latent"):
        explore.latent_grid(Trainer(TrainConfig(latent_dim=3), trained.data).model)


def test_projection_keeps_two_dimensions_and_finds_principal_axes():
    rng = np.random.default_rng(0)
    mu = np.zeros((500, 5))
    mu[:, 3] = rng.normal(0, 5, 500)
    mu[:, 1] = rng.normal(0, 2, 500)
    flat = metrics.project_2d(mu)
    assert flat.shape == (500, 2)
    assert abs(np.corrcoef(flat[:, 0], mu[:, 3])[0, 1]) > 0.99
    two = rng.normal(size=(10, 2))
    assert np.array_equal(metrics.project_2d(two), two)

