"""The script's objective: the ELBO's pieces and the weighting of its KL term, as vae_core/maths/objectives.py
computes them (β schedules, capacity, free bits, the autoencoder's reconstruction alone)."""

from __future__ import annotations

from vae_core.config import TrainConfig

BCE = "F.binary_cross_entropy_with_logits(raw, x, reduction=\"sum\")"
GAUSSIAN = ("((x - {mean}) ** 2 / (2 * {s!r} * {s!r}) + math.log({s!r}) + 0.5 * math.log(2 * math.pi)).sum()")


def reconstruction_code(config: TrainConfig, image: bool) -> str:
    """`reconstruction_nll(raw, x)`: −log p(x|z) summed over the batch, for the chosen decoder."""
    mean = "torch.sigmoid(raw)" if image else "raw"
    gaussian = GAUSSIAN.format(mean=mean, s=config.mse_sigma)
    if config.recon_loss == "bce":
        what, expr = "a Bernoulli decoder (binary cross-entropy on the logits)", BCE
    elif config.recon_loss == "mse":
        what, expr = f"a Gaussian decoder, σ = {config.mse_sigma!r} (squared error scaled by 1/2σ²)", gaussian
    else:
        w = config.mixed_weight
        what = f"a mix of a Bernoulli (BCE) and a Gaussian decoder (σ = {config.mse_sigma!r})"
        return (f"def reconstruction_nll(raw, x):\n"
                f'    """−log p(x|z), summed over the batch: {what}."""\n'
                f"    bce = {BCE}\n"
                f"    gaussian = {gaussian}\n"
                f"    return {w!r} * bce + {1 - w!r} * gaussian")
    return (f"def reconstruction_nll(raw, x):\n"
            f'    """−log p(x|z), summed over the batch, for {what}."""\n'
            f"    return {expr}")


KL = '''
def kl_per_dim(mu, logvar):
    """KL(N(μ, σ²) ‖ N(0, 1)) for each sample and latent dimension, in closed form."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)'''


def _beta_code(config: TrainConfig) -> tuple[str, str]:
    """(a `beta_at(step)` function or "", the expression of β at `step`)."""
    beta = config.beta
    warm = config.beta_warmup_epochs
    if config.beta_schedule == "warmup" and warm > 0:
        return (f"def beta_at(step):\n"
                f'    """KL warm-up: β grows linearly from 0 to {beta!r} over the first {warm!r} epochs."""\n'
                f"    return {beta!r} * min(1.0, step / ({warm!r} * steps_per_epoch))"), "beta_at(step)"
    if config.beta_schedule == "cyclical":
        cycles, ratio = config.beta_cycles, config.beta_cycle_ratio
        return (f"def beta_at(step):\n"
                f'    """Cyclical β (Fu et al. 2019): {cycles} cycles over the run; in each, β grows linearly from 0\n'
                f'    to {beta!r} over the first {ratio!r} of the cycle, then stays."""\n'
                f"    period = EPOCHS * steps_per_epoch / {cycles}\n"
                f"    tau = (step % math.ceil(period)) / period\n"
                f"    return {beta!r} * min(1.0, tau / {ratio!r})"), "beta_at(step)"
    return "", repr(beta)


def objective_code(config: TrainConfig, image: bool) -> str:
    """reconstruction_nll, kl_per_dim, the schedules the objective reads, and `loss_function`."""
    parts = [reconstruction_code(config, image)]
    head = "def loss_function(raw, x, mu, logvar, step):\n"
    recon = "    recon = reconstruction_nll(raw, x) / len(x)\n"
    if config.mode == "ae":
        parts.append(head + '    """The batch\'s mean reconstruction nats, all an autoencoder optimises (no KL)."""\n'
                     + recon + "    return recon, recon, torch.zeros(())")
        return "\n\n\n".join(parts)
    parts.append(KL.strip("\n"))
    kl = "    kl_dims = kl_per_dim(mu, logvar).mean(0)  # nats per latent dimension\n    kl = kl_dims.sum()\n"
    if config.capacity:
        c, ramp, gamma = config.capacity_max, config.capacity_ramp_epochs, config.capacity_gamma
        ramped = f"min(1.0, step / ({ramp!r} * steps_per_epoch))" if ramp > 0 else "1.0"
        parts.append(f"def capacity_at(step):\n"
                     f'    """The KL target C (Burgess et al. 2018): from 0 to {c!r} nats over the first {ramp!r} '
                     f'epochs."""\n'
                     f"    return {c!r} * {ramped}")
        doc = f"Capacity: γ·|KL − C| with γ = {gamma!r} steers the KL to C instead of pricing it"
        loss = f"recon + {gamma!r} * (kl - capacity_at(step)).abs()"
    else:
        beta_fn, beta = _beta_code(config)
        if beta_fn:
            parts.append(beta_fn)
        if config.free_bits > 0:
            lam = config.free_bits
            doc = f"Free bits: β·Σⱼ max(KLⱼ, λ), the first λ = {lam!r} nats of each latent dimension's KL are free"
            loss = f"recon + {beta} * kl_dims.clamp_min({lam!r}).sum()"
        else:
            doc = "β-VAE: reconstruction + β·KL (with β = 1, the negative ELBO)"
            loss = f"recon + {beta} * kl"
    parts.append(head + '    """The batch\'s mean objective, reconstruction and KL, in nats."""\n'
                 + recon + kl + f"    # {doc}\n    return {loss}, recon, kl")
    return "\n\n\n".join(parts)
