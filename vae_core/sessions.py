"""Which browser session owns which background work, and work that trains several runs in a row.

`SessionRegistry` maps a session id to its one piece of work (a `TrainingJob` or a `JobSeries`):
starting new work stops the session's old work, and a reaper thread stops the work of sessions
not seen (`touch`) for a grace period whose browser is no longer connected, so a closed tab does
not keep a training slot.
Plain Python: the UI calls it, the training threads never do.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from vae_core.config import TrainConfig
from vae_core.job import BY_THE_USER, DONE, FAILED, FINISHED, RUNNING, STOPPED, JobView, TrainingJob

GRACE_ENV = "VAE_LAB_SESSION_GRACE"
DEFAULT_GRACE = 120.0
REDRAW_LEVELS = (0.6, 1.0, 2.0, 3.0, 5.0)  # seconds between redraws of a live view, fastest first
REDRAW_COST = 0.05  # CPU seconds of one live view's redraw until redraws in this process are measured (measured
# on the 2-core reference machine: about 0.01 s, 0.05 s with the page rerun at a run's end; bench/README.md)
REDRAW_SHARE = 0.75  # the share of the server process all redraws together may take


class Work(Protocol):
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
        self._connected: dict[str, Callable[[], bool]] = {}
        if reaper:
            threading.Thread(target=self._reap_forever, name="vae-lab-reaper", daemon=True).start()

    def touch(self, session_id: str, connected: Callable[[], bool] | None = None) -> None:
        """The session is alive (call on every rerun and every polling fragment run). `connected`, when
        given, tells whether the session's browser is still connected: a connected session is kept
        however long the busy server leaves its page unrun."""
        with self._lock:
            self._seen[session_id] = self._clock()
            if connected is not None:
                self._connected[session_id] = connected

    def start(self, session_id: str, work: Work) -> Work:
        """Stop the session's old work, then start and keep `work`."""
        with self._lock:
            old = self._work.get(session_id)
            self._work[session_id] = work
            self._seen[session_id] = self._clock()
        if old is not None:
            old.stop("Stopped: a new run was started in its place.")
        work.start()
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
        """Stop and forget the work of sessions unseen for longer than the grace period and not connected;
        their ids. A connected session counts as seen now."""
        now = self._clock()
        with self._lock:
            silent = {s: self._connected.get(s) for s, seen in self._seen.items() if now - seen > self.grace}
        still_there = {s for s, connected in silent.items() if connected is not None and connected()}
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
    makes them they queue up, and browsers fall behind: under load, Streamlit's frontend then broke in
    some tabs ("Bad delta path index", tests/reliability/test_load_e2e.py)."""
    needed = (redraw_cost.seconds if cost is None else cost) * live / REDRAW_SHARE
    return next((level for level in REDRAW_LEVELS if level >= needed), REDRAW_LEVELS[-1])


def registry() -> SessionRegistry:
    """The registry shared by every session of this process."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = SessionRegistry()
        return _registry


@dataclass(frozen=True)
class SeriesView:
    status: str  # running, finished, stopped or failed (the series itself could not go on)
    done: int  # runs that have ended
    total: int
    labels: list[str]
    current: JobView | None
    run_dirs: list[str]  # saved runs so far, in order
    messages: list[str]  # each started run's final message ("" while it runs)

    @property
    def progress(self) -> float:
        running = self.current.progress if self.current and self.current.status not in DONE else 0.0
        return min(1.0, (self.done + running) / self.total)


class JobSeries:
    """Several configurations trained one after another on one background thread (a β sweep, a lesson pair)."""

    def __init__(self, configs: list[TrainConfig], labels: list[str], *, runs_dir=None, data_dir=None,
                 pool=None, poll: float = 0.1, new_job: Callable[[TrainConfig], Work] | None = None):
        """Each run is `new_job(config)`, by default a TrainingJob with the runs folder, data folder and
        slot pool given here (the app passes its own, which trains in its trainer process)."""
        if len(configs) != len(labels) or not configs:
            raise ValueError("a series needs one label per configuration, and at least one configuration")
        self.configs, self.labels = list(configs), list(labels)
        self.poll = poll
        self.new_job = new_job or (lambda config: TrainingJob(config, runs_dir=runs_dir, data_dir=data_dir,
                                                              pool=pool))
        self.jobs: list = []
        self.status = RUNNING
        self._stop = threading.Event()
        self._stop_message = BY_THE_USER
        self._thread = threading.Thread(target=self._run, name="vae-lab-series", daemon=True)

    def start(self) -> "JobSeries":
        self._thread.start()
        return self

    def stop(self, why: str = BY_THE_USER) -> None:
        """Stop the running job (`why`: its message) and skip the rest."""
        self._stop_message = why
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def view(self) -> SeriesView:
        jobs = list(self.jobs)
        current = jobs[-1].view() if jobs else None
        done = sum(job.status in DONE for job in jobs)
        return SeriesView(self.status, done, len(self.configs), self.labels, current,
                          [str(j.run_dir) for j in jobs if j.run_dir is not None],
                          [j.message for j in jobs])

    def _run(self) -> None:
        try:
            for config in self.configs:
                if self._stop.is_set():
                    break
                job = self.new_job(config)
                self.jobs.append(job)
                job.start()
                while not job.join(self.poll):
                    if self._stop.is_set():
                        job.stop(self._stop_message)
            self.status = STOPPED if self._stop.is_set() else FINISHED
        except Exception:  # the thread must never die silently; each job reports its own failure
            self.status = FAILED
            raise
