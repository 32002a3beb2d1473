"""Which student owns which background work.

`SessionRegistry` maps a session id (a student's owner id: all their tabs share it) to its one piece of work (a `Job` or a `JobSeries`):
starting new work stops the session's old work, and a reaper thread stops the work of sessions
not seen (`touch`) for a grace period whose browser is no longer connected, so a closed tab does
not keep a training slot.
Plain Python: the UI calls it, the training threads never do.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Protocol

from vae_core.jobs.job import BY_THE_USER

GRACE_ENV = "VAE_LAB_SESSION_GRACE"
DEFAULT_GRACE = 120.0


class Work(Protocol):
    """A Job, or a JobSeries."""
    def start(self): ...
    def stop(self, why: str = BY_THE_USER) -> None: ...
    def join(self, timeout: float | None = None) -> bool: ...
    @property
    def alive(self) -> bool: ...


def grace_from_env() -> float:
    """Seconds a silent session keeps its work: $VAE_LAB_SESSION_GRACE, default 120."""
    raw = os.environ.get(GRACE_ENV, "").strip()
    if not raw:
        return DEFAULT_GRACE
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {GRACE_ENV} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"environment variable {GRACE_ENV} must be positive, got {value}")
    return value


class SessionRegistry:
    """Thread-safe map: session id -> (its work, when it was last seen)."""

    def __init__(self, grace: float | None = None, clock: Callable[[], float] = time.monotonic,
                 reaper: bool = True):
        """`grace` defaults to $VAE_LAB_SESSION_GRACE; `reaper` starts the thread that calls `reap` regularly."""
        self.grace = grace_from_env() if grace is None else grace
        self._clock = clock
        self._lock = threading.Lock()
        self._work: dict[str, Work] = {}
        self._seen: dict[str, float] = {}
        self._connected: dict[str, dict[str, Callable[[], bool]]] = {}  # session -> tab -> probe
        if reaper:
            threading.Thread(target=self._reap_forever, name="vae-lab-reaper", daemon=True).start()

    def touch(self, session_id: str, connected: Callable[[], bool] | None = None, tab: str = "") -> None:
        """The session is alive (call on every rerun, the polling fragments' too). `connected`, when
        given, tells whether the browser tab `tab` of the session is still connected: a session with a
        connected tab is kept however long the busy server leaves its pages unrun. A student's session
        may have several tabs."""
        with self._lock:
            self._seen[session_id] = self._clock()
            if connected is not None:
                self._connected.setdefault(session_id, {})[tab] = connected

    def start(self, session_id: str, begin: Callable[[], Work]) -> Work:
        """Stop the session's old work (freeing its training slot first), then `begin()` the new and keep it."""
        with self._lock:
            old = self._work.pop(session_id, None)
            self._seen[session_id] = self._clock()
        if old is not None:
            old.stop("Stopped: a new run was started in its place.")
        work = begin()
        with self._lock:
            self._work[session_id] = work
        return work

    def get(self, session_id: str) -> Work | None:
        with self._lock:
            return self._work.get(session_id)

    def works(self) -> list[Work]:
        """Every session's work, as a list."""
        with self._lock:
            return list(self._work.values())

    def live(self) -> int:
        """How many sessions have work that is queued or running."""
        return sum(work.alive for work in self.works())

    def clear(self, session_id: str) -> None:
        """Stop and forget the session's work."""
        with self._lock:
            old = self._work.pop(session_id, None)
        if old is not None:
            old.stop()

    def reap(self) -> list[str]:
        """Stop and forget the work of sessions unseen for longer than the grace period with no tab still
        connected; their ids. A session with a connected tab counts as seen now."""
        now = self._clock()
        with self._lock:
            silent = {s: dict(self._connected.get(s, {})) for s, seen in self._seen.items() if now - seen > self.grace}
        still_there = set()
        for s, probes in silent.items():
            open_tabs = {tab for tab, connected in probes.items() if connected()}
            if open_tabs:
                still_there.add(s)
            with self._lock:
                for tab in set(probes) - open_tabs:
                    self._connected.get(s, {}).pop(tab, None)
        with self._lock:
            for s in still_there:
                self._seen[s] = now
            gone = [s for s in silent if s not in still_there and now - self._seen.get(s, now) > self.grace]
            stale = [self._work.pop(s) for s in gone if s in self._work]
            for s in gone:
                del self._seen[s]
                self._connected.pop(s, None)
        for work in stale:
            work.stop("Stopped: its browser tab was closed.")
        return gone

    def _reap_forever(self) -> None:
        interval = min(max(self.grace / 4, 0.05), 15.0)
        while True:
            time.sleep(interval)
            self.reap()


_registry: SessionRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> SessionRegistry:
    """The registry shared by every session of this process."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = SessionRegistry()
        return _registry


