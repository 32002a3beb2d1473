"""The ELBO's pieces and the objectives built from them, in nats per sample.

reconstruction = −log p(x|z) summed over the sample's dimensions;
KL = KL(q(z|x) ‖ N(0, I)) in closed form;  negative ELBO = reconstruction + KL (β = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae_core.config import TrainConfig

_LOG_2PI = math.log(2 * math.pi)


def reconstruction_nll(raw: torch.Tensor, x: torch.Tensor, config: TrainConfig, is_image: bool,
                       per_sample: bool = True) -> torch.Tensor:
    """−log p(x|z) per sample, or summed over the batch: Bernoulli (BCE on logits), Gaussian with
    σ = mse_sigma (MSE), or a mix."""
    dims = tuple(range(1, x.dim())) if per_sample else None

    def bce():
        if per_sample:
            return F.binary_cross_entropy_with_logits(raw, x, reduction="none").sum(dims)
        return F.binary_cross_entropy_with_logits(raw, x, reduction="sum")  # one fused op, forward and backward

    def gaussian():
        mean = torch.sigmoid(raw) if is_image else raw
        s = config.mse_sigma
        return ((x - mean) ** 2 / (2 * s * s) + math.log(s) + 0.5 * _LOG_2PI).sum(dims)

    if config.recon_loss == "bce":
        return bce()
    if config.recon_loss == "mse":
        return gaussian()
    return config.mixed_weight * bce() + (1 - config.mixed_weight) * gaussian()


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) for each sample and latent dimension: ½(μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def beta_at(step: int, beta: float, config: TrainConfig, steps_per_epoch: int) -> float:
    """β at a training step: constant, linear warm-up, or cyclical (Fu et al. 2019)."""
    if config.beta_schedule == "warmup":
        warm = config.beta_warmup_epochs * steps_per_epoch
        return beta * min(1.0, step / warm) if warm > 0 else beta
    if config.beta_schedule == "cyclical":
        period = config.epochs * steps_per_epoch / config.beta_cycles
        tau = (step % math.ceil(period)) / period
        return beta * min(1.0, tau / config.beta_cycle_ratio)
    return beta


def capacity_at(step: int, config: TrainConfig, steps_per_epoch: int) -> float:
    """The KL target C, ramped linearly from 0 to capacity_max (Burgess et al. 2018)."""
    ramp = config.capacity_ramp_epochs * steps_per_epoch
    return config.capacity_max * (min(1.0, step / ramp) if ramp > 0 else 1.0)


@dataclass
class LossTerms:
    loss: torch.Tensor  # the weighted objective actually optimised (batch mean)
    recon: torch.Tensor  # batch mean of reconstruction nats
    kl: torch.Tensor  # batch mean of KL nats (0 for an autoencoder)

    @property
    def kl_term(self) -> torch.Tensor:
        """The objective's KL part, as optimised: β·KL, γ·|KL − C| or the free-bits sum (see `kl_term_name`)."""
        return self.loss - self.recon


def kl_term_name(config: TrainConfig) -> str | None:
    """The objective's KL part in symbols, as the charts name it; None for an autoencoder (no KL term)."""
    if config.mode == "ae":
        return None
    if config.capacity:
        return "γ·|KL − C|"
    if config.free_bits > 0:
        return "β·Σⱼ max(KLⱼ, λ)"
    return "β·KL"


def objective(recon: torch.Tensor, kl: torch.Tensor, kl_dims: torch.Tensor, config: TrainConfig, beta: float,
              capacity: float) -> torch.Tensor:
    """The weighted loss from mean reconstruction nats, mean KL and mean KL per dimension (read by free bits
    only): β-VAE, capacity (γ·|KL − C|) or free bits; an autoencoder optimises reconstruction only."""
    if config.mode == "ae":
        return recon
    if config.capacity:
        return recon + config.capacity_gamma * (kl - capacity).abs()
    if config.free_bits > 0:
        return recon + beta * kl_dims.clamp_min(config.free_bits).sum()
    return recon + beta * kl


def vae_loss(raw, x, mu, logvar, config: TrainConfig, is_image: bool, beta: float, capacity: float) -> LossTerms:
    """The batch's loss terms, its loss given by `objective`."""
    recon = reconstruction_nll(raw, x, config, is_image, per_sample=False) / len(x)
    if config.mode == "ae":
        kl_dims = torch.zeros(mu.shape[1], device=mu.device)
    else:
        kl_dims = kl_per_dim(mu, logvar).mean(0)
    kl = kl_dims.sum()
    return LossTerms(objective(recon, kl, kl_dims, config, beta, capacity), recon, kl)
