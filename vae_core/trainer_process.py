"""Training in a process of its own, so that the server's Python is free to draw pages.

Every torch call of a training thread lets go of the GIL and takes it back: in the Streamlit server,
twenty jobs training on its threads starved the page runs of 30 students (bench/README.md, "Classroom
load"). A `TrainerProcess` runs the server's `TrainingJob`s on its own threads (with the slot pool, and
its own cache of loaded datasets) and sends each job's progress back every PUSH_SECONDS; a `RemoteJob`
is the server's handle on one of them, with TrainingJob's interface.

Messages are pickled over a pipe that only these two processes hold; nothing a user sent is unpickled
(an upload reaches the trainer as the Dataset the server has already parsed and checked).
"""

from __future__ import annotations

import itertools
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from vae_core.config import TrainConfig
from vae_core.data import DataError, Dataset, load_dataset
from vae_core.history import History
from vae_core.job import BY_THE_USER, DONE, FAILED, PAUSED, QUEUED, JobView, TrainingJob, check_live_value
from vae_core.models import VAE, build_model
from vae_core.snapshots import Snapshot

TRAINER_ENV = "VAE_LAB_TRAINER"
PUSH_SECONDS = 0.1  # how often the trainer sends the server each changed job's progress
WEIGHTS_TIMEOUT = 10.0  # seconds the server waits for a paused job's weights
# The trainer yields the CPU to the server (pages first: training takes what is left). Measured with 30 students
# training at once on 2 cores: see bench/README.md, "Classroom load".
NICE = 10
_SCALARS = ("status", "message", "epoch", "step", "total_steps", "elapsed", "eta", "lr", "beta", "queue_position",
            "run_dir", "best_epoch")
_CHANGES = tuple(name for name in _SCALARS if name not in ("elapsed", "eta"))  # worth an update on their own


def use_trainer_process() -> bool:
    """Whether the app trains in a trainer process ($VAE_LAB_TRAINER: "process", the default) or on the
    server's own threads ("threads": what page tests use, where jobs are inspected in place)."""
    raw = os.environ.get(TRAINER_ENV, "").strip() or "process"
    if raw not in ("process", "threads"):
        raise ValueError(f"environment variable {TRAINER_ENV} must be 'process' or 'threads', got {raw!r}")
    return raw == "process"


# --- the server's side -------------------------------------------------------------------------------
class TrainerProcess:
    """A trainer process and the thread that receives its messages. If the process dies, its jobs fail
    with a message saying so (and `default_trainer` starts a new one for the next job)."""

    def __init__(self):
        # A fresh interpreter (`python -m vae_core.trainer_process`), not a fork of the server (whose torch
        # threads a fork would break) nor multiprocessing's spawn (which re-imports the server's __main__),
        # talking over two pipes of its own.
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "vae_core.trainer_process", str(down_read),
                                         str(up_write)], pass_fds=(down_read, up_write), env=env, cwd=root)
        os.close(down_read)
        os.close(up_write)
        self._out, self._in = Connection(down_write, readable=False), Connection(up_read, writable=False)
        self._send_lock, self._lock = threading.Lock(), threading.Lock()
        self._jobs: dict[int, RemoteJob] = {}
        self._replies: dict[int, list] = {}  # request id -> [event, value]
        self._ids = itertools.count(1)
        self.alive = True
        threading.Thread(target=self._receive, name="vae-lab-trainer-link", daemon=True).start()

    def submit(self, job: RemoteJob, data: Dataset | None) -> None:
        """Start `job` in the trainer, under an id it has before the trainer hears of it."""
        job._id = job_id = next(self._ids)
        with self._lock:
            self._jobs[job_id] = job
        if not self.send("start", job_id, job.config.to_json(), data, job.runs_dir, job.data_dir):
            self._lost([job])

    def send(self, *message) -> bool:
        """Send a message to the trainer; False when it is gone."""
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            if not self.alive:
                return False
            try:
                self._out.send_bytes(payload)
                return True
            except OSError:
                return False

    def ask(self, *message, timeout: float = WEIGHTS_TIMEOUT):
        """Send a request and wait for its answer (None when none comes in time)."""
        request_id = next(self._ids)
        reply = [threading.Event(), None]
        with self._lock:
            self._replies[request_id] = reply
        if self.send(*message, request_id):
            reply[0].wait(timeout)
        with self._lock:
            self._replies.pop(request_id, None)
        return reply[1]

    def close(self, timeout: float = 5.0) -> None:
        """End the trainer process: it stops its jobs (their runs are saved as stopped), then exits."""
        self.send("quit", 0)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _receive(self) -> None:
        try:
            while True:
                kind, key, value = pickle.loads(self._in.recv_bytes())
                with self._lock:
                    target = self._jobs.get(key) if kind == "update" else self._replies.get(key)
                    if kind == "update" and value["done"]:
                        self._jobs.pop(key, None)
                if kind == "update" and target is not None:
                    target._apply(value)
                elif kind == "reply" and target is not None:
                    target[1] = value
                    target[0].set()
        except (EOFError, OSError):
            pass
        with self._send_lock:
            self.alive = False
            self._out.close()
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            pass
        with self._lock:
            lost, self._jobs = list(self._jobs.values()), {}
            for reply in self._replies.values():
                reply[0].set()
        self._lost(lost)

    def _lost(self, jobs: list[RemoteJob]) -> None:
        code = self.process.poll()
        for job in jobs:
            job._apply({"status": FAILED, "done": True,
                        "message": "Training failed: the training process ended unexpectedly"
                                   + (f" (exit code {code})" if code is not None else "")
                                   + ". Start the run again."})


_default: TrainerProcess | None = None
_default_lock = threading.Lock()


def default_trainer() -> TrainerProcess:
    """This server's trainer process, started on first use (again if the last one died)."""
    global _default
    with _default_lock:
        if _default is None or not _default.alive:
            _default = TrainerProcess()
        return _default


class RemoteJob:
    """A TrainingJob run in a trainer process, seen from the server: the same controls and `view()`,
    the state as last sent (at most PUSH_SECONDS old). The history is kept and thinned here as well."""

    def __init__(self, config: TrainConfig, data: Dataset | None = None, *, data_dir: str | None = None,
                 runs_dir: str | os.PathLike | None = None, trainer: TrainerProcess | None = None,
                 max_points: int = 2000):
        self.config, self.data_dir = config, data_dir
        self.runs_dir = None if runs_dir is None else str(runs_dir)
        self._upload, self._trainer, self._id = data, trainer, None  # the upload is sent to the trainer
        self.history = History(max_points)
        self._state = {"status": QUEUED, "message": "", "epoch": 0, "step": 0, "total_steps": 0, "elapsed": 0.0,
                       "eta": None, "lr": config.lr, "beta": config.beta, "queue_position": 0, "run_dir": None,
                       "best_epoch": None}
        self._snapshot: Snapshot | None = None
        self._final_weights: dict | None = None
        self._data: Dataset | None = data
        self._model: tuple[int, VAE] | None = None  # (step, model) last built for model()
        self._started, self._done = threading.Event(), threading.Event()

    # --- control ---------------------------------------------------------------------------------
    def start(self) -> "RemoteJob":
        self._trainer = self._trainer or default_trainer()
        self._trainer.submit(self, self._upload)
        self._started.set()
        return self

    def pause(self) -> None:
        self._tell("pause")

    def resume(self) -> None:
        self._tell("resume")

    def stop(self, why: str = BY_THE_USER) -> None:
        self._tell("stop", why)

    def set_lr(self, lr: float) -> None:
        self._tell("set_lr", check_live_value("lr", lr))

    def set_beta(self, beta: float) -> None:
        self._tell("set_beta", check_live_value("beta", beta))

    def _tell(self, *message) -> None:
        if self._id is not None and not self._done.is_set():
            self._trainer.send(message[0], self._id, *message[1:])

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout) if self._started.is_set() else True

    @property
    def alive(self) -> bool:
        return self._started.is_set() and not self._done.is_set()

    # --- observation -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._state["status"]

    @property
    def message(self) -> str:
        return self._state["message"]

    @property
    def run_dir(self) -> str | None:
        return self._state["run_dir"]

    @property
    def data(self) -> Dataset | None:
        """The run's dataset: the upload it was given, else the built-in one, looked up once (the live view
        reads it on every redraw); None while it cannot be loaded."""
        if self._data is None:
            try:
                self._data = load_dataset(self.config.dataset, data_dir=self.data_dir)
            except DataError:
                return None
        return self._data

    def view(self) -> JobView:
        return JobView(**self._state, epochs=self.config.epochs, step_history=self.history.steps(),
                       epoch_history=self.history.epochs(), snapshot=self._snapshot)

    def model(self) -> VAE | None:
        """The model as trained so far (asked of the trainer while the job is paused), None before it exists.
        Built once per step reached: Explore asks on every rerun."""
        step = self._state["step"]
        if self._model is not None and self._model[0] == step:
            return self._model[1]
        weights = self._final_weights if self._done.is_set() else (
            self._trainer.ask("weights", self._id) if self._id is not None else None)
        data = self.data
        if weights is None or data is None:
            return None
        model = build_model(self.config, data.sample_shape)
        model.load_state_dict({name: torch.from_numpy(array) for name, array in weights.items()})
        self._model = (step, model.eval())
        return self._model[1]

    def _apply(self, update: dict) -> None:
        """An update from the trainer (on the link thread)."""
        for row in update.get("steps", ()):
            self.history.add_step(row)
        for row in update.get("epochs", ()):
            self.history.add_epoch(row)
        if update.get("snapshot") is not None:
            self._snapshot = update["snapshot"]
        if update.get("weights") is not None:
            self._final_weights = update["weights"]
        self._state = {**self._state, **{k: update[k] for k in _SCALARS if k in update}}
        if update["done"]:
            self._done.set()


# --- the trainer's side ------------------------------------------------------------------------------
class _Sent:
    """What the server has been sent of one job, so that each update only carries what is new."""

    def __init__(self):
        self.step, self.epochs, self.snapshot, self.changes = -1, 0, None, None

    def update(self, job: TrainingJob, done: bool) -> dict | None:
        view = job.view()
        steps = [row for row in view.step_history if row["step"] > self.step]
        epochs = view.epoch_history[self.epochs:]
        snapshot = view.snapshot if view.snapshot is not self.snapshot else None
        changes = tuple(getattr(view, name) for name in _CHANGES)
        if not (steps or epochs or snapshot is not None or done or changes != self.changes):
            return None
        self.step = steps[-1]["step"] if steps else self.step
        self.epochs, self.changes = len(view.epoch_history), changes
        self.snapshot = view.snapshot
        update = {name: getattr(view, name) for name in _SCALARS}
        update.update(steps=steps, epochs=epochs, snapshot=snapshot, done=done)
        if done and job.trainer is not None:
            update["weights"] = _numpy(job.trainer.model.state_dict())
        return update


def _numpy(state: dict[str, torch.Tensor]) -> dict:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in state.items()}


def _serve(inbox: Connection, outbox: Connection) -> None:
    """The trainer process: start and control jobs as the server asks, send their progress back. Ends
    (stopping its jobs) when the server says so, closes the pipe or exits.

    The main thread trains: a job started while it is free runs there, with torch's threads (see
    job._thread_count); a job started while it is busy gets a thread of its own and one torch thread. The
    inbox and push threads copy tensors through numpy, so that the main thread's OpenMP team stays the only
    one."""
    from vae_core.schedules import warm_up

    warm_up()
    jobs: dict[int, tuple[TrainingJob, _Sent]] = {}
    lock, send_lock = threading.Lock(), threading.Lock()
    for_main: queue.SimpleQueue = queue.SimpleQueue()  # jobs' run methods, for the main thread; None: the end
    main_free, ended = [True], threading.Event()

    def send(*message) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with send_lock:
            try:
                outbox.send_bytes(payload)
            except OSError:  # the server has gone; the inbox's end of file ends this process
                pass

    def push_until_the_end() -> None:
        """Every PUSH_SECONDS, and once more at the end: the jobs' final states reach the server."""
        last = False
        while not last:
            last = ended.wait(PUSH_SECONDS)
            with lock:
                items = list(jobs.items())
            for job_id, (job, sent) in items:
                done = not job.alive  # read first: a job that has ended has its final state in its view
                update = sent.update(job, done)
                if update is not None:
                    send("update", job_id, update)
                if done:
                    with lock:
                        jobs.pop(job_id, None)

    def start(job: TrainingJob) -> None:
        with lock:
            on_main, main_free[0] = main_free[0], False
        job.start(for_main.put if on_main else None)

    def receive_forever() -> None:
        while True:
            try:
                kind, job_id, *args = pickle.loads(inbox.recv_bytes())
            except (EOFError, OSError):
                break
            if kind == "quit":
                break
            with lock:
                job = jobs.get(job_id, (None,))[0]
            if kind == "start":
                config_json, data, runs_dir, data_dir = args
                try:
                    job = TrainingJob(TrainConfig.from_json(config_json), data, data_dir=data_dir, runs_dir=runs_dir)
                except Exception as exc:  # a config the trainer refuses (its limits): that run fails, the trainer goes on
                    send("update", job_id, {"status": FAILED, "message": f"Training failed: {exc}", "done": True})
                    continue
                with lock:
                    jobs[job_id] = (job, _Sent())
                start(job)
            elif kind == "weights":
                paused = job is not None and job.trainer is not None and job.status in DONE + (PAUSED,)
                send("reply", args[0], _numpy(job.trainer.model.state_dict()) if paused else None)
            elif job is not None and kind in ("pause", "resume", "stop"):
                getattr(job, kind)(*args)
            elif job is not None and kind in ("set_lr", "set_beta"):
                getattr(job, kind)(args[0])
        with lock:
            running = [job for job, _ in jobs.values()]
        for job in running:
            job.stop("Stopped: the server shut down.")
        for job in running:
            job.join(5)  # stopped runs are saved as such
        for_main.put(None)

    pusher = threading.Thread(target=push_until_the_end, name="vae-lab-trainer-push", daemon=True)
    pusher.start()
    threading.Thread(target=receive_forever, name="vae-lab-trainer-inbox", daemon=True).start()
    while (run := for_main.get()) is not None:
        run()
        with lock:
            main_free[0] = True
    ended.set()
    pusher.join(5)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server's terminal: the server ends, then this
    os.nice(NICE)
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
    # Its jobs have ended and saved their runs. Skip the interpreter's teardown: after training on the main
    # thread, torch's C++ teardown aborted the process ("terminate called without an active exception").
    os._exit(0)
