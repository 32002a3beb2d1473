"""Lesson presets: a configuration, its contrast, and the claim the pair demonstrates.

Every claim here is checked on real data by tests/lessons; where a claim does not hold, the claim
or the preset changes, never the test.
"""

from __future__ import annotations

from dataclasses import dataclass

from vae_core.config import TrainConfig


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    claim: str  # the lesson's point, in one sentence
    look_for: str  # what to look at on the Train page
    preset: TrainConfig  # what the lesson's button loads into the Train page
    contrast: TrainConfig  # the run to compare it with
    preset_label: str
    contrast_label: str


def _digits(**changes) -> TrainConfig:
    return TrainConfig(dataset="digits", **changes)


LESSONS: list[Lesson] = [
    Lesson("beta", "β: reconstruction against a regular latent space",
           "Raising β lowers the KL term and blurs reconstructions; β = 0 reconstructs best but leaves the prior "
           "unused, so samples from it look like nothing.",
           "The KL curve and the reconstructions; the samples from the prior.",
           _digits(beta=8.0), _digits(beta=1.0), "β = 8", "β = 1"),
    Lesson("ae-vs-vae", "Autoencoder against VAE",
           "An autoencoder's latent space has holes: decodings of random points look less like data than a VAE's.",
           "The samples from the prior and the latent scatter's spread.",
           _digits(mode="ae"), _digits(mode="vae"), "autoencoder", "VAE"),
    Lesson("warmup", "KL warm-up against posterior collapse",
           "Starting with β near 0 and raising it slowly keeps more latent dimensions active than full β from "
           "the first step.",
           "Active units and KL per dimension.",
           _digits(latent_dim=16, beta_schedule="warmup", beta_warmup_epochs=10.0),
           _digits(latent_dim=16), "warm-up over 10 epochs", "constant β"),
    Lesson("lr-too-high", "A learning rate that is too high",
           "Too high a learning rate makes the loss jump around or blow up instead of falling smoothly.",
           "The loss curve: its noise, and whether the run fails.",
           _digits(lr=0.5, optimizer="sgd", momentum=0.9), _digits(lr=0.01, optimizer="sgd", momentum=0.9),
           "lr = 0.5", "lr = 0.01"),
    Lesson("augmentation", "Augmentation against overfitting",
           "On a small training set, augmentation narrows the gap between training and validation loss.",
           "Training against validation loss.",
           _digits(augment=True, hidden=[512, 512], latent_dim=16), _digits(hidden=[512, 512], latent_dim=16),
           "augmented", "plain"),
    Lesson("bce-vs-mse", "BCE against MSE",
           "BCE treats pixels as probabilities and gives sharp strokes; MSE with a wide σ gives blurrier ones.",
           "The reconstructions.",
           _digits(recon_loss="bce"), _digits(recon_loss="mse", mse_sigma=0.3), "BCE", "MSE, σ = 0.3"),
]


def lesson(key: str) -> Lesson:
    for item in LESSONS:
        if item.key == key:
            return item
    raise KeyError(f"no lesson named {key!r}")
