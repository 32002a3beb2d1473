"""The measured quantities of vae_core.maths.metrics, on synthetic inputs whose answer is known."""

import math

import numpy as np
import pytest
import torch

from vae_core.maths import metrics, quality
from vae_core.config import TrainConfig
from vae_core.maths.models import build_model


def test_nearest_distance_is_the_rms_pixel_distance_to_the_closest_reference():
    reference = torch.zeros(3, 1, 2, 2)
    reference[1] = 1.0
    reference[2, 0, 0, 0] = 1.0  # one pixel on
    queries = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.9), torch.full((1, 2, 2), 0.5)])
    d = metrics.nearest_distance(queries, reference, chunk=2)
    assert d[0] == pytest.approx(0.0, abs=1e-3)
    assert d[1] == pytest.approx(0.1, abs=1e-3)
    # 0.5 everywhere: RMS 0.5 from black, from white and from the one-pixel image
    assert d[2] == pytest.approx(0.5, abs=1e-3)
    self_d = metrics.nearest_distance(reference, reference, exclude_self=True)
    assert self_d[0] == pytest.approx(0.5, abs=1e-3)  # black's nearest other is the one-pixel image
    with pytest.raises(ValueError):
        metrics.nearest_distance(torch.zeros(2, 3), torch.zeros(2, 4))


def test_data_like_threshold_is_a_quantile_of_held_out_distances():
    train = torch.zeros(5, 4)
    held_out = torch.stack([torch.full((4,), v) for v in (0.0, 0.1, 0.2, 0.3, 0.4)])
    assert metrics.data_like_threshold(train, held_out, quantile=1.0) == pytest.approx(0.4, abs=1e-4)
    assert metrics.data_like_threshold(train, held_out, quantile=0.5) == pytest.approx(0.2, abs=1e-4)


def test_sharpness_is_lowered_by_blur():
    edge = torch.zeros(1, 1, 4, 4)
    edge[..., 2:] = 1.0  # one vertical edge: jumps of 1 in 4 of 12 horizontal pairs, none vertical
    assert metrics.sharpness(edge) == pytest.approx((4 / 12) / 2)
    ramp = torch.linspace(0, 1, 4).repeat(1, 1, 4, 1)
    assert metrics.sharpness(ramp) == pytest.approx((1 / 3) / 2)
    assert metrics.sharpness(torch.full((2, 1, 5, 5), 0.3)) == 0.0
    noise = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(noise, 3, 1, 1)
    assert metrics.sharpness(blurred) < 0.5 * metrics.sharpness(noise)


def test_curve_roughness_separates_smooth_from_jumpy_and_flags_blow_ups():
    smooth = np.linspace(10, 9, 50)
    jumpy = 10 + np.where(np.arange(50) % 2, 1.0, -1.0)
    assert metrics.curve_roughness(smooth) == pytest.approx((1 / 49) / 9.5, rel=0.05)
    assert metrics.curve_roughness(jumpy) == pytest.approx(0.2, rel=0.01)
    assert metrics.curve_roughness([1.0, 2.0, float("nan")]) == math.inf


def test_discretize_cuts_equal_width_bins():
    assert quality.discretize([0.0, 0.24, 0.26, 0.5, 0.99, 1.0], 4).tolist() == [0, 0, 1, 2, 3, 3]


def test_mig_is_one_for_an_axis_aligned_code_and_near_zero_for_an_entangled_or_useless_one():
    rng = np.random.default_rng(0)
    n = 20_000
    factors = np.stack([rng.integers(0, 4, n), rng.integers(0, 5, n)], 1).astype(float)
    aligned = factors + 0.01 * rng.standard_normal(factors.shape)
    assert quality.mutual_information_gap(aligned, factors) == pytest.approx(1.0, abs=0.02)
    # a third, useless dimension changes nothing
    with_noise = np.concatenate([aligned, rng.standard_normal((n, 1))], 1)
    assert quality.mutual_information_gap(with_noise, factors) == pytest.approx(1.0, abs=0.02)
    # both factors copied into both dimensions: each factor is in two dimensions equally, no gap
    duplicated = np.stack([factors[:, 0] * 5 + factors[:, 1], factors[:, 0] * 5 + factors[:, 1]], 1)
    assert quality.mutual_information_gap(duplicated, factors) < 0.02
    noise = rng.standard_normal((n, 2))
    assert quality.mutual_information_gap(noise, factors) < 0.02
    # a rotated (mixed) code of continuous factors scores lower than the aligned one
    cont = rng.random((n, 2))
    rotated = cont @ np.array([[1.0, 1.0], [-1.0, 1.0]]) / math.sqrt(2)
    aligned_score = quality.mutual_information_gap(cont, cont, factor_bins=[10, 10])
    rotated_score = quality.mutual_information_gap(rotated, cont, factor_bins=[10, 10])
    assert aligned_score > 0.6 and rotated_score < 0.5 * aligned_score


def test_mig_checks_its_inputs():
    with pytest.raises(ValueError):
        quality.mutual_information_gap(np.zeros((5, 2)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="constant"):
        quality.mutual_information_gap(np.random.rand(10, 2), np.zeros((10, 1)))


class _Fake(torch.nn.Module):
    """A stand-in model on 2×2 images: the code is the first two pixels mapped to [−1, 1]; the decoder
    returns one of `images` inside a disc of `radius` around the origin and flat grey outside it."""

    def __init__(self, images: torch.Tensor, radius: float, latent_dim: int = 2):
        super().__init__()
        self.images, self.radius, self.latent_dim = images, radius, latent_dim
        self.variational = True

    def encode(self, x):
        mu = x.flatten(1)[:, :self.latent_dim] * 2 - 1
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        inside = z.norm(dim=1) <= self.radius
        picked = self.images[torch.arange(len(z)) % len(self.images)].flatten(1)
        return torch.logit(torch.where(inside[:, None], picked, 0.5).clamp(1e-4, 1 - 1e-4)).view(-1, 1, 2, 2)

    def output_mean(self, raw):
        return torch.sigmoid(raw)


IMAGES = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]]).view(2, 1, 2, 2)


def test_latent_plane_coverage_counts_the_share_of_the_plane_that_decodes_to_data():
    x = torch.rand(2000, 1, 2, 2, generator=torch.Generator().manual_seed(0))  # codes uniform on [-1, 1]²
    assert metrics.latent_plane_coverage(_Fake(IMAGES, 10.0), x, IMAGES, threshold=0.01) == 1.0
    assert metrics.latent_plane_coverage(_Fake(IMAGES, 0.0), x, IMAGES, threshold=0.01) == 0.0
    # data only inside a disc of radius 0.5 in a square of side ~1.92 (the 2 %–98 % range): π/4 / 1.92² ≈ 0.21
    share = metrics.latent_plane_coverage(_Fake(IMAGES, 0.5), x, IMAGES, threshold=0.01, steps=61)
    assert share == pytest.approx(math.pi * 0.25 / 1.92 ** 2, abs=0.02)
    # the grid follows the codes' own scale: codes 10 times larger, a disc 10 times larger, the same share
    big = _Fake(IMAGES, 5.0)
    big.encode = lambda x: ((x.flatten(1)[:, :2] * 2 - 1) * 10, torch.zeros(len(x), 2))
    assert metrics.latent_plane_coverage(big, x, IMAGES, threshold=0.01, steps=61) == pytest.approx(share, abs=1e-6)
    with pytest.raises(ValueError, match="2-D"):
        metrics.latent_plane_coverage(_Fake(IMAGES, 1.0, latent_dim=3), x, IMAGES, 0.01)


def test_prior_sample_distance_is_zero_for_a_decoder_that_copies_training_images_and_large_for_grey():
    assert metrics.prior_sample_distance(_Fake(IMAGES, 100.0), IMAGES, n=50) == pytest.approx(0.0, abs=1e-3)
    assert metrics.prior_sample_distance(_Fake(IMAGES, 0.0), IMAGES, n=50) == pytest.approx(0.5, abs=1e-3)


def test_reconstruction_error_and_kl_per_dimension_of_a_model():
    model = build_model(TrainConfig(latent_dim=3, hidden=[8]), (1, 2, 2))
    x = torch.rand(16, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    recon = metrics.reconstructions(model, x)
    assert recon.shape == x.shape
    assert metrics.reconstruction_rmse(model, x) == pytest.approx(float((recon - x).pow(2).mean().sqrt()))
    kl = metrics.kl_per_dimension(model, x)
    assert kl.shape == (3,) and (kl >= 0).all()
    ae = build_model(TrainConfig(latent_dim=3, hidden=[8], mode="ae"), (1, 2, 2))
    assert metrics.kl_per_dimension(ae, x).tolist() == [0.0, 0.0, 0.0]


def test_kl_by_cycle_reads_the_start_and_end_of_each_cycle():
    # 4 cycles of 100 steps; KL is 5 for the first 10 steps of a cycle, then 1 + cycle number
    rows = [{"step": s + 1, "kl": 5.0 if s % 100 < 10 else 1.0 + s // 100} for s in range(400)]
    assert metrics.kl_by_cycle(rows, 4) == [(5.0, 1.0), (5.0, 2.0), (5.0, 3.0), (5.0, 4.0)]
    with pytest.raises(ValueError):
        metrics.kl_by_cycle(rows[:3], 4)


def test_informative_dimensions_and_reconstruction_spread():
    model = build_model(TrainConfig(latent_dim=3, hidden=[8]), (1, 2, 2))
    x = torch.rand(64, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.to_mu.weight.zero_(), model.to_mu.bias.zero_()
        model.to_mu.bias[0] = 2.0  # dimension 0: KL = 2²/2 = 2 nats, the others ~0 once σ = 1
        model.to_logvar.weight.zero_(), model.to_logvar.bias.zero_()
    # 2 nats, but the same mean for every input: no information, so not informative (maths.collapse)
    assert metrics.informative_dimensions(model, x) == 0
    # every input gets the same code, so every reconstruction is the same image
    assert metrics.reconstruction_spread(model, x) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model.to_mu.weight[0].normal_(0, 5.0, generator=torch.Generator().manual_seed(1))
    assert metrics.informative_dimensions(model, x) == 1
    assert metrics.reconstruction_spread(model, x) > 1e-3


def test_fitted_gaussian_samples_follow_the_codes_scale():
    class Identity(_Fake):
        def encode(self, x):
            mu = x.flatten(1)[:, :2] * 100 + 50  # codes far from N(0, I)
            return mu, torch.zeros_like(mu)

        def decode(self, z):
            self.last_z = z
            return torch.zeros(len(z), 1, 2, 2)

    model = Identity(IMAGES, 1.0)
    x = torch.rand(5000, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    samples = metrics.fitted_gaussian_samples(model, x, n=4000)
    assert samples.shape == (4000, 1, 2, 2)
    z = model.last_z
    assert torch.allclose(z.mean(0), torch.tensor([100.0, 100.0]), atol=2.0)
    assert torch.allclose(z.std(0), torch.tensor([100 / 12 ** 0.5] * 2), rtol=0.05)
    assert metrics.fitted_sample_distance(model, x, IMAGES, n=10) == pytest.approx(0.5, abs=1e-3)


def test_mig_on_the_shapes_factors():
    """On the real shapes data: its own factors as a code score near 1, noise near 0, a code that mixes
    x and y in between; the discretisation (rotation, x and y in 10 bins) is the one lessons would use."""
    from vae_core.data import load_dataset

    data = load_dataset("shapes")
    factors = data.val_factors.numpy()
    bins = [None, None, 10, 10, 10]  # shape and scale are discrete already
    rng = np.random.default_rng(0)
    own = factors + 1e-3 * rng.standard_normal(factors.shape)
    assert quality.mutual_information_gap(own, factors, factor_bins=bins) > 0.85
    assert quality.mutual_information_gap(rng.standard_normal((len(factors), 5)), factors, factor_bins=bins) < 0.05
    mixed = own.copy()
    mixed[:, 3], mixed[:, 4] = own[:, 3] + own[:, 4], own[:, 3] - own[:, 4]
    score = quality.mutual_information_gap(mixed, factors, factor_bins=bins)
    print(f"MIG on shapes: own factors {quality.mutual_information_gap(own, factors, factor_bins=bins):.3f}, "
          f"x and y mixed {score:.3f}")
    assert 0.3 < score < 0.8
