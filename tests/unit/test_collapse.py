"""The one definition of posterior collapse (vae_core.maths.collapse), on codes whose answer is known."""

import numpy as np
import pytest

from vae_core.config import TrainConfig
from vae_core.maths import collapse

RNG = np.random.default_rng(0)


def _mu(spread: list[float], n: int = 500) -> np.ndarray:
    """Posterior means with the given standard deviation across inputs, per unit."""
    return RNG.standard_normal((n, len(spread))) * np.array(spread)


def test_a_unit_is_informative_only_with_kl_and_a_mean_that_varies():
    kl = np.array([0.5, 0.5, 0.05, 2.0])
    mu = _mu([1.0, 0.5, 1.0, 0.0])  # the last: the same mean for every input, KL paid for a narrow σ
    assert collapse.informative(kl, mu).tolist() == [True, True, False, False]
    assert collapse.active_units(mu) == 3  # Burda et al.: the mean varies, whatever the KL
    assert collapse.active_units(mu[:1]) == 0  # one input: nothing can vary


def test_the_verdict_is_collapse_below_one_bit_or_without_an_informative_unit():
    healthy = collapse.judge([0.6, 0.5, 0.001], _mu([1.0, 1.0, 0.01]))
    assert not healthy.collapsed and healthy.informative == 2 and healthy.units == 3 and healthy.message == ""
    # the warm-up lesson's constant β = 2 (seed 0): two weakly informative units, 0.53 nats in all
    weak = collapse.judge([0.19, 0.30] + [0.003] * 14, _mu([0.55, 0.66] + [0.1] * 14))
    assert weak.collapsed and weak.informative == 2 and weak.kl == pytest.approx(0.532)
    assert "2 latent units of 16 are informative" in weak.message and "less than one bit" in weak.message
    # lots of KL, but no unit tells inputs apart (capacity with a large γ)
    narrow = collapse.judge([2.0, 1.5], _mu([0.0, 0.05]))
    assert narrow.collapsed and narrow.informative == 0 and "every input gets the same code" in narrow.message


def test_the_message_is_grammatical_for_one_unit_and_names_the_remedies():
    one = collapse.judge([0.4, 0.001], _mu([0.7, 0.0]))
    assert one.collapsed and "1 latent unit of 2 is informative" in one.message
    none = collapse.judge(np.zeros(8), np.zeros((10, 8)))
    assert "no latent unit of 8 is informative" in none.message and "0.000 nats" in none.message
    for remedy in ("a lower β", "a β warm-up (β schedule → warmup)", "free bits", "the capacity objective",
                   "a weaker decoder"):
        assert remedy in one.message


def test_a_run_is_judged_from_epoch_3_half_way_and_once_its_schedules_settle():
    plain = TrainConfig(epochs=30)
    assert [collapse.may_judge(plain, e, False) for e in (2, 14, 15)] == [False, False, True]
    assert [collapse.may_judge(plain, e, True) for e in (2, 3)] == [False, True]  # completed: judged as it ended
    short = TrainConfig(epochs=4)
    assert not collapse.may_judge(short, 2, False) and collapse.may_judge(short, 3, False)
    warm = TrainConfig(epochs=30, beta_schedule="warmup", beta_warmup_epochs=20.0)
    assert not collapse.may_judge(warm, 19, False) and collapse.may_judge(warm, 20, False)
    cyclical = TrainConfig(epochs=30, beta_schedule="cyclical", beta_cycles=4, beta_cycle_ratio=0.5)
    assert collapse.settled_epoch(cyclical) == 26.25  # the last cycle's β is full again
    assert not collapse.may_judge(cyclical, 26, True) and collapse.may_judge(cyclical, 27, False)
    ramp = TrainConfig(epochs=30, capacity=True, capacity_ramp_epochs=25.0)
    assert not collapse.may_judge(ramp, 24, False) and collapse.may_judge(ramp, 25, False)
    assert not collapse.may_judge(TrainConfig(mode="ae"), 30, True)  # no KL term: nothing to collapse


def test_a_short_run_is_told_its_code_may_not_have_formed_yet():
    assert "trained 4 epochs only" in collapse.caveat(4) and "1 epoch only" in collapse.caveat(1)
    assert collapse.caveat(collapse.FORMING_EPOCHS) == ""
