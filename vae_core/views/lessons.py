"""Lesson presets: a configuration, its contrast, and the claim the pair demonstrates.

Every claim here is checked on real data by tests/lessons (tests/lessons/test_lessons.py trains each
preset and its contrast with two seeds and measures the quantity named in `metric`); where a claim
did not hold, the claim or the preset changed, never the test. Each preset trains in a few seconds
of CPU time on the embedded 8×8 digits (one lesson on the generated shapes, whose factors are known).

Presets spell out epochs and latent size (the TrainConfig defaults follow the server's limits, and a
claim holds only for the configuration it was checked with). A lesson whose runs do not fit this
server's limits (VAE_LAB_MAX_EPOCHS, VAE_LAB_MAX_LATENT, ...) is left out of LESSONS and listed in
UNAVAILABLE with the reason, instead of breaking the import.
"""

from __future__ import annotations

from dataclasses import dataclass

from vae_core.config import ConfigError, TrainConfig


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    claim: str  # the lesson's point, in one sentence
    look_for: str  # what to look at: first what Compare opens on (curve, samples), then the Train page
    preset: TrainConfig  # what the lesson's button loads into the Train page
    contrast: TrainConfig  # the run to compare it with
    preset_label: str
    contrast_label: str
    metric: str = ""  # the measured quantity the test checks the claim with
    extra: tuple[TrainConfig, ...] = ()  # further runs for three-way lessons (β = 0 / 1 / 8)
    extra_labels: tuple[str, ...] = ()
    collapsed: tuple[str, ...] = ()  # the runs the claim calls collapsed, as vae_core.maths.collapse defines it
    # Where "Run side by side" opens Compare, so students land on what `look_for` names: the curve (a per-epoch
    # metric: val_neg_elbo, val_recon, val_kl, train_loss or val_active_units), and whether prior samples matter.
    curve: str = "val_neg_elbo"
    samples: bool = False
    # What else Compare opens on for this lesson (vae_core/views/run_points.py): "rate-distortion", each run's
    # last epoch as one labelled point in the rate–distortion plane; "weights", each run's weight histogram.
    view: str = ""

    @property
    def runs(self) -> list[tuple[str, TrainConfig]]:
        """Every configuration of the lesson with its label: preset, contrast, then the extras."""
        return [(self.preset_label, self.preset), (self.contrast_label, self.contrast),
                *zip(self.extra_labels, self.extra)]


LESSONS: list[Lesson] = []
UNAVAILABLE: dict[str, str] = {}  # key -> why the lesson is left out on this server


def _digits(**changes) -> dict:
    """Settings of a run on the digits, with epochs and latent size explicit."""
    return {"dataset": "digits", "epochs": 30, "latent_dim": 2, **changes}


def _add(key: str, title: str, claim: str, look_for: str, preset: dict, contrast: dict, preset_label: str,
         contrast_label: str, *, metric: str, extra: tuple[dict, ...] = (), extra_labels: tuple[str, ...] = (),
         collapsed: tuple[str, ...] = (), curve: str = "val_neg_elbo", samples: bool = False, view: str = ""):
    try:
        configs = [TrainConfig(**settings) for settings in (preset, contrast, *extra)]
    except ConfigError as exc:
        UNAVAILABLE[key] = f"{title}: not available on this server, its runs exceed a limit ({exc})"
        return
    LESSONS.append(Lesson(key, title, claim, look_for, configs[0], configs[1], preset_label, contrast_label,
                          metric, tuple(configs[2:]), tuple(extra_labels), collapsed, curve, samples, view))

# Shared bases: lessons that compare with the same run use the same configuration, so the app (and
# the tests) can reuse it.
_VAE8 = dict(latent_dim=8)  # a plain VAE with 8 latent dimensions: β = 1, BCE, 30 epochs
_BETA2 = dict(latent_dim=16, beta=2.0)  # strong enough KL pressure to squeeze most dimensions out
# A sharp Gaussian decoder that fits its 1,257 training digits clearly better than new ones.
_SHARP = dict(latent_dim=16, recon_loss="mse", mse_sigma=0.1, epochs=20)

_add(
    "beta", "β: reconstruction against a regular latent space",
    "Raising β trades reconstruction for a latent space that matches the prior. β = 0 reconstructs best, but "
    "its samples from the prior seldom look like digits: at most one in four comes as close to a training digit "
    "as nine in ten unseen real digits do, against at least four in five for β = 1. β = 8 squeezes the KL to "
    "zero (posterior collapse): every reconstruction is the same blurred average digit.",
    "The samples from the prior of each β (only β = 1's mostly look like digits), the reconstructions, and the "
    "KL curve.",
    _digits(beta=8.0, **_VAE8), _digits(beta=1.0, **_VAE8), "β = 8", "β = 1",
    metric="validation KL and reconstruction error (RMS pixels); share of decoded prior samples within the "
           "nearest-training-image distance of 90% of validation digits, and their mean distance",
    extra=(_digits(beta=0.0, **_VAE8),), extra_labels=("β = 0",), collapsed=("β = 8",), curve="val_kl",
    samples=True)
_add(
    "ae-vs-vae", "Autoencoder against VAE",
    "An autoencoder leaves holes in its 8-D latent space: decode random latent points and you get images further "
    "from any training digit than a VAE's samples, even when the points are drawn from a Gaussian matched to the "
    "autoencoder's own codes.",
    "The samples from the prior (the autoencoder's are scrawls), and the reconstructions (the autoencoder's are "
    "sharper).",
    _digits(mode="ae", **_VAE8), _digits(mode="vae", **_VAE8), "autoencoder", "VAE",
    metric="mean distance of decoded random latent points (N(0, I), and a Gaussian fitted to the codes) "
           "to their nearest training image", curve="val_recon", samples=True)
_add(
    "warmup", "KL warm-up against posterior collapse",
    "At β = 2, full β from the first step squeezes the code below one bit (ln 2 ≈ 0.69 nats) of KL: posterior "
    "collapse, and the Train page warns of it. Warming β up from 0 over 10 epochs lets the code keep at least "
    "one and a half times that KL (information about the input), with no warning, and ends with an ELBO at "
    "least 0.3 nats better.",
    "The KL curve (warm-up keeps it up), then on the Train page KL per dimension and the collapse warning.",
    _digits(beta_schedule="warmup", beta_warmup_epochs=10.0, **_BETA2), _digits(**_BETA2),
    "warm-up over 10 epochs", "constant β = 2",
    metric="validation KL and negative ELBO; the collapse verdict", collapsed=("constant β = 2",), curve="val_kl")
_add(
    "lr-too-high", "A learning rate that is too high",
    "Too high a learning rate (SGD at 0.5) makes the loss blow up to NaN within the first epoch, and the run "
    "stops. The same model at 0.01 trains smoothly.",
    "The training loss (lr = 0.5's ends at once) and each run's status.",
    _digits(lr=0.5, optimizer="sgd", momentum=0.9), _digits(lr=0.01, optimizer="sgd", momentum=0.9),
    "lr = 0.5", "lr = 0.01",
    metric="run status (failed or finished) and the step it failed at; validation negative ELBO",
    curve="train_loss")
_add(
    "augmentation", "Augmentation against overfitting",
    "Augmentation more than halves the gap between training and validation loss of a model that fits its "
    "training digits closely. But on these small centred digits it does so by making training harder: "
    "validation loss gets worse (by over 10 nats), not better.",
    "The validation −ELBO (the augmented run's is higher), then the training loss against it.",
    _digits(augment=True, **_SHARP), _digits(**_SHARP), "augmented", "plain",
    metric="validation minus training negative ELBO; validation negative ELBO")
_add(
    "bce-vs-mse", "BCE against MSE",
    "MSE's σ weighs pixel errors against the KL term; BCE has no such knob. MSE with σ = 1 (plain squared "
    "error) lets the KL term win (posterior collapse): every reconstruction becomes the same blurred average "
    "digit. BCE keeps each digit's shape, and MSE with σ = 0.2 is sharper still.",
    "The reconstructions, and the KL curve (MSE with σ = 1 stays at 0).",
    _digits(recon_loss="bce", **_VAE8), _digits(recon_loss="mse", mse_sigma=1.0, **_VAE8), "BCE", "MSE, σ = 1",
    metric="reconstruction error (RMS pixels) and sharpness (mean jump between neighbouring pixels)",
    extra=(_digits(recon_loss="mse", mse_sigma=0.2, **_VAE8),), extra_labels=("MSE, σ = 0.2",),
    collapsed=("MSE, σ = 1",), curve="val_kl")
_add(
    "cyclical", "Cyclical β",
    "Cyclical β restarts its warm-up four times. Each time β drops back to 0 the KL more than doubles, and each "
    "cycle ends with more KL than the one before (some of what the code learns survives). The run ends with at "
    "least one and a half times the KL of constant β = 2 (which collapses) and an ELBO at least 0.2 nats better.",
    "The KL curve: a saw-tooth that climbs (β's own curve is on the Train page).",
    _digits(beta_schedule="cyclical", beta_cycles=4, **_BETA2), _digits(**_BETA2), "cyclical β", "constant β = 2",
    metric="KL at the start and end of each cycle against the end of the previous one; validation KL and "
           "negative ELBO", collapsed=("constant β = 2",), curve="val_kl")
_add(
    "capacity", "Capacity: a KL target instead of a KL price",
    "The capacity objective steers the KL to a target C, so C decides how much the code carries: with C = 6 "
    "nats reconstructions are clearly better than with C = 3. With a large γ (100) the penalty swamps "
    "training: the KL reaches C, but the code is of no use.",
    "The KL curve following the ramp of C, and the reconstructions.",
    _digits(capacity=True, capacity_max=6.0, capacity_gamma=2.0, **_VAE8),
    _digits(capacity=True, capacity_max=3.0, capacity_gamma=2.0, **_VAE8), "C = 6, γ = 2", "C = 3, γ = 2",
    metric="validation KL against C; reconstruction error (nats and RMS pixels)",
    extra=(_digits(capacity=True, capacity_max=6.0, capacity_gamma=100.0, **_VAE8),),
    extra_labels=("C = 6, γ = 100",), curve="val_kl")
_add(
    "free-bits", "Free bits against posterior collapse",
    "Free bits (λ = 0.25 nats per dimension) make each dimension's first λ nats free of the KL penalty. So "
    "every one of the 16 dimensions keeps close to λ (over 0.15 nats each), where constant β = 2 leaves at "
    "most two informative (above 0.1 nats) and collapses; reconstructions improve by over 2 nats.",
    "The active units (all 16 with free bits, one or two with constant β = 2); on the Train page, KL per "
    "dimension: with free bits every bar stays near λ, a little under it.",
    _digits(free_bits=0.25, **_BETA2), _digits(**_BETA2), "free bits λ = 0.25", "constant β = 2",
    metric="validation KL of each latent dimension; informative latent dimensions (above 0.1 nats, mean "
           "varying across inputs); reconstruction error", collapsed=("constant β = 2",), curve="val_active_units")
_add(
    "adversarial", "An adversarial term for crisper images",
    "A discriminator that learns to tell reconstructions from real digits pushes the decoder toward crisper "
    "images: reconstructions gain contrast between neighbouring pixels, while the ELBO changes by less than a "
    "nat.",
    "The reconstructions (crisper with the adversarial term) and the −ELBO curves (almost the same).",
    _digits(adv_weight=20.0, **_VAE8), _digits(**_VAE8), "adversarial weight 20", "no adversarial term",
    metric="sharpness of reconstructions (mean jump between neighbouring pixels); validation negative ELBO")
_add(
    "regularization", "Dropout and weight decay",
    "Dropout and weight decay narrow the gap between training and validation loss of a model that fits its "
    "training digits closely (by over a nat). But in a short run they do it by slowing the fit: validation "
    "loss gets worse (by over 5 nats).",
    "The validation −ELBO (higher with dropout or weight decay), then the training loss against it.",
    _digits(dropout=0.3, **_SHARP), _digits(**_SHARP), "dropout 0.3", "plain",
    metric="validation minus training negative ELBO; validation negative ELBO",
    extra=(_digits(optimizer="adamw", weight_decay=1.0, **_SHARP),), extra_labels=("AdamW, weight decay 1",))
_add(
    "batch-norm", "Batch norm in a deep network",
    "In a deep encoder and decoder (four layers of 256), batch norm lets the model learn a useful code within "
    "10 epochs. Without it the KL stays near 0 (posterior collapse) and every reconstruction is the average "
    "digit.",
    "The KL curve and the reconstructions.",
    _digits(batch_norm=True, hidden=[256] * 4, epochs=10, **_VAE8), _digits(hidden=[256] * 4, epochs=10, **_VAE8),
    "batch norm", "no batch norm",
    metric="validation KL and negative ELBO", collapsed=("no batch norm",), curve="val_kl")
_add(
    "early-stopping", "Early stopping",
    "Early stopping ends the run once validation loss has not improved for 3 epochs, and keeps the best "
    "weights. On these digits, where validation loss is still creeping down, it saves a third to two thirds "
    "of the 60 epochs for a validation loss less than a nat worse.",
    "The validation −ELBO: where the early-stopped run ends, and how little lower the full run gets.",
    _digits(early_stopping=True, patience=3, epochs=60), _digits(epochs=60), "early stopping, patience 3",
    "all 60 epochs",
    metric="epochs trained; validation negative ELBO")
_add(
    "lr-schedule", "Learning-rate schedules",
    "A one-cycle schedule (a warm-up, then annealing) gets more out of a high peak learning rate (0.01): it "
    "ends with an ELBO over half a nat better than the same rate held constant, and a code that carries at "
    "least a quarter more KL.",
    "The validation −ELBO at the end; on the Train page, the learning-rate and KL curves.",
    _digits(lr=0.01, lr_schedule="onecycle"), _digits(lr=0.01), "one-cycle, peak 0.01", "constant 0.01",
    metric="validation negative ELBO and KL")

# Issue #15: inputs, architecture, optimisers, penalties, a sweep that is not β, and disentanglement.
_SGD = dict(optimizer="sgd", lr=0.01, momentum=0.9)  # plain SGD at its usual rate, with momentum
_DEEP = dict(hidden=[256] * 4, epochs=20, **_VAE8)  # four hidden layers of 256, no batch norm
_GAUSS = dict(recon_loss="mse", mse_sigma=0.1, epochs=20)  # a sharp decoder: extra latent dimensions pay
_add(
    "normalize-inputs", "Input normalisation",
    "Standardising the encoder's input (each pixel shifted and scaled to mean 0 and spread 1 over the training "
    "digits) helps plain SGD: it gets below 26.5 nats at least two epochs sooner than on raw pixels. Adam, which "
    "scales each weight's step itself, gains nothing worth having (under half a nat at the end). The decoder's "
    "targets stay the raw pixels: BCE reads each as the probability of ink, which must lie in [0, 1], and a "
    "standardised pixel does not (here it runs from below −1 to over 10).",
    "The validation −ELBO: the standardised SGD run leaves the average digit's plateau (about 27 nats) sooner; "
    "the two Adam runs lie on top of each other.",
    _digits(normalize_inputs=True, **_SGD, **_VAE8), _digits(**_SGD, **_VAE8), "standardised, SGD", "raw, SGD",
    metric="first epoch with a validation negative ELBO below 26.5 nats; validation negative ELBO; the range of "
           "standardised pixels", extra=(_digits(normalize_inputs=True, **_VAE8), _digits(**_VAE8)),
    extra_labels=("standardised, Adam", "raw, Adam"))
_add(
    "conv-vs-mlp", "Convolutional against fully connected",
    "At the same budget (101,401 parameters against 102,224) a convolutional encoder and decoder, which reuse "
    "each small filter all over the image, reconstruct the digits better than fully connected layers (by over "
    "0.3 nats) and learn faster (over 0.4 nats ahead after 5 epochs). On these 8×8 digits filters have "
    "little room to pay off: where MNIST is installed, try the pair on its 28×28 digits.",
    "The validation reconstruction (the convolutional run lower from the first epochs), then the reconstructions.",
    _digits(architecture="conv", hidden=[38, 76], **_VAE8), _digits(**_VAE8),
    "convolutional, 38 and 76 channels", "fully connected, 256 and 128",
    metric="parameter count; validation reconstruction at the end and validation negative ELBO after 5 epochs",
    curve="val_recon")
_add(
    "depth-activation", "Depth and activation: vanishing gradients",
    "Four hidden layers of 256 (no batch norm) with ReLU: the gradient reaching the encoder's first layer is "
    "over 100 times smaller than at the decoder's last (about 50 times with two layers), and the loss curve lies "
    "flat at the average digit's for all 20 epochs, its code carrying nothing: that flat line is what vanishing "
    "gradients look like. The same network with GELU starts with gradients as small, yet leaves the plateau "
    "after about 10 epochs and ends over half a nat better: where ReLU passes no gradient at all for negative "
    "inputs, GELU passes a little.",
    "The validation −ELBO: ReLU's flat line against GELU's drop; then the KL curve (ReLU's stays at 0).",
    _digits(activation="gelu", **_DEEP), _digits(**_DEEP), "4 × 256, GELU", "4 × 256, ReLU",
    metric="gradient norm of the first layer over the last at initialisation; the spread of the validation negative "
           "ELBO over epochs; validation KL and negative ELBO")
_add(
    "optimizers", "Optimisers: Adam, RMSprop and SGD",
    "At their usual learning rates, Adam (0.002, the app's default) and RMSprop (0.001), which scale each "
    "weight's step by its recent gradients, leave the average digit's plateau sooner than SGD with momentum "
    "(0.01): SGD needs at least two more epochs to get below 26.5 nats. Adam ends best, by over 0.2 nats.",
    "The validation −ELBO: SGD's flat start, and where each run ends.",
    _digits(**_VAE8), _digits(**_SGD, **_VAE8), "Adam, lr 0.002", "SGD + momentum, lr 0.01",
    metric="first epoch with a validation negative ELBO below 26.5 nats; validation negative ELBO",
    extra=(_digits(optimizer="rmsprop", lr=0.001, momentum=0.0, **_VAE8),), extra_labels=("RMSprop, lr 0.001",))
_add(
    "l1-vs-l2", "L1 against L2 on the weights",
    "An L1 penalty (10⁻⁴ × the sum of |w|) pushes weights all the way to zero: over 40% of them end below 0.001, "
    "against under 3% with L2 weight decay (AdamW, 0.1) or with no penalty. L2 shrinks every weight a little "
    "instead (their mean size by over a tenth). The ELBO barely notices either (under 0.3 nats).",
    "The weight histograms (L1's pile of near-zero weights at the left), then the −ELBO curves (almost the same).",
    _digits(l1=1e-4, **_VAE8), _digits(optimizer="adamw", weight_decay=0.1, **_VAE8), "L1, 0.0001",
    "L2, weight decay 0.1", metric="share of weights below 0.001 in size; mean weight size; validation negative "
                                   "ELBO", extra=(_digits(**_VAE8),), extra_labels=("no penalty",), view="weights")
_add(
    "latent-size", "A sweep of the latent size",
    "With a sharp Gaussian decoder (MSE, σ = 0.1) more latent dimensions buy more rate: the validation KL rises "
    "with each step from 2 to 8 to 32 dimensions (by over a nat each). Reconstruction improves enormously from "
    "2 to 8 (by over 30 nats), then not at all: in 20 epochs 32 dimensions reconstruct no better than 8, and "
    "at most 20 of them carry information. The samples from the prior change too: over 90% of the 2-D code's "
    "come as close to a training digit as nine in ten unseen digits do, under 85% of the others'.",
    "The rate–distortion plane, one point per run (right means more KL, lower means better reconstructions); "
    "then the samples from the prior.",
    _digits(latent_dim=32, **_GAUSS), _digits(latent_dim=2, **_GAUSS), "latent 32", "latent 2",
    metric="validation KL and reconstruction; informative latent dimensions; share of decoded prior samples within "
           "the nearest-training-image distance of 90% of validation digits",
    extra=(_digits(latent_dim=8, **_GAUSS),), extra_labels=("latent 8",), curve="val_kl", samples=True,
    view="rate-distortion")

# The shapes' recommended model (vae_core/data/recommended.py), with β warmed up so β = 4 keeps a code.
_SHAPES = dict(dataset="shapes", architecture="conv", hidden=[16, 32, 64], latent_dim=10, batch_size=64, epochs=4,
               beta_schedule="warmup", beta_warmup_epochs=2.0)
_add(
    "shapes-beta", "β and disentanglement on the shapes",
    "β-VAE's promise is that a larger β makes each known factor of the shapes (shape, scale, rotation, x, y) "
    "live in a latent dimension of its own. At this size and budget it does not: β = 4 squeezes the KL to under "
    "two thirds of β = 1's, but the mutual information gap (MIG: 1 when every factor has a dimension to "
    "itself, 0 when none does) stays below 0.15 for both, and β = 4's is not better than β = 1's by more than "
    "0.05: each factor stays spread over several dimensions. An honest null result: on a CPU budget, a larger β "
    "alone does not disentangle.",
    "The MIG column of Compare's table (low for both), and the KL curve (β = 4's lower); on Explore, each "
    "latent dimension's traversal moves several factors at once.",
    _SHAPES | dict(beta=4.0), _SHAPES | dict(beta=1.0), "β = 4", "β = 1",
    metric="mutual information gap of the validation codes against the shapes' factors; validation KL",
    curve="val_kl")


def lesson(key: str) -> Lesson:
    for item in LESSONS:
        if item.key == key:
            return item
    if key in UNAVAILABLE:
        raise KeyError(UNAVAILABLE[key])
    raise KeyError(f"no lesson named {key!r}")
