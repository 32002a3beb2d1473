import math

import pytest
import torch
import torch.nn.functional as F

from vae_core.config import TrainConfig
from vae_core.maths.objectives import beta_at, capacity_at, kl_per_dim, reconstruction_nll, vae_loss


def test_closed_form_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[0.7, -1.2]]), torch.tensor([[-0.5, 0.8]])
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 2)
    log_q = torch.distributions.Normal(mu, std).log_prob(z)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z)
    mc = (log_q - log_p).mean(0)
    assert torch.allclose(kl_per_dim(mu, logvar)[0], mc, atol=0.02)


def test_bce_is_bernoulli_nll_summed_per_sample():
    x = torch.rand(3, 1, 4, 4)
    logits = torch.randn(3, 1, 4, 4)
    expected = -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum((1, 2, 3))
    got = reconstruction_nll(logits, x, TrainConfig(recon_loss="bce"), is_image=True)
    assert torch.allclose(got, expected, atol=1e-5)


def test_mse_is_gaussian_nll_with_sigma():
    x, mean = torch.zeros(2, 2), torch.ones(2, 2)
    got = reconstruction_nll(mean, x, TrainConfig(recon_loss="mse", mse_sigma=0.5), is_image=False)
    per_dim = 1 / (2 * 0.25) + math.log(0.5) + 0.5 * math.log(2 * math.pi)
    assert torch.allclose(got, torch.full((2,), 2 * per_dim))


def test_mixed_is_the_weighted_sum():
    x, logits = torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    bce = reconstruction_nll(logits, x, TrainConfig(recon_loss="bce"), True)
    mse = reconstruction_nll(logits, x, TrainConfig(recon_loss="mse"), True)
    mixed = reconstruction_nll(logits, x, TrainConfig(recon_loss="mixed", mixed_weight=0.3), True)
    assert torch.allclose(mixed, 0.3 * bce + 0.7 * mse)


def test_warmup_is_linear_then_flat():
    config = TrainConfig(beta=4.0, beta_schedule="warmup", beta_warmup_epochs=2)
    assert beta_at(0, 4.0, config, 10) == 0.0
    assert beta_at(10, 4.0, config, 10) == pytest.approx(2.0)
    assert beta_at(20, 4.0, config, 10) == 4.0
    assert beta_at(95, 4.0, config, 10) == 4.0


def test_cyclical_schedule_matches_fu_et_al():
    # T = 100 steps, M = 4 cycles of 25, ratio R = 0.5: β rises over 12.5 steps then holds.
    config = TrainConfig(beta=1.0, beta_schedule="cyclical", epochs=10, beta_cycles=4, beta_cycle_ratio=0.5)
    for t in range(100):
        tau = (t % 25) / 25
        assert beta_at(t, 1.0, config, 10) == pytest.approx(min(1.0, tau / 0.5))
    assert beta_at(25, 1.0, config, 10) == 0.0 and beta_at(50, 1.0, config, 10) == 0.0


def test_capacity_ramps_linearly_to_its_maximum():
    config = TrainConfig(capacity=True, capacity_max=20.0, capacity_ramp_epochs=5)
    assert capacity_at(0, config, 10) == 0
    assert capacity_at(25, config, 10) == pytest.approx(10.0)
    assert capacity_at(80, config, 10) == 20.0


def test_free_bits_leave_no_gradient_below_lambda():
    mu = torch.zeros(4, 3, requires_grad=True)
    logvar = torch.full((4, 3), -0.01, requires_grad=True)  # KL per dim ≈ 0.00005, far below λ
    x = torch.rand(4, 2)
    terms = vae_loss(torch.zeros(4, 2), x, mu, logvar, TrainConfig(free_bits=0.5, recon_loss="mse"), False, 1.0, 0)
    terms.loss.backward()
    assert logvar.grad.abs().max() == 0
    assert terms.loss.item() == pytest.approx(terms.recon.item() + 1.5)
