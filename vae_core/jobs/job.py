"""TrainingJob: hosts one run's `fit` on a thread (its own, or the caller's) and lets other threads steer it.

Around the loop it adds what an app needs: a place in the slot queue, pause and resume, live LR and β
changes, a bounded history, throttled snapshots, and a run folder saved at every epoch. Other threads
call the controls and read `view()`; the training thread never touches the UI.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vae_core import checkpoints, devices, runs
from vae_core.classroom import cards
from vae_core.config import TrainConfig, live_value
from vae_core.data import Dataset, LoadStopped, load_dataset
from vae_core.forks import Fork
from vae_core.jobs.clock import JobClock
from vae_core.jobs.history import History
from vae_core.jobs.replay import Recorder
from vae_core.jobs.slots import SlotPool, default_pool
from vae_core.jobs.snapshots import Snapshot, SnapshotMaker, SnapshotThrottle
from vae_core.jobs.state import JobView, RunState
from vae_core.maths import score
from vae_core.maths.models import build_model
from vae_core.train import Epoch, Outcome, Status, Trainer, fit

log = logging.getLogger(__name__)
BY_THE_USER = "Stopped by the user."  # a stopped job's message, unless stop() gives another reason
CORES = torch.get_num_threads()  # torch's default intra-op threads (physical cores, or $OMP_NUM_THREADS)
PACE_MAX = 1.0  # seconds of slow motion per step at most: a 30-epoch digits run then lasts 20 minutes


class TrainingJob:
    def __init__(self, config: TrainConfig, data: Dataset | None = None, *, job_id: str | None = None,
                 owner: str = "", card: dict | None = None, data_dir: str | None = None,
                 runs_dir: str | os.PathLike | None = None, pool: SlotPool | None = None,
                 snapshot_interval: float = 0.5, max_points: int = 2000, fork: Fork | None = None):
        self.config = config
        self.fork = fork  # the saved run and epoch it goes on from (forks.py), or None
        self.data = data
        self.id = job_id or secrets.token_hex(8)
        self.owner = owner
        self.card = card if card is not None else cards.new_card(owner, "")  # written with the run folder
        self.data_dir = data_dir
        self.runs_dir = runs_dir
        self.pool = pool or default_pool()
        self.snapshot_interval = snapshot_interval
        self.history = History(max_points)
        self.clock = JobClock()
        self.trainer: Trainer | None = None
        self.snapshot: Snapshot | None = None
        self.run_dir: Path | None = None
        self.status = Status.QUEUED
        self.message = ""
        self.best_epoch: int | None = None
        self.score: dict | None = None  # the final score on the test split, once the run has ended
        self.save_error: str | None = None  # why the run folder could not be written, when it could not
        self.live_changes: list[dict] = []
        self._keep_every = 0  # keep every n-th epoch's checkpoint (checkpoints.every), once the first is made
        self._maker: SnapshotMaker | None = None
        self._replay: Recorder | None = None  # a frame per epoch, saved with the run (jobs/replay.py)
        self._throttle: SnapshotThrottle | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self.pace = 0.0  # slow motion: seconds the job waits before each step (0: full speed)
        self._nudge = threading.Event()  # ends a slow-motion wait early: a new pace, a pause or a Stop
        self._stop = threading.Event()
        self._why = BY_THE_USER
        self._running = threading.Event()
        self._running.set()
        self._ended = threading.Event()
        self._threads = 0  # torch's intra-op threads on the training thread, once set

    # --- control, from any thread -------------------------------------------------------------
    def start(self, runner: Callable[[Callable[[], None]], None] | None = None) -> TrainingJob:
        """Train on a thread of its own, or hand `run` to `runner`, which runs it on its own thread. The job
        takes its place in the slot queue now: jobs started one after another queue in that order."""
        self.clock.start()
        self.pool.enqueue(self)
        if runner is None:
            threading.Thread(target=self.run, name="vae-lab-training", daemon=True).start()
        else:
            runner(self.run)
        return self

    def run(self) -> None:
        """Train on the calling thread until the job ends. A process's main thread trains fastest: torch
        gives it the cores it shares with no other job (see _thread_count)."""
        self.clock.start()
        threads = torch.get_num_threads()
        try:
            self._run()
        finally:
            torch.set_num_threads(threads)  # the calling thread's own count, as it was
            self._ended.set()

    def pause(self) -> None:
        """Hold the job before its next step, and give its slot to the queue. A job paused while queued
        still takes its turn: it builds its model, then gives the slot back."""
        self._running.clear()
        self._nudge.set()

    def resume(self) -> None:
        self._running.set()

    def stop(self, why: str = BY_THE_USER) -> None:
        """Ask the job to stop: before its next step or validation chunk, or while its data loads; `why`
        becomes its message."""
        self._why = why
        self._stop.set()
        self._running.set()
        self._nudge.set()

    def set_pace(self, seconds: float) -> None:
        """Slow motion, so a teacher can narrate a run that takes seconds: wait `seconds` (up to PACE_MAX)
        before each step from now on; 0 trains at full speed."""
        self.pace = pace_value(seconds)
        self._nudge.set()

    def set_lr(self, lr: float) -> None:
        self._set_pending("lr", lr)

    def set_beta(self, beta: float) -> None:
        self._set_pending("beta", beta)

    def _set_pending(self, name: str, value: float) -> None:
        value = live_value(name, value)
        with self._lock:
            self._pending[name] = value

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if it has (or never started)."""
        return self._ended.wait(timeout) if self.clock.started is not None else True

    @property
    def alive(self) -> bool:
        return self.clock.started is not None and not self._ended.is_set()

    # --- observation ------------------------------------------------------------------------
    def state(self) -> RunState:
        trainer = self.trainer
        step, total = (trainer.step, trainer.total_steps) if trainer else (0, 0)
        return RunState(
            id=self.id, owner=self.owner, status=self.status, message=self.message,
            epoch=trainer.epoch if trainer else 0, epochs=self.config.epochs, step=step, total_steps=total,
            elapsed=self.clock.elapsed(), eta=self.clock.eta(step, total) if not self.status.ended else None,
            lr=trainer.schedule.lr if trainer else self.config.lr,
            beta_now=(trainer.beta_used if self.status.ended else trainer.beta_now()) if trainer else self.config.beta,
            queue_position=self.pool.position(self), run_dir=str(self.run_dir) if self.run_dir else None,
            best_epoch=self.best_epoch, live_changes=tuple(self.live_changes), paused=not self._running.is_set(),
            score=self.score, device=devices.describe(trainer.device) if trainer else "", pace=self.pace)

    def view(self) -> JobView:
        return JobView.of(self.state(), self.history, self.snapshot)

    def model(self):
        """The model as trained so far, on the CPU as the pages use it (a copy when it trains on a GPU); None
        before it exists (read it while the job is paused or done)."""
        trainer = self.trainer
        if trainer is None:
            return None
        if trainer.device.type == "cpu":
            return trainer.model
        model = build_model(self.config, self.data.sample_shape)
        model.load_state_dict(trainer.weights())
        return model.eval()  # as the process backend's copy (RemoteJob.model)

    def weights(self) -> dict[str, np.ndarray] | None:
        """A numpy copy of the model's weights (numpy keeps a thread that copies them off torch's threads)."""
        if self.trainer is None:
            return None
        return {name: t.detach().cpu().numpy().copy() for name, t in self.trainer.model.state_dict().items()}

    # --- the training thread ----------------------------------------------------------------
    def _run(self) -> None:
        self._fit_threads()
        try:
            if not (self._load() and self.pool.acquire(self, self._stop)):
                self.message, self.status = "Stopped before it started.", Status.STOPPED
                return
            try:
                self._train()
            finally:
                self.pool.release(self)
        except Exception as exc:  # loading the data or building the model; the page shows the message
            message = f"Training failed: {exc}"
            if self.trainer is not None:
                self._save(None, Status.FAILED, message)  # the folder says so; no weights were trained
            self.message, self.status = message, Status.FAILED
        finally:
            self.pool.leave(self)  # its place in the queue, when it ended before taking a slot
            self.clock.end()

    def _load(self) -> bool:
        """Load the dataset unless one was given; False when asked to stop first."""
        try:
            self.data = self.data or load_dataset(self.config.dataset, data_dir=self.data_dir, stop=self._stop)
        except LoadStopped:
            return False
        return not self._stop.is_set()

    def _train(self) -> None:
        config, data = self.config, self.data
        with torch.device("meta"):  # refuse a model over VAE_LAB_MAX_PARAMS before allocating it
            build_model(config, data.sample_shape)
        self.trainer = trainer = Trainer(config, data)
        if self.fork is not None:
            self._go_on_from(self.fork)
        self.status = Status.RUNNING  # until the model exists, the job shows as queued: "building the model"
        self._maker = SnapshotMaker(trainer.val_split, data.val_labels, config.latent_dim, config.seed, data.train)
        self._open_run_dir()
        self._throttle = SnapshotThrottle(self.snapshot_interval)
        self._take_snapshot(forced=True)
        self._replay = Recorder(trainer.val_split, data.val_labels, config.latent_dim, config.seed)
        self._replay.record(trainer.model, trainer.epoch)  # the start: before training, or a checkpoint's epoch
        outcome = fit(trainer, on_step=self._on_step, on_epoch=self._on_epoch, hold=self._hold,
                      should_stop=self._stop.is_set)
        self._end(outcome)

    def _hold(self) -> None:
        """Before each step: block while paused (its slot left to the queue; on resume, until it has one
        again), then apply live LR / β changes. In slow motion it waits the pace first, so a pause pressed
        meanwhile holds the step it was waiting for."""
        self._slow_down()
        if not self._running.is_set():
            self.clock.hold()
            while not self._running.is_set():
                self.pool.release(self)
                self.status = Status.PAUSED  # once its slot is free
                self._save(None)  # the run folder says so too (the teacher's board reads it)
                self._running.wait()
                if self._stop.is_set():
                    return
                self.status = Status.QUEUED  # behind the jobs already waiting
                if not self.pool.acquire(self, self._stop):
                    return
            self.clock.release()
            self.status = Status.RUNNING
            self._save(None)
        self._fit_threads()
        if self._pending:
            with self._lock:
                pending, self._pending = self._pending, {}
            change = {"step": self.trainer.step, **pending}  # with the settings it replaced ("β 1 → 4")
            if "lr" in pending:
                change["lr_was"] = self.trainer.config.lr
                self.trainer.set_lr(pending["lr"])
            if "beta" in pending:
                change["beta_was"] = self.trainer.beta
                self.trainer.beta = pending["beta"]
            self.live_changes.append(change)

    def _slow_down(self) -> None:
        """Wait the pace; a new pace, a pause or a Stop ends the wait early."""
        self._nudge.clear()
        if self.pace > 0 and not self._stop.is_set() and self._running.is_set():
            self._nudge.wait(self.pace)

    def _on_step(self, row: dict) -> None:
        self.clock.stepped(row["step"])
        self.history.add_step(row)
        if row["step"] % self.trainer.steps_per_epoch:  # an epoch's end takes one from its validation pass
            self._take_snapshot()

    def _on_epoch(self, epoch: Epoch) -> None:
        self.history.add_epoch(epoch.row)
        self.best_epoch = epoch.best_epoch
        self._take_snapshot()  # its points from the validation pass just run
        self._replay.record(self.trainer.model, self.trainer.epoch, self.trainer.posterior)
        self._save_checkpoint()
        self._save(epoch.weights)
        if self.run_dir is not None and self.save_error is None:  # meta.json says the epoch was done
            checkpoints.prune(self.run_dir, self.trainer.epoch, self._keep_every)

    def _save_checkpoint(self) -> None:
        """This epoch's checkpoint, before meta.json says the epoch was done (checkpoints.py says which stay)."""
        if self.run_dir is None:
            return
        checkpoint = checkpoints.take(self.trainer)
        self._keep_every = self._keep_every or checkpoints.every(checkpoint, self.config.epochs)
        try:
            checkpoints.save(self.run_dir, checkpoint)
        except OSError as exc:
            self.save_error = _save_failure(exc)

    def _go_on_from(self, fork: Fork) -> None:
        """Start from the parent's state at the fork, with its history and live changes up to there; the fork
        itself (with the β or LR it changed) follows them as a live change, where the loss chart marks it."""
        trainer = self.trainer
        checkpoints.restore(trainer, fork.checkpoint)
        change = {"step": trainer.step, "fork": fork.record()}
        for name in ("lr", "beta"):
            if getattr(self.config, name) != fork.settings[name]:
                change[name], change[f"{name}_was"] = getattr(self.config, name), fork.settings[name]
        if self.config.lr != trainer.config.lr:
            trainer.set_lr(self.config.lr)
        trainer.beta = self.config.beta
        self.live_changes += [*fork.changes, change]
        for row in fork.epochs:
            self.history.add_epoch(row)
        for row in fork.steps:
            self.history.add_step(row)
        self.best_epoch = trainer.track.best_epoch

    def _take_snapshot(self, forced: bool = False) -> None:
        if not (forced or self._throttle.due()):
            return
        started = time.perf_counter()
        posterior = self.trainer.posterior
        self.snapshot = self._maker.take(self.trainer.model, self.trainer.step, self.trainer.epoch, posterior)
        self._throttle.took(started, forced, encoded=posterior is None)

    def _end(self, outcome: Outcome) -> None:
        """End the run: its last snapshot and saved weights are those the outcome kept (a FAILED run keeps
        the last epoch's weights on disk). The status changes last: whoever sees the end sees all of it."""
        failed = outcome.status == Status.FAILED
        if not failed:
            self._take_snapshot(forced=True)
        self.best_epoch = outcome.best_epoch
        message = self._why if outcome.status == Status.STOPPED else outcome.message
        if not failed:
            self.score = self._final_score()
        self._save(None if failed else self.trainer.weights(), outcome.status, message)
        self.message = f"{message} {self.save_error}" if self.save_error else message
        self.status = outcome.status

    def _final_score(self) -> dict | None:
        """The kept weights' score on the test split (maths/score.py). The Stop that ended training leaves it to
        its time cap; a Stop pressed while it scores cuts it short."""
        should_stop = (lambda: False) if self._stop.is_set() else self._stop.is_set
        try:
            return score.final_score(self.trainer, should_stop)
        except Exception:  # the run has trained: it is saved without a score
            log.exception("the final score failed")
            return None

    def _open_run_dir(self) -> None:
        if self.runs_dir is None:
            return
        try:
            self.run_dir = runs.new_run_dir(self.runs_dir, self.config)
            runs.save_config(self.run_dir, self.config)
            cards.write_card(self.run_dir, self.card)
        except OSError as exc:  # a full disk or read-only folder: train anyway, the results stay on screen
            self.run_dir, self.save_error = None, _save_failure(exc)

    def _save(self, weights: dict[str, torch.Tensor] | None, status: Status | None = None, message: str = "") -> None:
        """Save the run folder as it stands (`status` and `message`: the run's end, when it has ended)."""
        if self.run_dir is None:
            return
        try:
            meta = runs.run_meta(self.trainer, status or self.status, message or self.message, self.best_epoch,
                                 self.live_changes, self.score) | ({"fork": self.fork.record()} if self.fork else {})
            if self._replay is not None and weights is not None:  # frames come at epochs' ends; before meta.json
                self._replay.save(self.run_dir)
            runs.save_progress(self.run_dir, meta, self.history.epochs(), self.history.steps(), weights)
            self.save_error = None
        except OSError as exc:  # a full disk or read-only folder must not cost the user the trained model
            self.save_error = _save_failure(exc)

    def _fit_threads(self) -> None:
        """Set torch's intra-op threads for the next step, when the jobs running have changed. A run on a GPU
        leaves them as they are: its CPU mostly queues the GPU's work, and the shares suit CPU training."""
        if self.trainer is not None and self.trainer.device.type != "cpu":
            return
        threads = _thread_count(self.pool.running, threading.current_thread() is threading.main_thread())
        if threads != self._threads:
            torch.set_num_threads(threads)
            self._threads = threads


def pace_value(seconds: float) -> float:
    """A slow-motion pace in seconds per step, within [0, PACE_MAX]; ValueError when it is no number."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"pace: must be a number of seconds, got {seconds!r}")
    return min(max(float(seconds), 0.0), PACE_MAX)


def _save_failure(exc: OSError) -> str:
    return (f"Could not save the run ({exc.strerror or exc}); the results shown here are kept until you "
            "start another run.")


def _thread_count(running: int, on_main_thread: bool) -> int:
    """Intra-op threads for a job's next step: on a process's main thread, its share of the cores among the
    jobs running; on any other thread, one. Once two threads of a process have used several torch threads,
    both run far slower (bench/README.md, "Training threads")."""
    if not on_main_thread:
        return 1
    return max(1, CORES // max(1, running))
