"""Where runs train, behind one interface: pages start jobs through `backend()` and never name the kind.

A `Job` is a handle on one run: steer it, read its `view()`, ask for its `model()`. It may train in
this process (`ThreadBackend`), in a worker process beside the server (`ProcessBackend`, the default), or
in a Ray actor on a cluster (`cluster.RayBackend`): nothing here assumes that a job shares memory with the
server. $VAE_LAB_TRAINER picks the kind.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from typing import Protocol

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.forks import Fork
from vae_core.jobs.job import BY_THE_USER, TrainingJob
from vae_core.jobs.state import JobView, RunState
from vae_core.maths.models import VAE

TRAINER_ENV = "VAE_LAB_TRAINER"
KINDS = ("process", "threads", "ray")
SWITCH_INTERVAL = 0.0005  # seconds a thread may keep the GIL while another waits, with runs on threads here
KEEP_ENDED = 200  # ended jobs a backend still finds by id (a reloaded page, a teacher's view)


class Job(Protocol):
    id: str
    owner: str
    config: TrainConfig

    def state(self) -> RunState: ...
    def view(self) -> JobView: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self, why: str = BY_THE_USER) -> None: ...
    def set_lr(self, lr: float) -> None: ...
    def set_beta(self, beta: float) -> None: ...
    def set_pace(self, seconds: float) -> None: ...
    def model(self) -> VAE | None: ...
    def join(self, timeout: float | None = None) -> bool: ...
    @property
    def alive(self) -> bool: ...
    @property
    def data(self) -> Dataset | None: ...


class Backend(Protocol):
    def start(self, config: TrainConfig, data: Dataset | None = None, *, owner: str = "", card: dict | None = None,
              runs_dir: str | os.PathLike | None = None, fork: Fork | None = None) -> Job:
        """Start a run of `config` (on `data`, an upload, else the built-in dataset it names) for `owner`,
        saved in `runs_dir` (default: the runs folder) with `card` (classroom.cards.new_card) as its card; going
        on from `fork` (forks.prepare: a saved run's state at an epoch) when given."""
    def find(self, job_id: str) -> Job | None: ...
    def jobs(self) -> list[Job]:
        """Every job still known, running or recently ended, oldest first (each with its owner)."""
    def close(self) -> None: ...


class JobBook:
    """What every backend shares: the jobs it knows, by id (all running ones and the last KEEP_ENDED that
    ended), for `find` and `jobs`."""

    def __init__(self):
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            ended = [key for key, known in self._jobs.items() if not known.alive and known is not job]
            for key in ended[:max(0, len(ended) - KEEP_ENDED)]:
                del self._jobs[key]
        return job

    def find(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())


class ThreadBackend(JobBook):
    """Runs train on threads of this process: the quickest to test, and to debug."""

    def __init__(self):
        super().__init__()
        # A thread waiting for the GIL waits up to the switch interval (5 ms by default) after every torch op
        # of a training thread: a server's script reruns waited that long (bench/README.md, "Classroom load").
        sys.setswitchinterval(SWITCH_INTERVAL)

    def start(self, config, data=None, *, owner="", card=None, runs_dir=None, fork=None) -> TrainingJob:
        runs_dir = runs.default_runs_dir() if runs_dir is None else runs_dir
        return self.add(TrainingJob(config, data, owner=owner, card=card, runs_dir=runs_dir, fork=fork)).start()

    def close(self) -> None:
        for job in self.jobs():
            job.stop("Stopped: the server shut down.")


_backends: dict[str, Backend] = {}
_lock = threading.Lock()


def kind() -> str:
    """$VAE_LAB_TRAINER: "process" (the default) or "threads"; ValueError for anything else."""
    raw = os.environ.get(TRAINER_ENV, "").strip() or "process"
    if raw not in KINDS:
        raise ValueError(f"environment variable {TRAINER_ENV} must be one of {', '.join(KINDS)}, got {raw!r}")
    return raw


def backend() -> Backend:
    """This process's backend of the kind $VAE_LAB_TRAINER names, made on first use."""
    name = kind()
    with _lock:
        if name not in _backends:
            if name == "process":
                from vae_core.jobs.process import ProcessBackend
                _backends[name] = ProcessBackend()
            elif name == "ray":  # imported only here: Ray is an optional part (README, "A Ray cluster")
                from vae_core.jobs.cluster import RayBackend
                _backends[name] = RayBackend()
            else:
                _backends[name] = ThreadBackend()
        return _backends[name]
