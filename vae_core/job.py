"""TrainingJob: one run trained on a thread of its own (or on the caller's), controlled and observed from others.

The UI thread calls start / pause / resume / stop / set_lr / set_beta and reads `view()`;
the training thread never touches the UI. History is bounded and snapshots are throttled to a
small share of training time.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset, LoadStopped, load_dataset
from vae_core.history import History
from vae_core.models import build_model, parameter_count
from vae_core.slots import SlotPool, default_pool
from vae_core.snapshots import Snapshot, SnapshotMaker
from vae_core.train import Trainer

QUEUED, RUNNING, PAUSED, FINISHED, STOPPED, FAILED = "queued", "running", "paused", "finished", "stopped", "failed"
DONE = (FINISHED, STOPPED, FAILED)
BY_THE_USER = "Stopped by the user."  # a stopped job's message, unless stop() gives another reason
# Snapshots up to the last take at most this share of the training thread's time; a forced last one may come on
# top, and the target for all of them is 5 %.
SNAPSHOT_SHARE = 0.04
# A loss this many times the first step's counts as diverged. Measured on the digits: Adam at LR 1000
# reaches 1e26 times it; spikes that recover (Adam 0.1, RMSprop 0.01) stay below 2,000 times.
DIVERGENCE_FACTOR = 1e6
LIVE_RANGES = {"lr": (1e-7, 1e4), "beta": (0.0, 1000.0)}  # what set_lr and set_beta accept
CORES = torch.get_num_threads()  # torch's default intra-op threads (physical cores, or $OMP_NUM_THREADS)


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state for the UI."""
    status: str
    message: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    elapsed: float
    eta: float | None
    lr: float
    beta: float
    queue_position: int
    step_history: list[dict] = field(repr=False)
    epoch_history: list[dict] = field(repr=False)
    snapshot: Snapshot | None = field(repr=False)
    run_dir: str | None = None
    best_epoch: int | None = None

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class TrainingJob:
    def __init__(self, config: TrainConfig, data: Dataset | None = None, *, data_dir: str | None = None,
                 runs_dir: str | os.PathLike | None = None, pool: SlotPool | None = None,
                 snapshot_interval: float = 0.5, max_points: int = 2000):
        self.config = config
        self.data = data
        self.data_dir = data_dir
        self.runs_dir = runs_dir
        self.pool = pool or default_pool()
        self.snapshot_interval = snapshot_interval
        self.history = History(max_points)
        self.trainer: Trainer | None = None
        self.run_dir: Path | None = None
        self.status = QUEUED
        self.message = ""
        self.best_epoch: int | None = None
        self.save_error: str | None = None  # why the run folder could not be written, when it could not
        self.live_changes: list[dict] = []
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, float] = {}
        self._stop = threading.Event()
        self._stop_message = BY_THE_USER
        self._running = threading.Event()
        self._running.set()
        self._ended = threading.Event()
        self._threads = 0  # torch's intra-op threads on the training thread, once set
        self._started_at: float | None = None
        self._ended_at: float | None = None
        # (seconds held before, start of the hold going on or None): paused, then waiting for a slot again.
        # One tuple, replaced whole, so that another thread never reads half an update.
        self._held: tuple[float, float | None] = (0.0, None)
        self._pace_from: tuple[float, int] | None = None  # (_active_clock(), step) after the first step

    # --- control, from any thread -------------------------------------------------------------
    def start(self, runner: Callable[[Callable[[], None]], None] | None = None) -> "TrainingJob":
        """Train on a thread of its own, or hand `run` to `runner`, which runs it on its own thread. The job
        takes its place in the slot queue now: jobs started one after another queue in that order."""
        self._started_at = time.perf_counter()
        self.pool.enqueue(self)
        if runner is None:
            threading.Thread(target=self.run, name="vae-lab-training", daemon=True).start()
        else:
            runner(self.run)
        return self

    def run(self) -> None:
        """Train on the calling thread, until the job ends. A process's main thread trains fastest: torch
        gives it the cores it shares with no other job (see _thread_count)."""
        self._started_at = self._started_at or time.perf_counter()
        try:
            self._run()
        finally:
            self._ended.set()

    def pause(self) -> None:
        """Hold the job before its next step, and give its slot to the queue. A job paused while queued
        still takes its turn: it builds its model, then gives the slot back."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, why: str = BY_THE_USER) -> None:
        """Ask the job to stop: before its next step or evaluation chunk (within about a second), or
        while its data loads (see load_dataset); `why` becomes its message."""
        self._stop_message = why
        self._stop.set()
        self._running.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if it has (or never started)."""
        return self._ended.wait(timeout) if self._started_at is not None else True

    @property
    def alive(self) -> bool:
        return self._started_at is not None and not self._ended.is_set()

    def set_lr(self, lr: float) -> None:
        self._set_pending("lr", lr)

    def set_beta(self, beta: float) -> None:
        self._set_pending("beta", beta)

    def _set_pending(self, name: str, value: float) -> None:
        value = check_live_value(name, value)
        with self._lock:
            self._pending[name] = value

    # --- observation ------------------------------------------------------------------------
    def view(self) -> JobView:
        trainer = self.trainer
        step = trainer.step if trainer else 0
        total = trainer.total_steps if trainer else 0
        elapsed = ((self._ended_at or time.perf_counter()) - self._started_at) if self._started_at else 0.0
        eta = None
        if self._pace_from is not None and self.status not in DONE and step > self._pace_from[1]:
            then, first_step = self._pace_from
            eta = (self._active_clock() - then) / (step - first_step) * (total - step)
        return JobView(
            status=self.status, message=self.message, epoch=trainer.epoch if trainer else 0,
            epochs=self.config.epochs, step=step, total_steps=total, elapsed=elapsed, eta=eta,
            lr=trainer.schedule.lr if trainer else self.config.lr,
            beta=trainer.current_beta() if trainer else self.config.beta,
            queue_position=self.pool.position(self), step_history=self.history.steps(),
            epoch_history=self.history.epochs(), snapshot=self._snapshot,
            run_dir=str(self.run_dir) if self.run_dir else None, best_epoch=self.best_epoch)

    def _active_clock(self) -> float:
        """time.perf_counter() less the seconds the job was held: it stands still while the job is held."""
        held, since = self._held
        return (time.perf_counter() if since is None else since) - held

    def model(self):
        """The model as trained so far, None before it exists (read it while the job is paused or done)."""
        return self.trainer.model if self.trainer is not None else None

    # --- the training thread ----------------------------------------------------------------
    def _run(self) -> None:
        self._fit_threads()
        try:
            if not (self._load() and self.pool.acquire(self, self._stop)):
                self.status = STOPPED
                self.message = "Stopped before it started."
                return
            try:
                self._train(self.data)
            finally:
                self.pool.release(self)
        except Exception as exc:  # the UI shows the message; the thread must never die silently
            self.status = FAILED
            self.message = f"Training failed: {exc}"
            if self.trainer is not None:
                self._save(None)  # the folder says the run failed; its weights stay those of the last epoch
        finally:
            self.pool.leave(self)  # its place in the queue, when it ended before taking a slot
            self._ended_at = time.perf_counter()

    def _load(self) -> bool:
        """Load the dataset unless one was given; False when asked to stop first."""
        try:
            self.data = self.data or load_dataset(self.config.dataset, data_dir=self.data_dir, stop=self._stop)
        except LoadStopped:
            return False
        return not self._stop.is_set()

    def _train(self, data: Dataset) -> None:
        config = self.config
        with torch.device("meta"):  # refuse a model over VAE_LAB_MAX_PARAMS before allocating it
            build_model(config, data.sample_shape)
        self.trainer = trainer = Trainer(config, data)
        self.status = RUNNING  # until the model exists, the job shows as queued: "building the model"
        maker = SnapshotMaker(data.val, data.val_labels, config.latent_dim, config.seed)
        if self.runs_dir is not None:
            try:
                self.run_dir = runs.new_run_dir(self.runs_dir, config)
                runs.save_config(self.run_dir, config)
            except OSError as exc:  # a full disk or read-only folder: train anyway, the results stay on screen
                self.run_dir = None
                self.save_error = _save_failure(exc)
        self._train_started = time.perf_counter()
        self._last_snapshot_end, self._snapshot_spent, self._snapshot_cost = 0.0, 0.0, 0.0
        self._take_snapshot(maker, force=True)
        last_good = best = trainer.weights()
        best_val, bad_epochs, first_loss = math.inf, 0, None
        for epoch in range(config.epochs):
            sums, count = {"loss": 0.0, "recon": 0.0, "kl": 0.0}, 0
            for x in trainer.batches():
                if not self._wait_and_apply_changes():
                    return self._end(STOPPED, self._stop_message, maker)
                self._fit_threads()
                row = trainer.train_step(x)
                if self._pace_from is None:  # the ETA's pace leaves out the wait, the loading and the warm-up
                    self._pace_from = (self._active_clock(), trainer.step)
                first_loss = row["loss"] if first_loss is None else first_loss
                problem = _divergence(row["loss"], first_loss)
                if problem:
                    trainer.load_weights(last_good)
                    return self._end(FAILED, _diverged_message(problem, row["step"], epoch + 1, trainer.schedule.lr),
                                     maker, restored=True)
                self.history.add_step(row)
                for k in sums:
                    sums[k] += row[k]
                count += 1
                if count < trainer.steps_per_epoch:  # the epoch's end takes one from the validation pass
                    self._take_snapshot(maker)
            val = trainer.evaluate(data.val, self._stop)
            if val is None:
                return self._end(STOPPED, self._stop_message, maker)
            if not math.isfinite(val["neg_elbo"]):
                trainer.load_weights(last_good)
                return self._end(FAILED, _diverged_message("became NaN or infinite", trainer.step, epoch + 1,
                                                           trainer.schedule.lr), maker, restored=True)
            trainer.end_epoch(val["neg_elbo"])
            self.history.add_epoch({"epoch": epoch + 1, "step": trainer.step, "lr": trainer.schedule.lr,
                                    "beta": trainer.current_beta(),
                                    **{f"train_{k}": v / max(count, 1) for k, v in sums.items()},
                                    **{f"val_{k}": v for k, v in val.items()}})
            last_good = trainer.weights()
            if val["neg_elbo"] < best_val - config.min_delta:
                best_val, best, bad_epochs, self.best_epoch = val["neg_elbo"], last_good, 0, epoch + 1
            else:
                bad_epochs += 1
            self._take_snapshot(maker)  # its points from the validation pass just run
            self._save(last_good)
            if config.early_stopping and bad_epochs >= config.patience:
                trainer.load_weights(best)
                return self._end(FINISHED, f"Early stopping: no improvement for {bad_epochs} epochs; "
                                           f"restored the best weights (epoch {self.best_epoch}).", maker,
                                 restored=True)
        if config.early_stopping and self.best_epoch is not None:
            trainer.load_weights(best)
            return self._end(FINISHED, f"Finished; restored the best weights (epoch {self.best_epoch}).", maker,
                             restored=True)
        self._end(FINISHED, "Finished.", maker)

    def _wait_and_apply_changes(self) -> bool:
        """Block while paused, its slot left to the queue, and on resume until it has a slot again (paused
        again meanwhile: hold on); apply live LR / β changes; False when asked to stop."""
        if not self._running.is_set():
            self._held = (self._held[0], time.perf_counter())
            while not self._running.is_set():
                self.pool.release(self)
                self.status = PAUSED  # once its slot is free
                self._running.wait()
                if self._stop.is_set():
                    return False
                self.status = QUEUED  # behind the jobs already waiting
                if not self.pool.acquire(self, self._stop):
                    return False
            held, since = self._held
            self._held = (held + time.perf_counter() - since, None)
            self.status = RUNNING
        if self._stop.is_set():
            return False
        if self._pending:
            with self._lock:
                pending, self._pending = self._pending, {}
            trainer = self.trainer
            if "lr" in pending:
                trainer.set_lr(pending["lr"])
            if "beta" in pending:
                trainer.beta = pending["beta"]
            self.live_changes.append({"step": trainer.step, **pending})
        return True

    def _fit_threads(self) -> None:
        """Set torch's intra-op threads for the next step, when the jobs running have changed."""
        threads = _thread_count(self.pool.running, threading.current_thread() is threading.main_thread())
        if threads != self._threads:
            torch.set_num_threads(threads)
            self._threads = threads

    def _take_snapshot(self, maker: SnapshotMaker, force: bool = False) -> None:
        """A snapshot at most every snapshot_interval, and all of them within SNAPSHOT_SHARE of the time. Right
        after a validation pass it takes the points from the trainer's posterior. The cost counted ahead is
        the last throttled one's that encoded its points: a forced first one also pays the model's first
        inference (counted ahead, it held a fresh trainer's live view at step 0 for seconds), and one from a
        posterior costs next to nothing."""
        now = time.perf_counter()
        if not force and (now - self._last_snapshot_end < self.snapshot_interval or self._snapshot_spent
                          + self._snapshot_cost > SNAPSHOT_SHARE * (now - self._train_started)):
            return
        trainer = self.trainer
        posterior = trainer.posterior
        self._snapshot = maker.take(trainer.model, trainer.step, trainer.epoch, posterior)
        self._last_snapshot_end = time.perf_counter()
        self._snapshot_spent += self._last_snapshot_end - now
        if not force and posterior is None:
            self._snapshot_cost = self._last_snapshot_end - now

    def _end(self, status: str, message: str, maker: SnapshotMaker, restored: bool = False) -> None:
        """End the run; its last snapshot shows the weights kept (`restored`: other weights than the last step's)."""
        self._take_snapshot(maker, force=restored or self._snapshot.step != self.trainer.step)
        self.status, self.message = status, message
        self._save(self.trainer.weights())
        if self.save_error:
            self.message = f"{message} {self.save_error}"

    def _save(self, weights: dict[str, torch.Tensor] | None) -> None:
        if self.run_dir is None:
            return
        trainer = self.trainer
        meta = {"status": self.status, "message": self.message, "dataset": self.config.dataset,
                "sample_shape": list(trainer.data.sample_shape), "parameters": parameter_count(trainer.model),
                "epochs_done": trainer.epoch, "steps_done": trainer.step, "best_epoch": self.best_epoch,
                "live_changes": self.live_changes, "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            runs.save_progress(self.run_dir, meta, self.history.epochs(), self.history.steps(), weights)
            self.save_error = None
        except OSError as exc:  # a full disk or read-only folder must not cost the user the trained model
            self.save_error = _save_failure(exc)


def check_live_value(name: str, value: float) -> float:
    """A live change of "lr" or "beta" as a float, ValueError when outside LIVE_RANGES."""
    low, high = LIVE_RANGES[name]
    if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name}: must be between {low} and {high}, got {value}")
    return float(value)


def _save_failure(exc: OSError) -> str:
    return (f"Could not save the run ({exc.strerror or exc}); the results shown here are kept until you "
            "start another run.")


def _thread_count(running: int, on_main_thread: bool) -> int:
    """Intra-op threads for a job's next step: on a process's main thread, its share of the cores among the
    jobs running; on any other thread, one. Measured on 2 cores: once the main thread has used 2 threads
    (OpenMP then keeps a team for it), 2 threads on a worker thread ran the digits MLP at 0.36, the digits conv
    at 0.46 and MNIST's MLP at 0.8 times the speed of one (only MNIST's conv gained, 1.2-1.3 times), while on
    the main thread they ran MNIST's MLP 1.6, its conv 1.5 and the digits conv 1.25 times faster than one."""
    if not on_main_thread:
        return 1
    return max(1, CORES // max(1, running))


def _divergence(loss: float, first: float) -> str | None:
    """What went wrong when the loss diverged (NaN, infinite, or far above the first step's), else None."""
    if not math.isfinite(loss):
        return "became NaN or infinite"
    if math.isfinite(first) and loss > DIVERGENCE_FACTOR * max(abs(first), 1.0):
        return f"grew to {loss:.3g}, over {DIVERGENCE_FACTOR:,.0f} times its first value ({first:.3g}),"
    return None


def _diverged_message(problem: str, step: int, epoch: int, lr: float) -> str:
    return (f"The loss {problem} at step {step} (epoch {epoch}), so training stopped. "
            f"This usually means the learning rate ({lr:g}) is too high: try a value 10 times smaller, "
            "or turn on gradient clipping. The weights from the last good epoch were kept.")
