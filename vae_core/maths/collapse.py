"""Posterior collapse, defined once: the KL bars, the active-unit counts, the Train page's warning and the
lessons' claims all read it here.

A latent unit is *informative* when it carries more than 0.1 nats of KL on average over the inputs and its
posterior mean varies across them (Var_x E[z|x] > 0.01, Burda et al.'s active units). Both, because each
alone is fooled on these small models: units whose means wobble by a little over 0.01 carry almost nothing
(a collapsed β = 2 run has 15 of 16 "active"), and a unit can pay KL for a narrow σ around the same mean
for every input (capacity with γ = 100), which tells the inputs apart no better than the prior does.

A code is *collapsed* when it carries less than one bit (ln 2 nats) of KL, the most any code can tell about
its input being its KL, or when no unit is informative. Measured on the lessons' runs (tests/lessons): the
runs they call collapsed end at 0.32 to 0.53 nats, the healthy ones at 0.88 nats or more.

The verdict waits for training to settle (`may_judge`): early epochs of a healthy run, and a β schedule's
low phases, look like collapse (a plain run is below one bit until epoch 5 to 7 of 30).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NATS_PER_UNIT = 0.1  # an informative unit carries more KL than this
MEAN_VARIANCE = 0.01  # Burda et al.'s threshold on Var_x E[z|x]
ONE_BIT = math.log(2)  # a code carrying less KL than this is collapsed
FIRST_EPOCH = 3  # the earliest epoch a run is judged at
FORMING_EPOCHS = 8  # a plain run's code carries one bit from epoch 5 to 7 on (above): before, say so


def _variance(mu) -> np.ndarray:
    mu = np.asarray(mu, dtype=np.float64)
    return mu.var(0, ddof=1) if len(mu) > 1 else np.zeros(mu.shape[-1])


def active_units(mu) -> int:
    """Latent dimensions whose posterior mean varies across inputs: Var_x(E[z|x]) > 0.01 (Burda et al.)."""
    return int((_variance(mu) > MEAN_VARIANCE).sum())


def informative(kl_per_dim, mu) -> np.ndarray:
    """Which units are informative (a boolean per latent dimension), from their mean KL and the posterior
    means of the same inputs."""
    return (np.asarray(kl_per_dim, dtype=np.float64) > NATS_PER_UNIT) & (_variance(mu) > MEAN_VARIANCE)


@dataclass(frozen=True)
class Verdict:
    collapsed: bool
    informative: int  # units
    units: int  # the latent size
    kl: float  # nats, all units together
    message: str  # what the Train page says about a collapsed code ("" otherwise)


def judge(kl_per_dim, mu) -> Verdict:
    """Whether a code is collapsed, from each unit's mean KL over some inputs and their posterior means."""
    kl_per_dim = np.asarray(kl_per_dim, dtype=np.float64)
    count, units, kl = int(informative(kl_per_dim, mu).sum()), len(kl_per_dim), float(kl_per_dim.sum())
    collapsed = kl < ONE_BIT or count == 0
    return Verdict(collapsed, count, units, kl, _message(count, units, kl) if collapsed else "")


def _message(count: int, units: int, kl: float) -> str:
    if count == 0:
        state = (f"no latent unit of {units} is informative (the code carries {kl:.3f} nats in all), so the "
                 "decoder ignores z and every input gets the same code.")
    else:
        which = "1 latent unit" if count == 1 else f"{count} latent units"
        verb = "is" if count == 1 else "are"
        state = (f"the code carries {kl:.2f} nats, less than one bit (ln 2 ≈ 0.69 nats): {which} of {units} "
                 f"{verb} informative, so the decoder mostly ignores z and most inputs get nearly the same code.")
    return (f"**Posterior collapse:** {state} Remedies: a lower β, a β warm-up (β schedule → warmup), free bits, "
            "the capacity objective, or a weaker decoder.")


def settled_epoch(config) -> float:
    """The epoch from which the objective stops moving: after a β warm-up, a capacity ramp, or the rise of
    a cyclical β's last cycle (its low phases collapse the code on purpose; the next rise revives it)."""
    if config.capacity:
        return config.capacity_ramp_epochs
    if config.beta_schedule == "warmup":
        return config.beta_warmup_epochs
    if config.beta_schedule == "cyclical":
        return config.epochs * (1 - (1 - config.beta_cycle_ratio) / config.beta_cycles)
    return 0.0


def may_judge(config, epochs_done: int, completed: bool) -> bool:
    """Whether a run has trained long enough to be judged: from epoch 3 and past its schedules (see
    `settled_epoch`), and from half the run unless it completed (early stopping ends it once it settles)."""
    if config.mode != "vae":
        return False
    start = max(FIRST_EPOCH, settled_epoch(config))
    return epochs_done >= (start if completed else max(start, config.epochs / 2))


def caveat(epochs_done: int) -> str:
    """What to add to the warning about a run that ended early: its code may not have formed yet."""
    if epochs_done >= FORMING_EPOCHS:
        return ""
    return (f" This run trained {epochs_done} epoch{'s' if epochs_done != 1 else ''} only: a healthy code often "
            "needs 5 to 7 to carry one bit, so train it longer before blaming β.")
