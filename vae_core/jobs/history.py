"""A run's bounded metric history: per-step points thinned to a fixed budget, and per-epoch rows."""

from __future__ import annotations

import bisect
import threading


class History:
    """Thread-safe: the training thread adds, others read copies. Step rows are kept at most `max_points`
    long by doubling the stride and dropping every other point."""

    def __init__(self, max_points: int = 2000):
        self.max_points = max_points
        self.stride = 1
        self._lock = threading.Lock()
        self._steps: list[dict[str, float]] = []
        self._epochs: list[dict[str, float]] = []

    def add_step(self, row: dict[str, float]) -> None:
        with self._lock:
            if row["step"] % self.stride:
                return
            self._steps.append(row)
            if len(self._steps) > self.max_points:
                self.stride *= 2
                self._steps = [r for r in self._steps if r["step"] % self.stride == 0]

    def add_epoch(self, row: dict[str, float]) -> None:
        with self._lock:
            self._epochs.append(row)

    def steps(self) -> list[dict[str, float]]:
        with self._lock:
            return list(self._steps)

    def epochs(self) -> list[dict[str, float]]:
        with self._lock:
            return list(self._epochs)

    def steps_after(self, step: int) -> list[dict[str, float]]:
        """The kept step rows after `step` (without copying the others)."""
        with self._lock:
            return self._steps[bisect.bisect_right(self._steps, step, key=lambda r: r["step"]):]

    def epochs_from(self, index: int) -> list[dict[str, float]]:
        """The epoch rows from the `index`-th on."""
        with self._lock:
            return self._epochs[index:]
