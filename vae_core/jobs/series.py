"""JobSeries: several configurations trained one after another (a β sweep, a lesson's pair)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from vae_core.config import TrainConfig
from vae_core.jobs.backends import Job
from vae_core.jobs.job import BY_THE_USER
from vae_core.jobs.state import JobView
from vae_core.train import Status


@dataclass(frozen=True)
class SeriesView:
    status: Status  # running, finished, stopped or failed (the series itself could not go on)
    done: int  # runs that have ended
    total: int
    labels: list[str]
    current: JobView | None
    run_dirs: list[str]  # saved runs so far, in order
    messages: list[str]  # each started run's final message ("" while it runs)
    statuses: list[Status]  # each started run's status

    @property
    def progress(self) -> float:
        running = self.current.progress if self.current and not self.current.status.ended else 0.0
        return min(1.0, (self.done + running) / self.total)


class JobSeries:
    """Runs `start_job(config, label)` for each configuration in turn, on a background thread of its own."""

    def __init__(self, configs: list[TrainConfig], labels: list[str], start_job: Callable[[TrainConfig, str], Job],
                 poll: float = 0.1):
        if len(configs) != len(labels) or not configs:
            raise ValueError("a series needs one label per configuration, and at least one configuration")
        self.configs, self.labels = list(configs), list(labels)
        self.start_job = start_job
        self.poll = poll
        self.jobs: list[Job] = []
        self.status = Status.RUNNING
        self._stop = threading.Event()
        self._why = BY_THE_USER
        self._thread = threading.Thread(target=self._run, name="vae-lab-series", daemon=True)

    def start(self) -> JobSeries:
        self._thread.start()
        return self

    def stop(self, why: str = BY_THE_USER) -> None:
        """Stop the running job (`why`: its message) and skip the rest."""
        self._why = why
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def view(self) -> SeriesView:
        """Each run's state, and the history of the current one only (the panel polls this every second)."""
        jobs = list(self.jobs)
        states = [job.state() for job in jobs]
        return SeriesView(self.status, sum(state.status.ended for state in states), len(self.configs),
                          self.labels, jobs[-1].view() if jobs else None,
                          [state.run_dir for state in states if state.run_dir],
                          [state.message for state in states], [state.status for state in states])

    def _run(self) -> None:
        try:
            for config, label in zip(self.configs, self.labels):
                if self._stop.is_set():
                    break
                job = self.start_job(config, label)
                self.jobs.append(job)
                while not job.join(self.poll):
                    if self._stop.is_set():
                        job.stop(self._why)
            self.status = Status.STOPPED if self._stop.is_set() else Status.FINISHED
        except Exception:  # the thread must never die silently; each job reports its own failure
            self.status = Status.FAILED
            raise
