"""Which settings do nothing with the rest of a configuration, and why: the one rule table the Train page
hides controls by and the CLI warns from.

A rule names the settings it silences, when (a predicate on the settings: a TrainConfig, or anything with
its attributes, as the page's unvalidated widget values), and why. Its `caption` is what the page shows
where the first of them would be; a rule without one is silenced by the control just above it (the loss,
the schedule, a checkbox) and needs no words. A rule with `insist` is advice, not irrelevance: the setting
works but rarely makes sense, and the page shows it once the user insists.

A rule never silences a value that validation refuses (nesterov with Adam, an LR warm-up with one-cycle):
the control stays on screen so the error names something the user can see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vae_core.config import TrainConfig
from vae_core.data import DATASETS

# Data whose mirror image is not data: a flipped 2 is no digit.
MIRROR_SENSITIVE = ("digits", "mnist")

_BETA = ("beta", "beta_schedule", "beta_warmup_epochs", "beta_cycles", "beta_cycle_ratio")
_CAPACITY = ("capacity_gamma", "capacity_max", "capacity_ramp_epochs")


@dataclass(frozen=True)
class Rule:
    settings: tuple[str, ...]
    when: Callable[[TrainConfig], bool]
    reason: str  # completes "not used: …"
    caption: str | None = None  # the page's one line, where the first of `settings` would be
    insist: str | None = None  # the page's button that shows the settings anyway


RULES: tuple[Rule, ...] = (  # the first rule that applies to a setting gives its reason
    Rule(_BETA + ("capacity", "free_bits") + _CAPACITY, lambda c: c.mode == "ae",
         "an autoencoder has no KL term", "β, its schedule, capacity and free bits: not used: an autoencoder "
         "has no KL term."),
    Rule(_BETA + ("free_bits",), lambda c: c.capacity,
         "the capacity objective sets the KL weight (γ)",
         "β, its schedule and free bits: not used: the capacity objective sets the KL weight (γ)."),
    Rule(("beta_warmup_epochs",), lambda c: c.beta_schedule != "warmup", "the β schedule is not warmup"),
    Rule(("beta_cycles", "beta_cycle_ratio"), lambda c: c.beta_schedule != "cyclical",
         "the β schedule is not cyclical"),
    Rule(_CAPACITY, lambda c: not c.capacity, "the capacity objective is off"),
    Rule(("mse_sigma",), lambda c: c.recon_loss == "bce", "the bce loss has no σ"),
    Rule(("mixed_weight",), lambda c: c.recon_loss != "mixed", "only the mixed loss mixes"),
    Rule(("momentum",), lambda c: c.optimizer in ("adam", "adamw"),
         "Adam keeps its own momentum (β₁ = 0.9)", "Momentum: not used: Adam keeps its own (β₁ = 0.9)."),
    Rule(("nesterov",), lambda c: c.optimizer != "sgd" and not c.nesterov, "only sgd has Nesterov momentum"),
    Rule(("lr_warmup_epochs",), lambda c: c.lr_schedule == "onecycle" and c.lr_warmup_epochs == 0,
         "the one-cycle schedule has its own warm-up", "LR warm-up: the one-cycle schedule has its own."),
    Rule(("lr_step_epochs",), lambda c: c.lr_schedule != "step", "the LR schedule is not step"),
    Rule(("lr_gamma",), lambda c: c.lr_schedule not in ("step", "exponential", "plateau"),
         "the LR schedule does not decay by a factor"),
    Rule(("lr_patience",), lambda c: c.lr_schedule != "plateau", "the LR schedule is not plateau"),
    Rule(("patience", "min_delta"), lambda c: not c.early_stopping, "early stopping is off"),
    Rule(("augment",), lambda c: _kind(c.dataset) == "points" and not c.augment,
         "augmentation applies to images only", "Augmentation: for images only."),
    Rule(("aug_shift", "aug_rotation", "aug_zoom", "aug_flip"), lambda c: not c.augment, "augmentation is off"),
    Rule(("aug_flip",), lambda c: c.dataset in MIRROR_SENSITIVE,
         "a mirrored digit is no digit, so flips train on images the data never holds",
         "Horizontal flips: off for digits: a mirrored digit is no digit.", insist="Flip anyway"),
)


def _kind(dataset: str) -> str:
    info = DATASETS.get(dataset)
    return info.kind if info else "image"  # uploads are images


def silenced(settings) -> dict[str, Rule]:
    """Each setting that does nothing with the rest of `settings` (or is advised against) -> the rule why."""
    out: dict[str, Rule] = {}
    for rule in RULES:
        if rule.when(settings):
            for name in rule.settings:
                out.setdefault(name, rule)
    return out


def ignored(config: TrainConfig) -> dict[str, Rule]:
    """The settings moved from their defaults that do nothing here (or are advised against) -> the rule why:
    what the CLI warns about."""
    defaults = TrainConfig(dataset=config.dataset).to_dict()
    values = config.to_dict()
    return {name: rule for name, rule in silenced(config).items() if values[name] != defaults[name]}
