"""A process-wide limit on training jobs running at once; the others wait in a first-come queue."""

from __future__ import annotations

import threading

from vae_core import limits


class SlotPool:
    def __init__(self, limit: int):
        self.limit = limit
        self._cond = threading.Condition()  # re-entrant: acquire calls enqueue
        self._running: set[object] = set()
        self._queue: list[object] = []

    def enqueue(self, owner: object) -> None:
        """Take a place in the queue now (acquire keeps it), so that owners queue in the order they start."""
        with self._cond:
            if owner not in self._queue:
                self._queue.append(owner)

    def leave(self, owner: object) -> None:
        """Give up a place taken with enqueue, without waiting for a slot."""
        with self._cond:
            if owner in self._queue:
                self._queue.remove(owner)
                self._cond.notify_all()

    def acquire(self, owner: object, cancelled: threading.Event) -> bool:
        """Wait for a free slot in queue order; False if `cancelled` is set first."""
        with self._cond:
            self.enqueue(owner)
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
        """1 for the next job to start once a slot frees up, 2 for the one after...; 0 when not waiting for
        one (a slot is free for it, it has one, or it is not queued)."""
        with self._cond:
            if owner not in self._queue:
                return 0
            return max(0, self._queue.index(owner) + 1 - (self.limit - len(self._running)))

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
