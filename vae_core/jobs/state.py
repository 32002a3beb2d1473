"""A run's state as a page shows it: one record, built where the run trains and sent as it is.

`RunState` is the record. `JobView` adds the history and the latest snapshot for a page. Across a process
or machine, a `Progress` carries the record with only what is new since the last one (`ProgressFeed`
on the training side), and a `Mirror` on the server's side puts the view back together.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

import numpy as np

from vae_core.jobs.history import History
from vae_core.jobs.snapshots import Snapshot
from vae_core.train import Status


@dataclass(frozen=True)
class RunState:
    id: str
    owner: str  # who started the run (a browser session), "" for nobody in particular
    status: Status
    message: str
    epoch: int  # epochs done
    epochs: int
    step: int  # steps done
    total_steps: int  # 0 until the model exists
    elapsed: float  # seconds since Start
    eta: float | None  # seconds left, from the pace since the first step
    lr: float  # the learning rate at this step
    beta_now: float  # β at this step, as the β schedule shapes the setting
    queue_position: int  # 0 when not waiting for a training slot
    run_dir: str | None = None
    best_epoch: int | None = None
    live_changes: tuple[dict, ...] = ()  # {"step": …, "lr" and/or "beta": …} per live change applied
    paused: bool = False  # asked to pause: it holds before its next step (or, queued, once it has a slot)
    score: dict | None = None  # the final score on the test split, once the run has ended (maths/score.py)
    device: str = ""  # where it trains, in words ("the CPU": devices.describe), once its model exists
    pace: float = 0.0  # slow motion: seconds it waits before each step (presenter mode), 0 at full speed

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def same_but_time(self, other: RunState | None) -> bool:
        """Equal but for the clock's fields (elapsed, eta): nothing a page needs sent again."""
        return other is not None and dataclasses.replace(self, elapsed=0.0, eta=None) == \
            dataclasses.replace(other, elapsed=0.0, eta=None)


@dataclass(frozen=True)
class JobView(RunState):
    """A run's state with its history and latest snapshot: what a page draws."""
    step_history: list[dict] = field(default_factory=list, repr=False)
    epoch_history: list[dict] = field(default_factory=list, repr=False)
    snapshot: Snapshot | None = field(default=None, repr=False)

    @classmethod
    def of(cls, state: RunState, history: History, snapshot: Snapshot | None) -> JobView:
        fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(RunState)}
        return cls(**fields, step_history=history.steps(), epoch_history=history.epochs(), snapshot=snapshot)


@dataclass(frozen=True)
class Progress:
    """What is new of a run since the last Progress sent: its state, new history rows, a new snapshot."""
    state: RunState
    steps: list[dict]
    epochs: list[dict]
    snapshot: Snapshot | None  # None: unchanged
    weights: dict[str, np.ndarray] | None = None  # the final weights, once the run has ended


class ProgressFeed:
    """The training side: turns a job's state into Progress messages carrying only what is new."""

    def __init__(self):
        self._step, self._epochs, self._snapshot, self._state = -1, 0, None, None

    def next(self, job) -> Progress | None:
        """The job's news (a TrainingJob), None when there is none; an ended job always has news once."""
        state = job.state()
        steps = job.history.steps_after(self._step)
        epochs = job.history.epochs_from(self._epochs)
        current = job.snapshot  # read once: the training thread may replace it meanwhile (then it is news next time)
        snapshot = current if current is not self._snapshot else None
        if not (steps or epochs or snapshot is not None or not state.same_but_time(self._state)):
            return None
        self._step = steps[-1]["step"] if steps else self._step
        self._epochs += len(epochs)
        self._snapshot, self._state = current, state
        weights = job.weights() if state.status.ended else None
        return Progress(state, steps, epochs, snapshot, weights)


class Mirror:
    """The server's side: a run's state put back together from the Progress messages it was sent."""

    def __init__(self, state: RunState, max_points: int = 2000):
        self.state = state
        self.history = History(max_points)
        self.snapshot: Snapshot | None = None
        self.weights: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def apply(self, progress: Progress) -> None:
        with self._lock:
            for row in progress.steps:
                self.history.add_step(row)
            for row in progress.epochs:
                self.history.add_epoch(row)
            if progress.snapshot is not None:
                self.snapshot = progress.snapshot
            if progress.weights is not None:
                self.weights = progress.weights
            self.state = progress.state

    def view(self) -> JobView:
        with self._lock:
            return JobView.of(self.state, self.history, self.snapshot)


def queued_state(job_id: str, owner: str, config) -> RunState:
    """A run's state before anything has happened to it."""
    return RunState(id=job_id, owner=owner, status=Status.QUEUED, message="", epoch=0, epochs=config.epochs,
                    step=0, total_steps=0, elapsed=0.0, eta=None, lr=config.lr, beta_now=config.beta,
                    queue_position=0)


def failure(state: RunState, message: str) -> Progress:
    """The Progress that ends a run as failed, for a run whose host could not train it."""
    return Progress(dataclasses.replace(state, status=Status.FAILED, message=message, eta=None), [], [], None)
