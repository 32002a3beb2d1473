"""Posterior collapse as the lessons call it and as the Train page warns of it: one definition
(vae_core.maths.collapse), checked both ways on the lessons' own runs, two seeds each.

Every run of a lesson that names collapsed runs (`Lesson.collapsed`) is judged after each epoch, as the live
view judges its snapshot: the collapsed ones must draw the warning at every epoch it may speak at
(`collapse.may_judge`), the others at none. The runs are the lesson tests' own (shared through conftest's
cache), so with the other lesson tests this costs nothing more.
"""

from __future__ import annotations

import pytest

from vae_core.maths import collapse
from vae_core.views.lessons import LESSONS, lesson

CALLING_COLLAPSE = [item.key for item in LESSONS if item.collapsed]


def test_the_lessons_that_speak_of_collapse_name_their_collapsed_runs():
    assert {"beta", "warmup", "bce-vs-mse", "cyclical", "free-bits", "batch-norm"} <= set(CALLING_COLLAPSE)
    for key in CALLING_COLLAPSE:
        item = lesson(key)
        assert set(item.collapsed) <= {label for label, _ in item.runs}, key
        assert "collapse" in item.claim, key


@pytest.mark.parametrize("key", CALLING_COLLAPSE)
def test_collapsed_runs_draw_the_warning_and_healthy_ones_do_not(runs, key):
    item = lesson(key)
    for label, config in item.runs:
        for run in runs.seeds(config):
            judged = [(epoch, verdict) for epoch, verdict in enumerate(run.verdicts, 1)
                      if collapse.may_judge(config, epoch, run.status.completed and epoch == len(run.verdicts))]
            shown = ", ".join(f"{e}: {v.kl:.2f} nats / {v.informative}" for e, v in judged)
            print(f"[collapse] {key} / {label} (seed {run.config.seed}) from epoch {judged[0][0]}: {shown}")
            expected = label in item.collapsed
            assert judged and judged[-1][0] == len(run.verdicts)  # the end of the run is judged
            wrong = [e for e, v in judged if v.collapsed != expected]
            assert not wrong, (label, run.config.seed, "collapsed" if expected else "healthy", wrong)
