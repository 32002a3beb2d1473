"""The one way tests wait for something that happens on another thread or process."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float = 20.0, every: float = 0.02) -> bool:
    """Poll `condition()` until it is true (True) or `timeout` seconds pass (False). The timeout is a
    ceiling for a busy machine, never a claim about speed: tests assert on the result, not the time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
