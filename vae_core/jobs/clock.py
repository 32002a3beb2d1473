"""A job's clock: elapsed time since Start, and an ETA from the pace of training alone."""

from __future__ import annotations

import time


class JobClock:
    """Elapsed time runs from Start to the end. The ETA's pace runs from the end of the first step and stands
    still while the job is held (paused, or waiting for a slot again): the queue, the data loading and
    the first step's warm-up are left out."""

    def __init__(self, now=time.perf_counter):
        self._now = now
        self.started: float | None = None
        self.ended: float | None = None
        # (seconds held before, start of the hold going on or None), replaced whole so that another thread
        # never reads half an update
        self._held: tuple[float, float | None] = (0.0, None)
        self._pace_from: tuple[float, int] | None = None  # (active time, step) after the first step

    def start(self) -> None:
        if self.started is None:
            self.started = self._now()

    def end(self) -> None:
        self.ended = self._now()

    def hold(self) -> None:
        self._held = (self._held[0], self._now())

    def release(self) -> None:
        held, since = self._held
        if since is not None:
            self._held = (held + self._now() - since, None)

    def stepped(self, step: int) -> None:
        """A training step ended: the first one starts the pace."""
        if self._pace_from is None:
            self._pace_from = (self._active(), step)

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or self._now()) - self.started

    def eta(self, step: int, total: int) -> float | None:
        """Seconds left for the steps to `total`, at the pace since the first step; None before a pace."""
        if self._pace_from is None or self.ended is not None or step <= self._pace_from[1]:
            return None
        then, first = self._pace_from
        return (self._active() - then) / (step - first) * (total - step)

    def _active(self) -> float:
        """The time less the seconds held: it stands still while the job is held."""
        held, since = self._held
        return (self._now() if since is None else since) - held
