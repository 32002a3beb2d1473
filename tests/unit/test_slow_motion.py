"""Slow motion for a presenter: a job's pace makes its hold wait before every step, without a wall clock."""

import pytest

from vae_core.config import TrainConfig
from vae_core.jobs.job import PACE_MAX, TrainingJob, pace_value
from vae_core.jobs.process import RemoteJob
from vae_core.jobs.slots import SlotPool

SHORT = TrainConfig(epochs=1, batch_size=256, hidden=[32])


class Waits:
    """Stands in for the job's nudge event: records each wait's timeout and returns at once."""

    def __init__(self, job=None, pace_after=None):
        self.timeouts, self.job, self.pace_after = [], job, pace_after

    def clear(self):
        pass

    def set(self):
        pass

    def wait(self, timeout):
        self.timeouts.append(timeout)
        if self.pace_after is not None and len(self.timeouts) == self.pace_after[0]:
            self.job.pace = self.pace_after[1]  # as set_pace would, from another thread
        return False


def _run(job: TrainingJob) -> TrainingJob:
    job.run()  # on this thread: the test sees every hold
    return job


def test_a_pace_waits_that_long_before_every_step(digits):
    job = TrainingJob(SHORT, digits, pool=SlotPool(1))
    job.set_pace(0.25)
    job._nudge = waits = Waits()
    _run(job)
    assert job.trainer.step == job.trainer.total_steps > 0
    assert waits.timeouts == [0.25] * job.trainer.total_steps


def test_full_speed_never_waits_and_a_new_pace_applies_from_the_next_step(digits):
    job = TrainingJob(SHORT, digits, pool=SlotPool(1))
    job._nudge = waits = Waits()
    _run(job)
    assert waits.timeouts == []
    job = TrainingJob(SHORT, digits, pool=SlotPool(1))
    job.set_pace(0.5)
    job._nudge = waits = Waits(job, pace_after=(3, 0.0))  # back to full speed after three steps
    _run(job)
    assert waits.timeouts == [0.5, 0.5, 0.5]


def test_a_stop_ends_a_slow_motion_wait_at_once(digits):
    """The real event: a Stop sets it, so a job waiting a long pace ends without waiting it out."""
    job = TrainingJob(SHORT, digits, pool=SlotPool(1))
    job.set_pace(PACE_MAX)
    woken = []
    wait = job._nudge.wait

    def stop_while_waiting(timeout):
        job.stop()  # from the page, as the job waits
        woken.append(wait(timeout))  # True: the event was set, the wait did not time out
        return woken[-1]
    job._nudge.wait = stop_while_waiting
    _run(job)
    assert woken == [True] and job.status.ended and job.trainer.step == 0


@pytest.mark.parametrize("seconds, expected", [(0, 0.0), (0.1, 0.1), (-3, 0.0), (60, PACE_MAX)])
def test_a_pace_is_kept_within_its_range(seconds, expected):
    assert pace_value(seconds) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", None, True])
def test_a_pace_that_is_no_number_is_refused_before_it_reaches_a_worker(bad):
    sent = []
    remote = RemoteJob.__new__(RemoteJob)
    remote._tell = lambda *message: sent.append(message)
    with pytest.raises(ValueError):
        remote.set_pace(bad)
    remote.set_pace(0.2)
    assert sent == [("set_pace", 0.2)]
