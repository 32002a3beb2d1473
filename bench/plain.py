"""What a user would write instead of VAE Lab: the same VAE built by hand with nn.Sequential and a
plain PyTorch loop in the shape of pytorch/examples' VAE (a training pass, then a validation pass
per epoch), with the engine's defaults: Adam (lr 2e-3), randperm batches, BCE-on-logits + KL
(β = 1), and `loss.item()` after every step as a user logging the loss would. Adam is torch's default
implementation, as a user gets it; `fused=True` gives the fused kernel the engine uses, so the engine's
own overhead can be told apart from what the kernel saves.

The models are written out here rather than taken from vae_core.maths.models, so the comparison is against
code that owes nothing to the engine; `check_same_architecture` proves the parameter counts agree.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from vae_core.config import TrainConfig
from vae_core.maths.models import build_model, parameter_count


class PlainVAE(nn.Module):
    def __init__(self, encoder: nn.Module, feature_dim: int, latent_dim: int, decoder: nn.Module, shape):
        super().__init__()
        self.encoder, self.decoder, self.shape = encoder, decoder, tuple(shape)
        self.mu = nn.Linear(feature_dim, latent_dim)
        self.logvar = nn.Linear(feature_dim, latent_dim)

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z).view(-1, *self.shape), mu, logvar


def build(config: TrainConfig, shape: tuple[int, ...]) -> PlainVAE:
    """MLP (one hidden layer) or conv (two stride-2 layers) VAE, as in the benchmark's two configs."""
    c, h, w = shape
    z = config.latent_dim
    if config.architecture == "mlp":
        (width,) = config.hidden
        d = c * h * w
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.ReLU())
        decoder = nn.Sequential(nn.Linear(z, width), nn.ReLU(), nn.Linear(width, d))
        return PlainVAE(encoder, width, z, decoder, shape)
    c1, c2 = config.hidden
    if h % 4 or w % 4:
        raise ValueError("the hand-built conv model needs sides divisible by 4")
    feature = c2 * (h // 4) * (w // 4)
    encoder = nn.Sequential(nn.Conv2d(c, c1, 4, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(), nn.Flatten())
    decoder = nn.Sequential(nn.Linear(z, feature), nn.ReLU(), nn.Unflatten(1, (c2, h // 4, w // 4)),
                            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, c, 4, 2, 1))
    return PlainVAE(encoder, feature, z, decoder, shape)


def check_same_architecture(config: TrainConfig, shape: tuple[int, ...]) -> int:
    """The parameter count, after checking the engine's model has the same one."""
    ours, engine = parameter_count(build(config, shape)), parameter_count(build_model(config, shape))
    if ours != engine:
        raise AssertionError(f"hand-built model has {ours} parameters, vae_core's {engine}")
    return ours


def vae_loss(raw, x, mu, logvar):
    """Negative ELBO per sample (nats), batch mean: Bernoulli reconstruction + closed-form KL."""
    bce = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / len(x)


class PlainLoop:
    def __init__(self, config: TrainConfig, data, seed: int = 0, fused: bool = False):
        torch.manual_seed(seed)
        self.config, self.data = config, data
        self.model = build(config, data.sample_shape)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=fused)
        self.losses: list[float] = []

    def step(self, x) -> float:
        self.model.train()
        raw, mu, logvar = self.model(x)
        loss = vae_loss(raw, x, mu, logvar)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        value = loss.item()
        self.losses.append(value)
        return value

    def epoch(self) -> float:
        """One shuffled pass over the training set, then the validation loss."""
        train, bs = self.data.train, self.config.batch_size
        order = torch.randperm(len(train))
        for start in range(0, len(train), bs):
            self.step(train[order[start:start + bs]])
        self.model.eval()
        total = 0.0
        with torch.no_grad():
            for xb in self.data.val.split(1024):
                raw, mu, logvar = self.model(xb)
                total += vae_loss(raw, xb, mu, logvar).item() * len(xb)
        return total / len(self.data.val)


def train(config: TrainConfig, data, threads: int, fused: bool = False) -> dict:
    """The whole plain run (model built, config.epochs epochs) with `threads` intra-op threads:
    its wall-clock seconds, and the CPU seconds of the calling thread (all of the work with one thread)."""
    torch.set_num_threads(threads)
    t0, cpu0 = time.perf_counter(), time.thread_time()
    loop = PlainLoop(config, data, fused=fused)
    for _ in range(config.epochs):
        val = loop.epoch()
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    if not math.isfinite(val):
        raise AssertionError("the plain loop diverged")
    return {"seconds": seconds, "cpu": cpu}


def steps(config: TrainConfig, data, threads: int, n: int, warmup: int = 3) -> float:
    """Seconds for n training steps (after `warmup` untimed ones) on batches cut from the training set."""
    torch.set_num_threads(threads)
    loop = PlainLoop(config, data)
    train, bs = data.train, config.batch_size
    per_epoch = max(1, len(train) // bs)
    order = torch.randperm(len(train))

    def batch(i):
        i %= per_epoch
        return train[order[i * bs:(i + 1) * bs]]

    for i in range(warmup):
        loop.step(batch(i))
    t0 = time.perf_counter()
    for i in range(n):
        loop.step(batch(i))
    return time.perf_counter() - t0
