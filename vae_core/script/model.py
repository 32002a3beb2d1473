"""The script's model: the same modules as vae_core/maths/models.py, created in the same order (so torch's
seeded initialisation gives the same weights), written out layer by layer."""

from __future__ import annotations

import math

from vae_core.config import TrainConfig

ACTIVATIONS = {"relu": "nn.ReLU()", "leaky_relu": "nn.LeakyReLU(0.2)", "elu": "nn.ELU()", "tanh": "nn.Tanh()",
               "gelu": "nn.GELU()"}

DROPOUT = '''
class Dropout(nn.Module):
    """Dropout: zero each unit with probability p while training, scale the rest by 1/(1 − p). Its masks come
    from the run's generator, as VAE Lab's do."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        keep = 1.0 - self.p
        return x * torch.empty_like(x).bernoulli_(keep, generator=generator) / keep
'''


def _mlp(widths: list[int], config: TrainConfig, last_act: bool) -> list[str]:
    """One line per layer: Linear, then (batch norm,) activation (and dropout), as `_mlp` in maths/models.py."""
    lines = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        parts = [f"nn.Linear({a}, {b})"]
        if i < len(widths) - 2 or last_act:
            parts += [f"nn.BatchNorm1d({b})"] * config.batch_norm + [ACTIVATIONS[config.activation]]
            parts += [f"Dropout({config.dropout!r})"] * (config.dropout > 0)
        lines.append(", ".join(parts) + ",")
    return lines


def _halve(side: int, depth: int) -> list[int]:
    sizes = [side]
    for _ in range(depth):
        sizes.append(sizes[-1] // 2)
    return sizes


def _conv(config: TrainConfig, shape: tuple[int, ...]) -> tuple[list[str], list[str], int]:
    """Encoder lines, decoder lines and the encoder's feature size, as `build_conv` in maths/models.py."""
    channels, height, width = shape
    hidden, act = config.hidden, ACTIVATIONS[config.activation]
    hs, ws = _halve(height, len(hidden)), _halve(width, len(hidden))
    bn = ["nn.BatchNorm2d({})"] if config.batch_norm else []
    enc = []
    for i, (c_in, c_out) in enumerate(zip([channels, *hidden[:-1]], hidden)):
        parts = [f"nn.Conv2d({c_in}, {c_out}, 4, 2, 1)", *(p.format(c_out) for p in bn), act]
        enc.append(", ".join(parts) + f",  # {hs[i]}×{ws[i]} → {hs[i + 1]}×{ws[i + 1]}")
    enc.append("nn.Flatten()," + (f" Dropout({config.dropout!r})," if config.dropout > 0 else ""))
    feature = hidden[-1] * hs[-1] * ws[-1]
    dec = [f"nn.Linear({config.latent_dim}, {feature}), {act}, nn.Unflatten(1, ({hidden[-1]}, {hs[-1]}, {ws[-1]})),"]
    outs = [*reversed(hidden[:-1]), channels]
    for i, (c_in, c_out) in enumerate(zip(reversed(hidden), outs)):
        level = len(hidden) - 1 - i
        pad = (hs[level] - 2 * hs[level + 1], ws[level] - 2 * ws[level + 1])
        parts = [f"nn.ConvTranspose2d({c_in}, {c_out}, 4, 2, 1" + (f", output_padding={pad})" if any(pad) else ")")]
        if i < len(hidden) - 1:
            parts += [*(p.format(c_out) for p in bn), act]
        dec.append(", ".join(parts) + f",  # → {hs[level]}×{ws[level]}")
    return enc, dec, feature


def model_code(config: TrainConfig, shape: tuple[int, ...]) -> str:
    """The model class and its techniques' lines (batch norm, dropout, input normalisation, autoencoder mode)."""
    image = len(shape) == 3
    if config.architecture == "conv":
        enc, dec, feature = _conv(config, shape)
    else:
        d = math.prod(shape)
        enc = ["nn.Flatten(),"] * image + _mlp([d, *config.hidden], config, last_act=True)
        dec = _mlp([config.latent_dim, *reversed(config.hidden), d], config, last_act=False)
        feature = config.hidden[-1]
    vae = config.mode == "vae"
    what = ("a VAE: encoder q(z|x) = N(μ, σ²), prior p(z) = N(0, I), decoder p(x|z)" if vae else
            "an autoencoder: a deterministic code z = μ(x), no prior and no KL term")
    notes = []
    if config.batch_norm:
        notes.append("# Batch norm: each layer's outputs standardised over the batch (running averages at test time).")
    if config.dropout > 0:
        where = "the encoder's features" if config.architecture == "conv" else "each hidden activation"
        notes.append(f"# Dropout: each unit of {where} zeroed with probability {config.dropout!r} (a regulariser).")
    body = [f"# --- Model: {what} ---",
            *notes,
            "class VAE(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
            "        self.encoder = nn.Sequential(",
            *(" " * 12 + line for line in enc),
            "        )",
            "        self.decoder = nn.Sequential(",
            *(" " * 12 + line for line in dec),
            "        )",
            f"        self.fc_mu = nn.Linear({feature}, {config.latent_dim})  # μ of q(z|x)"]
    if vae:
        body.append(f"        self.fc_logvar = nn.Linear({feature}, {config.latent_dim})  # log σ² of q(z|x)")
    x_in = "(x - input_mean) / input_std" if config.normalize_inputs else "x"
    body += ["", "    def encode(self, x):", f"        h = self.encoder({x_in})"]
    if vae:
        body += ["        return self.fc_mu(h), F.hardtanh(self.fc_logvar(h), -30.0, 20.0)  # μ, log σ² (clamped)",
                 "",
                 "    def reparameterize(self, mu, logvar, generator):",
                 "        # z ~ q(z|x) as μ + σ·ε, ε ~ N(0, I): the reparameterisation trick",
                 "        return mu + torch.randn_like(mu, generator=generator) * torch.exp(0.5 * logvar)"]
    else:
        body += ["        return self.fc_mu(h), None  # the code, and no σ",
                 "",
                 "    def reparameterize(self, mu, logvar, generator):",
                 "        return mu  # an autoencoder's z is its code: no noise"]
    raw = "logits of each pixel" if image else "the point itself"
    view = "" if config.architecture == "conv" or not image else f".view(-1, {', '.join(map(str, shape))})"
    body += ["",
             "    def decode(self, z):",
             f"        return self.decoder(z){view}  # raw outputs: {raw}",
             "",
             "    def forward(self, x, generator):",
             "        mu, logvar = self.encode(x)",
             "        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar"]
    code = "\n".join(body)
    if config.dropout > 0:
        code = DROPOUT.strip("\n") + "\n\n\n" + code
    if config.normalize_inputs:
        code = ("# Input normalisation: the encoder sees each input feature standardised over the training split;\n"
                "# the reconstruction targets stay as they are.\n"
                "input_mean, input_std = train_x.mean(0), train_x.std(0).clamp_min(1e-2)\n\n\n" + code)
    return code


def critic_code(config: TrainConfig, shape: tuple[int, ...]) -> str:
    """The adversarial critic, as `Discriminator` in maths/models.py (created after the model: same weights)."""
    if config.adv_weight <= 0:
        return ""
    return ("# Adversarial term (VAE-GAN style): a critic learns to tell inputs from reconstructions, and the VAE\n"
            "# is rewarded for fooling it; the critic has its own optimiser.\n"
            f"critic = nn.Sequential(nn.Flatten(), nn.Linear({math.prod(shape)}, 128), nn.LeakyReLU(0.2), "
            "nn.Linear(128, 1))\n"
            "critic_optimizer = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)")
