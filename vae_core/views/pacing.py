"""How often a page redraws a live run: slower as more sessions watch live work, so that the redraws of
one server process never take more of it than REDRAW_SHARE."""

from __future__ import annotations

import threading

REDRAW_LEVELS = (0.6, 1.0, 2.0, 3.0, 5.0)  # seconds between redraws of a live view, fastest first
REDRAW_COST = 0.05  # CPU seconds of one redraw until this process has measured some (bench/README.md, "Redraws")
REDRAW_SHARE = 0.75  # the share of the server process all redraws together may take


class RedrawCost:
    """What one live view's redraw costs in CPU seconds: a running mean of the redraws measured (`add`)."""

    def __init__(self, initial: float = REDRAW_COST, weight: float = 0.1):
        self.seconds, self._weight, self._lock = initial, weight, threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += self._weight * (seconds - self.seconds)


redraw_cost = RedrawCost()  # this process's


def redraw_seconds(live: int, cost: float | None = None) -> float:
    """How often each of `live` sessions watching live work should redraw it, when a redraw costs `cost`
    CPU seconds (by default as measured in this process). Redraws share one Python process: together they
    may take REDRAW_SHARE of it, so the interval grows with the sessions and the cost, in steps (a change
    of step costs each session a whole-page rerun) up to 5 s. When redraws come faster than the server
    makes them they queue up and browsers fall behind (bench/README.md, "Redraws")."""
    needed = (redraw_cost.seconds if cost is None else cost) * live / REDRAW_SHARE
    return next((level for level in REDRAW_LEVELS if level >= needed), REDRAW_LEVELS[-1])
