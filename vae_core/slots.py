"""A process-wide limit on training jobs running at once; the others wait in a first-come queue."""

from __future__ import annotations

import threading

from vae_core import limits


class SlotPool:
    def __init__(self, limit: int):
        self.limit = limit
        self._cond = threading.Condition()
        self._running: set[object] = set()
        self._queue: list[object] = []

    def acquire(self, owner: object, cancelled: threading.Event) -> bool:
        """Wait for a free slot in queue order; False if `cancelled` is set first."""
        with self._cond:
            self._queue.append(owner)
            try:
                while not (len(self._running) < self.limit and self._queue[0] is owner):
                    if cancelled.is_set():
                        return False
                    self._cond.wait(0.1)
                self._running.add(owner)
                return True
            finally:
                self._queue.remove(owner)
                self._cond.notify_all()

    def release(self, owner: object) -> None:
        with self._cond:
            self._running.discard(owner)
            self._cond.notify_all()

    def position(self, owner: object) -> int:
        """1 for the next job to start, 2 for the one after...; 0 when not waiting."""
        with self._cond:
            return self._queue.index(owner) + 1 if owner in self._queue else 0

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._running)


_default: SlotPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SlotPool:
    """The pool shared by every job in this process, sized by VAE_LAB_MAX_JOBS."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SlotPool(limits.current().max_jobs)
        return _default
