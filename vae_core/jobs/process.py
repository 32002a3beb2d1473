"""The process backend: runs train in a worker process beside the server, so that the server's Python is
free to draw pages (bench/README.md, "Classroom load": twenty jobs training on the server's own threads
starved the page reruns of 30 students).

The server holds a `RemoteJob` per run, a `Mirror` of its state that the worker updates with `Progress`
messages every PUSH_SECONDS. Messages are pickled over two pipes that only these two processes hold;
nothing a user sent is unpickled (an upload reaches the worker as the Dataset the server already checked, a
fork's parent state as the Fork the server read from safetensors and JSON).
"""

from __future__ import annotations

import itertools
import os
import pickle
import queue
import secrets
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from vae_core import runs
from vae_core.config import TrainConfig, live_value
from vae_core.data import DataError, Dataset, load_dataset
from vae_core.forks import Fork
from vae_core.jobs.backends import JobBook
from vae_core.jobs.job import BY_THE_USER, TrainingJob, pace_value
from vae_core.jobs.state import JobView, Mirror, Progress, ProgressFeed, RunState, failure, queued_state
from vae_core.maths.models import VAE, build_model
from vae_core.train import Status, warm_up

PUSH_SECONDS = 0.1  # how often the worker sends the server each changed job's progress
WEIGHTS_TIMEOUT = 10.0  # seconds the server waits for a paused job's weights
NICE = 10  # the worker yields the CPU to the server: pages first (bench/README.md, "Classroom load")


# --- the server's side -------------------------------------------------------------------------------
class WorkerProcess:
    """A worker process and the thread that receives its messages. If the process dies, its jobs fail
    with a message saying so."""

    def __init__(self):
        # A fresh interpreter (`python -m vae_core.jobs.process`), not a fork of the server (whose torch
        # threads a fork would break) nor multiprocessing's spawn (which re-imports the server's __main__).
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "vae_core.jobs.process", str(down_read),
                                         str(up_write)], pass_fds=(down_read, up_write), env=env, cwd=root)
        os.close(down_read)
        os.close(up_write)
        self._out, self._in = Connection(down_write, readable=False), Connection(up_read, writable=False)
        self._send_lock, self._lock = threading.Lock(), threading.Lock()
        self._jobs: dict[str, RemoteJob] = {}
        self._replies: dict[int, list] = {}  # request id -> [event, value]
        self._ids = itertools.count(1)
        self.alive = True
        threading.Thread(target=self._receive, name="vae-lab-worker-link", daemon=True).start()

    def submit(self, job: RemoteJob, data: Dataset | None, runs_dir: str | None, card: dict | None = None,
               fork: Fork | None = None) -> None:
        with self._lock:
            self._jobs[job.id] = job
        if not self.send("start", job.id, job.config.to_json(), data, runs_dir, job.owner, card, fork):
            self._lost([job])

    def send(self, *message) -> bool:
        """Send a message to the worker; False when it is gone."""
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
        """End the worker: it stops its jobs (their runs are saved as stopped), then exits."""
        self.send("quit", "")
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def _receive(self) -> None:
        try:
            while True:
                kind, key, value = pickle.loads(self._in.recv_bytes())
                with self._lock:
                    if kind == "progress":
                        target = self._jobs.get(key)
                        if value.state.status.ended:
                            self._jobs.pop(key, None)
                    else:
                        target = self._replies.get(key)
                if kind == "progress" and target is not None:
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
        message = ("Training failed: the training process ended unexpectedly"
                   + (f" (exit code {code})" if code is not None else "") + ". Start the run again.")
        for job in jobs:
            job._ended(message)


class ProcessBackend(JobBook):
    """Runs train in one worker process per server, started with the server's first page and again
    after a death for the next run."""

    def __init__(self):
        super().__init__()
        self._worker = WorkerProcess()  # started now, with the server, not on the first Start
        self._worker_lock = threading.Lock()

    def worker(self) -> WorkerProcess:
        with self._worker_lock:
            if not self._worker.alive:
                self._worker = WorkerProcess()
            return self._worker

    def start(self, config, data=None, *, owner="", card=None, runs_dir=None, fork=None) -> RemoteJob:
        runs_dir = runs.default_runs_dir() if runs_dir is None else runs_dir
        job = RemoteJob(config, data, owner=owner, worker=self.worker())
        self.add(job)
        job.worker.submit(job, data, str(runs_dir), card, fork)
        return job

    def close(self) -> None:
        with self._worker_lock:
            self._worker.close()


class RemoteJob:
    """A run in the worker process, seen from the server: a Job whose state is as last sent (at most
    PUSH_SECONDS old)."""

    def __init__(self, config: TrainConfig, upload: Dataset | None, *, owner: str, worker: WorkerProcess):
        self.config, self.owner, self.worker = config, owner, worker
        self.id = secrets.token_hex(8)
        self._mirror = Mirror(queued_state(self.id, owner, config))
        self._data = upload
        self._model: tuple[int, VAE] | None = None  # (step, model) last built for model()
        self._done = threading.Event()

    def pause(self) -> None:
        self._tell("pause")

    def resume(self) -> None:
        self._tell("resume")

    def stop(self, why: str = BY_THE_USER) -> None:
        self._tell("stop", why)

    def set_lr(self, lr: float) -> None:
        self._tell("set_lr", live_value("lr", lr))

    def set_beta(self, beta: float) -> None:
        self._tell("set_beta", live_value("beta", beta))

    def set_pace(self, seconds: float) -> None:
        self._tell("set_pace", pace_value(seconds))

    def _tell(self, *message) -> None:
        if not self._done.is_set():
            self.worker.send(message[0], self.id, *message[1:])

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    def state(self) -> RunState:
        return self._mirror.state

    def view(self) -> JobView:
        return self._mirror.view()

    @property
    def data(self) -> Dataset | None:
        """The run's dataset for the live view: its upload, else the built-in one, loaded here once; None
        while it cannot be loaded."""
        if self._data is None:
            try:
                self._data = load_dataset(self.config.dataset)
            except DataError:
                return None
        return self._data

    def model(self) -> VAE | None:
        """The model as trained so far (asked of the worker while the job is paused), None before it exists.
        Built once per step reached: Explore asks on every rerun."""
        step = self._mirror.state.step
        if self._model is not None and self._model[0] == step:
            return self._model[1]
        weights = self._mirror.weights if self._done.is_set() else self._weights_now()
        data = self.data
        if weights is None or data is None:
            return None
        model = build_model(self.config, data.sample_shape)
        # torch.tensor copies: arrays from Ray's object store are read-only
        model.load_state_dict({name: torch.tensor(array) for name, array in weights.items()})
        self._model = (step, model.eval())
        return self._model[1]

    def _weights_now(self) -> dict | None:
        """The weights of the paused job, asked of the worker."""
        return self.worker.ask("weights", self.id)

    def _apply(self, progress: Progress) -> None:
        """Progress from the worker (on the link thread)."""
        self._mirror.apply(progress)
        if progress.state.status.ended:
            self._done.set()

    def _ended(self, message: str) -> None:
        """The worker is gone: the run failed."""
        self._apply(failure(self._mirror.state, message))


# --- the worker's side -------------------------------------------------------------------------------
def _serve(inbox: Connection, outbox: Connection) -> None:
    """The worker process: start and steer jobs as the server asks, send their progress back. Ends
    (stopping its jobs) when the server says so, closes the pipe or exits.

    The main thread trains: a job started while it is free runs there, with torch's threads (see
    job._thread_count); a job started while it is busy gets a thread of its own and one torch thread. The
    inbox and push threads copy weights through numpy, so that the main thread's OpenMP team stays the
    only one."""
    warm_up()
    jobs: dict[str, tuple[TrainingJob, ProgressFeed]] = {}
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
            for job_id, (job, feed) in items:
                done = not job.alive  # read first: a job that has ended has its final state in its view
                progress = feed.next(job)
                if progress is not None:
                    send("progress", job_id, progress)
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
                config_json, data, runs_dir, owner, card, fork = args
                try:
                    job = TrainingJob(TrainConfig.from_json(config_json), data, job_id=job_id, owner=owner,
                                      card=card, runs_dir=runs_dir, fork=fork)
                except Exception as exc:  # a config the worker refuses (its limits): that run fails, the worker goes on
                    send("progress", job_id, failure(queued_state(job_id, owner, TrainConfig()),
                                                     f"Training failed: {exc}"))
                    continue
                with lock:
                    jobs[job_id] = (job, ProgressFeed())
                start(job)
            elif kind == "weights":
                ready = job is not None and (job.status.ended or job.status == Status.PAUSED)
                send("reply", args[0], job.weights() if ready else None)
            elif job is not None and kind in ("pause", "resume", "stop", "set_lr", "set_beta", "set_pace"):
                getattr(job, kind)(*args)
        with lock:
            running = [job for job, _ in jobs.values()]
        for job in running:
            job.stop("Stopped: the server shut down.")
        for job in running:
            job.join(5)  # stopped runs are saved as such
        for_main.put(None)

    pusher = threading.Thread(target=push_until_the_end, name="vae-lab-worker-push", daemon=True)
    pusher.start()
    threading.Thread(target=receive_forever, name="vae-lab-worker-inbox", daemon=True).start()
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
