"""The σ ellipses on the latent scatter (vae_core.views.ellipses): their geometry, their projection above two
latent dimensions, and the teaching claim they carry: on digits, β = 4 encodes each input as a wider region
than β = 1."""

import numpy as np
import plotly.graph_objects as go
import pytest

from vae_core.config import TrainConfig
from vae_core.maths import metrics
from vae_core.train import Trainer, fit
from vae_core.views import ellipses, explore, figures


def _shoelace(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def test_an_ellipse_is_the_closed_curve_at_n_std_mahalanobis_distance():
    mean, cov = np.array([1.0, 2.0]), np.array([[4.0, 1.5], [1.5, 1.0]])
    for n_std in (1.0, 2.0):
        polygon = ellipses.ellipse(mean, cov, n_std)
        assert polygon.shape == (ellipses.POINTS, 2) and np.allclose(polygon[0], polygon[-1])
        offsets = polygon - mean
        assert np.allclose(np.einsum("ni,ij,nj->n", offsets, np.linalg.inv(cov), offsets), n_std**2)
        assert _shoelace(polygon) == pytest.approx(float(ellipses.area(cov, n_std)), rel=0.01)
    axis_aligned = ellipses.ellipse(np.zeros(2), np.diag([4.0, 1.0]))
    assert np.allclose(axis_aligned.max(0), [2, 1]) and np.allclose(axis_aligned.min(0), [-2, -1], atol=1e-2)
    assert np.allclose(ellipses.ellipse(mean, np.zeros((2, 2))), mean)  # σ = 0 (an autoencoder): a point


def test_above_two_dimensions_the_ellipse_is_the_projected_posterior_and_holds_its_share_of_samples():
    """Samples of N(μ, diag σ²) in 5-D, projected as the scatter projects the means: 1 − e^(−n²/2) of them fall
    inside the n-σ ellipse (39 % and 86 %), as for any 2-D Gaussian."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(300, 5)) * [3, 2, 1, 0.5, 0.2]
    logvar = np.log(rng.uniform(0.05, 0.5, size=(300, 5)))
    centre, axes = metrics.projection_2d(mu)
    assert np.allclose((mu - centre) @ axes, metrics.project_2d(mu))
    means, covs = ellipses.projected(mu[:1], logvar[:1], centre, axes)
    z = mu[0] + rng.standard_normal((20000, 5)) * np.exp(0.5 * logvar[0])
    shadow = (z - centre) @ axes
    assert np.allclose(shadow.mean(0), means[0], atol=0.02) and np.allclose(np.cov(shadow.T), covs[0], atol=0.02)
    offsets = shadow - means[0]
    distance = np.einsum("ni,ij,nj->n", offsets, np.linalg.inv(covs[0]), offsets)
    for n_std in (1.0, 2.0):
        assert (distance <= n_std**2).mean() == pytest.approx(1 - np.exp(-n_std**2 / 2), abs=0.01)


def test_the_ellipses_drawn_are_one_per_chosen_input_in_its_class_colour_and_the_new_input_a_star():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(40, 3)), np.full((40, 3), -2.0)
    labels = np.arange(40) % 8
    picks = ellipses.chosen(labels) + [30]
    assert picks[:6] == [0, 1, 2, 3, 4, 5] and ellipses.chosen(None, 3) == [0, 1, 2]
    figure = figures.latent_figure(metrics.project_2d(mu), labels)
    before = len(figure["data"])
    ellipses.add_ellipses(figure, mu, logvar, picks, labels, n_std=2.0)
    ellipses.mark(figure, mu, mu[7], logvar[7], 2.0)
    go.Figure(figure)  # validates
    outlines = figure["data"][before:-1]
    assert len(outlines) == 8 and all(t["fill"] == "toself" and t["legendgroup"] == "sigma" for t in outlines)
    assert outlines[0]["line"]["color"] == figures.PALETTE[0] and outlines[6]["line"]["color"] == figures.PALETTE[6]
    assert [t["name"] for t in outlines if t["showlegend"]] == ["2σ of q(z|x)"]
    star = figure["data"][-1]
    assert star["marker"]["symbol"] == "star"
    assert np.allclose([star["x"][0], star["y"][0]], metrics.project_2d(mu)[7])  # where its own point is drawn
    bare = figures.latent_figure(metrics.project_2d(mu), labels)
    assert len(ellipses.mark(bare, mu, mu[7])["data"]) == len(figure["data"][:before]) + 1  # no σ: the star alone


@pytest.mark.parametrize("seed", [0, 1])
def test_beta_4_encodes_each_digit_as_a_wider_region_than_beta_1(digits, seed):
    """The claim the ellipses show: a larger β pulls q(z|x) towards the prior N(0, I), so the mean ellipse
    area on the validation digits is larger at β = 4 than at β = 1 (short runs, 2-D codes)."""
    areas = {}
    for beta in (1.0, 4.0):
        trainer = Trainer(TrainConfig(beta=beta, epochs=5, hidden=[128], seed=seed), digits)
        fit(trainer)
        mu, logvar = explore.encode(trainer.model, digits.val)
        areas[beta] = ellipses.mean_area(mu.numpy(), logvar.numpy())
    assert areas[4.0] > 1.3 * areas[1.0], areas
