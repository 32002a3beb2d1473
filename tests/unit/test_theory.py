"""The Learn page's theory (vae_core.views.theory): its anchors and the settings it names hold together, and each
formula is what the engine computes, checked by writing the formula out here and comparing with the code. (The IWAE
bound's order, ELBO ≤ IWAE_k rising with k, is checked on a trained model in test_score.py.)"""

import dataclasses
import math
import re

import pytest
import torch
import torch.nn.functional as F

from vae_core.config import TrainConfig
from vae_core.maths import score
from vae_core.maths.models import build_model
from vae_core.maths.objectives import beta_at, capacity_at, kl_per_dim, reconstruction_nll, vae_loss
from vae_core.views.theory import FORMULAS, LABELS, LEARN_PATH, explaining, help_with_formulas

FIELDS = {field.name for field in dataclasses.fields(TrainConfig)}
ANCHORS = {formula.anchor for formula in FORMULAS}
LOG_2PI = math.log(2 * math.pi)


def test_anchors_are_unique_and_every_named_setting_is_a_labelled_field():
    assert len(ANCHORS) == len(FORMULAS) and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", a) for a in ANCHORS)
    named = {field for formula in FORMULAS for field in formula.controls}
    assert named == set(LABELS) and named <= FIELDS  # no label without its formula, no formula naming a non-setting
    parts = [formula.part for formula in FORMULAS]
    runs = [part for i, part in enumerate(parts) if i == 0 or parts[i - 1] != part]
    assert runs == list(dict.fromkeys(parts))  # each part's formulas come together: one heading per part
    for formula in FORMULAS:
        assert formula.latex and all(tex.count("{") == tex.count("}") for tex in formula.latex), formula.anchor


def test_every_named_setting_links_to_each_formula_explaining_it_and_others_get_their_help_unchanged():
    for field in LABELS:
        text = help_with_formulas(field, "What it does.")
        targets = re.findall(rf"\]\({LEARN_PATH}#([a-z0-9-]+)\)", text)
        assert text.startswith("What it does.\n\n") and targets == [f.anchor for f in explaining(field)]
        assert set(targets) <= ANCHORS and help_with_formulas(field).startswith("On the Learn page: [")
    assert [f.anchor for f in explaining("beta_schedule")] == ["kl-warm-up", "cyclical-beta"]
    assert help_with_formulas("lr", "Step size.") == "Step size." and help_with_formulas("lr") is None
    assert f"k = {score.IWAE_K}" in next(f for f in FORMULAS if f.anchor == "iwae").title


def test_log_px_is_the_elbo_plus_the_kl_gap_to_the_true_posterior():
    """In a linear Gaussian model, p(z) = N(0, 1), p(x|z) = N(wz, s²), everything is closed form: for any q(z|x),
    log p(x) = E_q[log p(x|z)] − KL(q ‖ p(z)) + KL(q ‖ p(z|x)), with the engine's KL to the prior."""
    w, s, x = 1.7, 0.4, 0.9
    log_px = -0.5 * (math.log(2 * math.pi * (w * w + s * s)) + x * x / (w * w + s * s))
    post_var = 1 / (1 + w * w / (s * s))
    post_mean = post_var * w * x / (s * s)
    for mu, var in [(0.0, 1.0), (0.3, 0.05), (post_mean, post_var), (-1.0, 2.0)]:
        expected_log_lik = -0.5 * math.log(2 * math.pi * s * s) - ((x - w * mu) ** 2 + w * w * var) / (2 * s * s)
        kl_prior = kl_per_dim(torch.tensor([mu]), torch.tensor([math.log(var)])).item()
        gap = 0.5 * math.log(post_var / var) + (var + (mu - post_mean) ** 2) / (2 * post_var) - 0.5
        assert log_px == pytest.approx(expected_log_lik - kl_prior + gap, abs=1e-6)
        assert gap >= -1e-12  # the ELBO is a lower bound...
        if (mu, var) == (post_mean, post_var):
            assert gap == pytest.approx(0.0, abs=1e-12)  # ...tight at the true posterior


def test_bce_is_a_bernoulli_likelihood_and_a_grey_pixel_never_reaches_zero():
    x, logits = torch.rand(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    p = torch.sigmoid(logits)
    formula = -(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3))
    assert torch.allclose(reconstruction_nll(logits, x, TrainConfig(recon_loss="bce"), True), formula, atol=1e-4)
    grey = torch.full((1, 1, 1, 1), 0.3)
    grid = torch.linspace(-4, 4, 801)
    losses = torch.stack([reconstruction_nll(torch.full_like(grey, g), grey, TrainConfig(), True)[0] for g in grid])
    assert torch.sigmoid(grid[losses.argmin()]).item() == pytest.approx(0.3, abs=0.005)
    assert losses.min().item() > 0.6  # the pixel's entropy: −0.3 ln 0.3 − 0.7 ln 0.7 ≈ 0.61 nats


def _gaussian(x, mean, sigma):
    d = x[0].numel()
    return ((x - mean) ** 2).flatten(1).sum(1) / (2 * sigma ** 2) + d * (math.log(sigma) + 0.5 * LOG_2PI)


def test_mse_is_a_gaussian_with_sigma_through_a_sigmoid_for_images_only():
    config = TrainConfig(recon_loss="mse", mse_sigma=0.3)
    images, raw = torch.rand(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    assert torch.allclose(reconstruction_nll(raw, images, config, True), _gaussian(images, raw.sigmoid(), 0.3))
    points, out = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.allclose(reconstruction_nll(out, points, config, False), _gaussian(points, out, 0.3))
    assert _gaussian(points, points, 0.1)[0].item() == pytest.approx(2 * (math.log(0.1) + 0.5 * LOG_2PI))  # < 0


def test_sigma_trades_against_beta_as_the_page_says():
    """Objective(σ, β) − const(σ) = σ′²/σ² · (objective(σ′, β σ²/σ′²) − const(σ′)): halving σ is dividing β by 4."""
    torch.manual_seed(0)
    x, raw, mu, logvar = torch.rand(8, 1, 4, 4), torch.randn(8, 1, 4, 4), torch.randn(8, 3), torch.randn(8, 3)

    def shifted(sigma, beta):
        loss = vae_loss(raw, x, mu, logvar, TrainConfig(recon_loss="mse", mse_sigma=sigma), True, beta, 0.0).loss
        return loss.item() - 16 * (math.log(sigma) + 0.5 * LOG_2PI)

    for sigma, other, beta in [(0.1, 0.2, 1.0), (0.5, 0.25, 3.0), (1.0, 0.1, 0.5)]:
        assert shifted(sigma, beta) == pytest.approx(other ** 2 / sigma ** 2 * shifted(other, beta * sigma ** 2 /
                                                                                      other ** 2), rel=1e-5)


def test_the_mixed_loss_is_the_weighted_bce_and_gaussian():
    x, raw = torch.rand(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    bce = F.binary_cross_entropy_with_logits(raw, x, reduction="none").sum((1, 2, 3))
    config = TrainConfig(recon_loss="mixed", mixed_weight=0.3, mse_sigma=0.2)
    formula = 0.3 * bce + 0.7 * _gaussian(x, raw.sigmoid(), 0.2)
    assert torch.allclose(reconstruction_nll(raw, x, config, True), formula, atol=1e-4)


@pytest.mark.parametrize("warm_epochs, steps_per_epoch", [(5.0, 7), (0.5, 10), (2.5, 3), (0.0, 4)])
def test_warm_up_is_the_formula(warm_epochs, steps_per_epoch):
    config = TrainConfig(beta_schedule="warmup", beta_warmup_epochs=warm_epochs, epochs=10)
    for t in range(10 * steps_per_epoch):
        formula = 3.0 * min(1.0, t / (warm_epochs * steps_per_epoch)) if warm_epochs else 3.0
        assert beta_at(t, 3.0, config, steps_per_epoch) == pytest.approx(formula)


@pytest.mark.parametrize("epochs, steps_per_epoch, cycles, ratio", [(7, 3, 4, 0.5), (10, 10, 3, 0.3), (5, 2, 5, 1.0)])
def test_cyclical_beta_is_the_formula(epochs, steps_per_epoch, cycles, ratio):
    """P = E S / M need not be whole (7 · 3 / 4 = 5.25): a cycle restarts every ⌈P⌉ steps."""
    config = TrainConfig(beta_schedule="cyclical", epochs=epochs, beta_cycles=cycles, beta_cycle_ratio=ratio)
    period = epochs * steps_per_epoch / cycles
    for t in range(epochs * steps_per_epoch):
        tau = (t % math.ceil(period)) / period
        assert 0 <= tau < 1
        assert beta_at(t, 2.0, config, steps_per_epoch) == pytest.approx(2.0 * min(1.0, tau / ratio))


def _batch(seed=0, rows=16, dims=4):
    torch.manual_seed(seed)
    return torch.rand(rows, 1, 3, 3), torch.randn(rows, 1, 3, 3), torch.randn(rows, dims) * 0.5, \
        torch.randn(rows, dims) * 0.3


def test_the_capacity_objective_and_its_ramp_are_the_formula():
    x, raw, mu, logvar = _batch()
    recon = reconstruction_nll(raw, x, TrainConfig(), True).mean()
    kl = kl_per_dim(mu, logvar).sum(1).mean()
    for ramp, steps_per_epoch in [(10.0, 5), (0.5, 8), (0.0, 3)]:
        config = TrainConfig(capacity=True, capacity_gamma=7.0, capacity_max=25.0, capacity_ramp_epochs=ramp)
        for t in range(0, 60, 7):
            c_t = 25.0 * min(1.0, t / (ramp * steps_per_epoch)) if ramp else 25.0
            assert capacity_at(t, config, steps_per_epoch) == pytest.approx(c_t)
            loss = vae_loss(raw, x, mu, logvar, config, True, beta=123.0, capacity=c_t).loss  # β is not used
            assert loss.item() == pytest.approx((recon + 7.0 * (kl - c_t).abs()).item(), rel=1e-5)


def test_free_bits_clamp_each_dimensions_batch_mean_and_free_it_of_the_kl_pull():
    x, raw, mu, logvar = _batch()
    mu[:, 0], logvar[:, 0] = 0.05, 0.0  # dimension 0 carries ~0.001 nats: under λ
    mu[:8, 1], mu[8:, 1], logvar[:, 1] = 0.1, 2.0, 0.0  # dimension 1: some samples under λ, its mean over it
    mu.requires_grad_(True)
    config, lam, beta = TrainConfig(free_bits=0.5), 0.5, 2.0
    loss = vae_loss(raw, x, mu, logvar, config, True, beta, 0.0).loss
    recon = reconstruction_nll(raw, x, config, True).mean()
    formula = recon + beta * kl_per_dim(mu, logvar).mean(0).clamp_min(lam).sum()
    per_sample = recon + beta * kl_per_dim(mu, logvar).clamp_min(lam).mean(0).sum()  # what free bits do not do
    assert loss.item() == pytest.approx(formula.item(), rel=1e-6) and per_sample.item() > loss.item() + 0.1
    loss.backward()
    assert kl_per_dim(mu, logvar).mean(0)[0] < lam and torch.all(mu.grad[:, 0] == 0)
    assert torch.all(mu.grad[8:, 1] != 0)


def test_the_autoencoder_codes_deterministically_and_trains_the_reconstruction_only():
    config = TrainConfig(mode="ae", hidden=[16], latent_dim=2)
    model = build_model(config, (1, 8, 8)).eval()
    x = torch.rand(5, 1, 8, 8)
    raw, mu, logvar, z = model(x)
    assert torch.equal(z, mu) and torch.equal(model(x)[3], z)  # z = μ(x), the same every time
    terms = vae_loss(raw, x, mu, logvar, config, True, beta=5.0, capacity=3.0)
    assert terms.loss.item() == pytest.approx(reconstruction_nll(raw, x, config, True).mean().item(), rel=1e-6)
    assert terms.kl.item() == 0.0
