"""MLP and convolutional VAEs (and plain autoencoders): encode, reparameterize, decode.

The decoder returns raw outputs: logits for images (the mean image is their sigmoid),
the mean itself for 2-D points. `output_mean` turns raw outputs into the mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vae_core import limits
from vae_core.config import ConfigError, TrainConfig

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "tanh": nn.Tanh,
                "gelu": nn.GELU}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


class Dropout(nn.Module):
    """Inverted dropout whose masks come from the generator passed to `forward` (the run's own), so runs
    training at once do not change each other's masks; without one, from torch's global RNG."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return x
        keep = 1.0 - self.p
        return x * torch.empty_like(x).bernoulli_(keep, generator=generator) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _run(layers: nn.Sequential, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """layers(x), with the generator handed to the dropout layers."""
    for layer in layers:
        x = layer(x, generator) if isinstance(layer, Dropout) else layer(x)
    return x


class VAE(nn.Module):
    """Encoder q(z|x) = N(μ, σ²), prior N(0, I), decoder p(x|z). With variational=False: an autoencoder."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, feature_dim: int, latent_dim: int,
                 sample_shape: tuple[int, ...], variational: bool, normalize_inputs: bool = False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.to_mu = nn.Linear(feature_dim, latent_dim)
        self.to_logvar = nn.Linear(feature_dim, latent_dim) if variational else None
        self.latent_dim = latent_dim
        self.sample_shape = tuple(sample_shape)
        self.variational = variational
        self.is_image = len(sample_shape) == 3
        # Input normalisation, set from the training data: applied to the encoder's input only.
        self.normalize_inputs = normalize_inputs
        self.register_buffer("input_mean", torch.zeros(sample_shape))
        self.register_buffer("input_std", torch.ones(sample_shape))

    def set_input_normalization(self, train: torch.Tensor) -> None:
        self.input_mean.copy_(train.mean(0))
        self.input_std.copy_(train.std(0).clamp_min(1e-2))

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = _run(self.encoder, (x - self.input_mean) / self.input_std if self.normalize_inputs else x, generator)
        mu = self.to_mu(h)
        if self.to_logvar is None:
            return mu, torch.full_like(mu, -math.inf)  # a point mass: σ = 0
        return mu, F.hardtanh(self.to_logvar(h), -30.0, 20.0)  # clamp's twin, with half its backward cost

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
        if not self.variational:
            return mu
        return mu + torch.randn_like(mu, generator=generator) * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return _run(self.decoder, z, generator).view(-1, *self.sample_shape)

    def output_mean(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.is_image else raw

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Raw outputs, μ, log σ² and z; `generator` draws z and the dropout masks."""
        mu, logvar = self.encode(x, generator)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode(z, generator), mu, logvar, z


def _mlp(widths: list[int], config: TrainConfig, final_act: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or final_act:
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(activation(config.activation))
            if config.dropout > 0:
                layers.append(Dropout(config.dropout))
    return layers


def build_mlp(config: TrainConfig, sample_shape: tuple[int, ...]) -> VAE:
    d = math.prod(sample_shape)
    encoder = nn.Sequential(nn.Flatten(), *_mlp([d, *config.hidden], config, final_act=True))
    decoder = nn.Sequential(*_mlp([config.latent_dim, *reversed(config.hidden), d], config, final_act=False))
    return VAE(encoder, decoder, config.hidden[-1], config.latent_dim, sample_shape, config.mode == "vae",
               config.normalize_inputs)


def _conv_sizes(side: int, depth: int) -> list[int]:
    sizes = [side]
    for _ in range(depth):
        sizes.append(sizes[-1] // 2)  # kernel 4, stride 2, padding 1 halves (rounding down)
    return sizes


def build_conv(config: TrainConfig, sample_shape: tuple[int, ...]) -> VAE:
    if len(sample_shape) != 3:
        raise ConfigError("architecture: the convolutional model needs image data; use mlp for 2-D points")
    channels, height, width = sample_shape
    hs, ws = _conv_sizes(height, len(config.hidden)), _conv_sizes(width, len(config.hidden))
    if min(hs[-1], ws[-1]) < 1:
        raise ConfigError(f"hidden: {len(config.hidden)} conv layers halve a {height}×{width} image to nothing; "
                          f"use at most {int(math.log2(min(height, width)))}")
    norm = (lambda c: nn.BatchNorm2d(c)) if config.batch_norm else (lambda c: nn.Identity())
    enc: list[nn.Module] = []
    for c_in, c_out in zip([channels, *config.hidden[:-1]], config.hidden):
        enc += [nn.Conv2d(c_in, c_out, 4, 2, 1), norm(c_out), activation(config.activation)]
    enc.append(nn.Flatten())
    if config.dropout > 0:
        enc.append(Dropout(config.dropout))
    feature_dim = config.hidden[-1] * hs[-1] * ws[-1]

    dec: list[nn.Module] = [nn.Linear(config.latent_dim, feature_dim), activation(config.activation),
                            nn.Unflatten(1, (config.hidden[-1], hs[-1], ws[-1]))]
    outs = [*reversed(config.hidden[:-1]), channels]
    for i, (c_in, c_out) in enumerate(zip(reversed(config.hidden), outs)):
        level = len(config.hidden) - 1 - i  # this layer doubles hs[level + 1] back to hs[level]
        pad = (hs[level] - 2 * hs[level + 1], ws[level] - 2 * ws[level + 1])
        dec.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, output_padding=pad))
        if i < len(config.hidden) - 1:
            dec += [norm(c_out), activation(config.activation)]
    return VAE(nn.Sequential(*enc), nn.Sequential(*dec), feature_dim, config.latent_dim, sample_shape,
               config.mode == "vae", config.normalize_inputs)


def build_model(config: TrainConfig, sample_shape: tuple[int, ...]) -> VAE:
    model = (build_conv if config.architecture == "conv" else build_mlp)(config, sample_shape)
    n, cap = parameter_count(model), limits.current().max_params
    if n > cap:
        raise ConfigError(f"hidden: this model has {n:,} parameters, above this server's limit of {cap:,} "
                          "(VAE_LAB_MAX_PARAMS); use fewer or narrower layers")
    return model


class Discriminator(nn.Module):
    """A small critic for the adversarial term: real data against reconstructions (VAE-GAN style)."""

    def __init__(self, sample_shape: tuple[int, ...], width: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(sample_shape), width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
