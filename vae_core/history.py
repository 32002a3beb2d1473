"""A run's bounded metric history: per-step points thinned to a fixed budget, and per-epoch rows."""

from __future__ import annotations

import threading


class StepSeries:
    """Per-step values, kept at most `max_points` long by doubling the stride and dropping every other point."""

    def __init__(self, max_points: int = 2000):
        self.max_points = max_points
        self.stride = 1
        self.rows: list[dict[str, float]] = []

    def add(self, row: dict[str, float]) -> None:
        if row["step"] % self.stride:
            return
        self.rows.append(row)
        if len(self.rows) > self.max_points:
            self.stride *= 2
            self.rows = [r for r in self.rows if r["step"] % self.stride == 0]


class History:
    """Thread-safe: the training thread adds, the UI reads copies."""

    def __init__(self, max_points: int = 2000):
        self._lock = threading.Lock()
        self._steps = StepSeries(max_points)
        self._epochs: list[dict[str, float]] = []

    def add_step(self, row: dict[str, float]) -> None:
        with self._lock:
            self._steps.add(row)

    def add_epoch(self, row: dict[str, float]) -> None:
        with self._lock:
            self._epochs.append(row)

    def steps(self) -> list[dict[str, float]]:
        with self._lock:
            return list(self._steps.rows)

    def epochs(self) -> list[dict[str, float]]:
        with self._lock:
            return list(self._epochs)
