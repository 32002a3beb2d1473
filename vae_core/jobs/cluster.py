"""The Ray backend ($VAE_LAB_TRAINER=ray): each run trains in a Ray actor, anywhere on a Ray cluster.

Ray does the scheduling: an actor asks for one CPU (and a GPU when its config wants one) and waits in Ray's
queue while the cluster is full. The server holds a `RayJob` per run, a `Mirror` of its state that a thread
updates from the actor every PUSH_SECONDS, exactly as the process backend's worker updates it. Nothing is
shared but Ray's object store: an upload reaches the actor through it, and the run folder the actor writes on
its own disk comes back, file by file, into the server's runs folder after every epoch and at the end.

$RAY_ADDRESS names the cluster; with none, the server starts a local Ray of its own.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
from pathlib import Path

import ray

import vae_core
from vae_core import checkpoints, devices, runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.forks import Fork
from vae_core.jobs.backends import JobBook
from vae_core.jobs.job import BY_THE_USER, TrainingJob
from vae_core.jobs.process import PUSH_SECONDS, RemoteJob
from vae_core.jobs.replay import REPLAY
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.state import Progress, ProgressFeed, RunState, failure
from vae_core.train import Status, warm_up

NAMESPACE = "vae-lab"
CALL_TIMEOUT = 10.0  # seconds a steering call or a weights request may take once the actor runs
WARM = int(os.environ.get("VAE_LAB_RAY_WARM", "1"))  # idle actors a server keeps started for the next runs
RUN_FILES = ("config.json", "card.json", "metrics.csv", "steps.json", "weights.safetensors", REPLAY, "meta.json")


@ray.remote(num_cpus=1)
class TrainerActor:
    """One run's TrainingJob, in a process Ray placed on some node; its run folder on that node's disk."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="vae-lab-run-")
        self.job: TrainingJob | None = None
        self.feed = ProgressFeed()
        warm_up()  # while it waits for a run: its first step comes sooner

    def start(self, job_id: str, config_json: str, data: Dataset | None, owner: str, card: dict | None,
              fork: Fork | None = None) -> None:
        self.job = TrainingJob(TrainConfig.from_json(config_json), data, job_id=job_id, owner=owner, card=card,
                               runs_dir=self.folder, pool=SlotPool(1), fork=fork)
        self.job.start()

    def progress(self) -> Progress | None:
        return self.feed.next(self.job)

    def files(self, have: tuple[str, ...] = ()) -> dict[str, bytes | None]:
        """The run folder's files as they are now (meta.json last: it says how far the others got), with the
        checkpoints the server lacks (it `have`s the others); None for a checkpoint the run has dropped since."""
        folder = self.job.run_dir
        if folder is None:
            return {}
        kept = {f"{checkpoints.FOLDER}/{p.name}" for p in (folder / checkpoints.FOLDER).glob("epoch-*")}
        return ({name: (folder / name).read_bytes() for name in sorted(kept - set(have))}
                | {name: None for name in set(have) - kept}
                | {name: (folder / name).read_bytes() for name in RUN_FILES if (folder / name).is_file()})

    def weights(self):
        ready = self.job.status.ended or self.job.status == Status.PAUSED
        return self.job.weights() if ready else None

    def steer(self, kind: str, *args) -> None:
        getattr(self.job, kind)(*args)

    def discard(self) -> None:
        """Remove the run folder from this node once the server has its copy."""
        shutil.rmtree(self.folder, ignore_errors=True)


RUNTIME_ENV = {"py_modules": [str(Path(vae_core.__file__).parent)]}  # vae_core, sent to every worker node


def connect() -> None:
    """Join the cluster $RAY_ADDRESS names, or start a local one."""
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, namespace=NAMESPACE, log_to_driver=False,
                 include_dashboard=False, runtime_env=RUNTIME_ENV)


class RayBackend(JobBook):
    """Keeps WARM actors started ahead of the runs (a new actor takes about 5 s to its first step, a warm one
    under a second: bench/README.md, "Ray"), but only while the cluster has a CPU free, so an idle actor never
    keeps a run waiting."""

    def __init__(self):
        super().__init__()
        connect()
        self._warm: list = []
        self._warm_lock = threading.Lock()
        self._top_up()

    def start(self, config, data=None, *, owner="", card=None, runs_dir=None, fork=None) -> RayJob:
        runs_dir = Path(runs.default_runs_dir() if runs_dir is None else runs_dir)
        return self.add(RayJob(config, data, owner=owner, card=card, runs_dir=runs_dir, book=self,
                               actor=self._actor(config), fork=fork))

    def _actor(self, config: TrainConfig):
        """A warm actor for the run (the oldest: ahead of any other in Ray's queue), else a new one."""
        if devices.wants_gpu(config):
            return TrainerActor.options(num_gpus=1).remote()
        with self._warm_lock:
            actor = self._warm.pop(0) if self._warm else TrainerActor.remote()
        self._top_up()
        return actor

    def _top_up(self) -> None:
        with self._warm_lock:
            while len(self._warm) < WARM and ray.available_resources().get("CPU", 0) >= 1 + len(self._warm):
                self._warm.append(TrainerActor.remote())

    def waiting(self) -> int:
        """This server's jobs that Ray has not placed yet (it reports no queue of its own to a driver)."""
        return sum(1 for job in self.jobs() if isinstance(job, RayJob) and job.waiting)

    def close(self) -> None:
        with self._warm_lock:
            for actor in self._warm:
                ray.kill(actor, no_restart=True)
            self._warm = []
        for job in self.jobs():
            job.stop("Stopped: the server shut down.")
        for job in self.jobs():
            job.join(10)


class RayJob(RemoteJob):
    """A run in a Ray actor, seen from the server: a Job whose state is as last fetched."""

    def __init__(self, config: TrainConfig, upload: Dataset | None, *, owner: str, card: dict | None,
                 runs_dir: Path, book: RayBackend, actor, fork: Fork | None = None):
        super().__init__(config, upload, owner=owner, worker=None)
        self.runs_dir, self.book, self.waiting, self.actor = runs_dir, book, True, actor
        # an upload and a fork's parent state reach the actor through the object store
        self.actor.start.remote(self.id, config.to_json(), upload if upload is None else ray.put(upload), owner,
                                card, fork if fork is None else ray.put(fork))
        self._synced = (None, -1)  # (status, epochs) of the run folder last copied back
        threading.Thread(target=self._follow, name=f"vae-lab-ray-{self.id}", daemon=True).start()

    def _tell(self, *message) -> None:
        if not self._done.is_set():
            self.actor.steer.remote(*message)

    def stop(self, why: str = BY_THE_USER) -> None:
        if self.waiting:  # never placed: Ray drops it from its queue, and no run folder is made
            ray.kill(self.actor, no_restart=True)
            self._apply(Progress(dataclasses.replace(self._mirror.state, status=Status.STOPPED, message=why),
                                 [], [], None, None))
        else:
            super().stop(why)

    def _weights_now(self):
        try:
            return ray.get(self.actor.weights.remote(), timeout=CALL_TIMEOUT)
        except (ray.exceptions.RayError, TimeoutError):
            return None

    def state(self) -> RunState:
        return self._local(super().state())

    def view(self):
        return self._local(super().view())

    def _local(self, state):
        """The state with the run folder as the server holds it, and Ray's queue in words while it waits."""
        changes = {}
        if state.run_dir:
            changes["run_dir"] = str(self.runs_dir / Path(state.run_dir).name)
        if self.waiting:
            changes["queue_position"] = self.book.waiting()
        return dataclasses.replace(state, **changes) if changes else state

    def _follow(self) -> None:
        """Fetch the actor's progress until its run ends; copy its run folder back as it grows."""
        try:
            while True:
                try:
                    progress = ray.get(self.actor.progress.remote(), timeout=PUSH_SECONDS * 50)
                except ray.exceptions.GetTimeoutError:
                    continue  # not placed yet: Ray's queue
                self.waiting = False
                if progress is not None:
                    self._sync(progress.state)
                    self._apply(progress)
                    if progress.state.status.ended:
                        break
                threading.Event().wait(PUSH_SECONDS)
        except ray.exceptions.RayError as exc:
            self._ended(f"Training failed: the cluster lost the run ({type(exc).__name__}). Start the run again.")
        except OSError as exc:  # the runs folder refused the copy
            self.stop()
            self._ended(f"Training stopped: its run could not be saved in the runs folder ({exc.strerror}).")
        finally:
            try:
                ray.get(self.actor.discard.remote(), timeout=CALL_TIMEOUT)
            except ray.exceptions.RayError:
                pass  # the actor is gone, and its process's folder is its node's to clean
            ray.kill(self.actor, no_restart=True)

    def _sync(self, state: RunState) -> None:
        """Copy the run folder back when it has news: a new epoch, or a new status (paused, ended)."""
        if state.run_dir is None or (state.status, state.epoch) == self._synced:
            return
        folder = self.runs_dir / Path(state.run_dir).name
        have = tuple(f"{checkpoints.FOLDER}/{p.name}" for p in (folder / checkpoints.FOLDER).glob("epoch-*"))
        files = ray.get(self.actor.files.remote(have), timeout=CALL_TIMEOUT * 6)
        (folder / checkpoints.FOLDER).mkdir(parents=True, exist_ok=True)
        # as the job writes them: checkpoints (tensors, then values), the run's files, meta.json; then drops
        order = lambda n: (files[n] is None, n == "meta.json", not n.startswith(checkpoints.FOLDER),  # noqa: E731
                           n.endswith(".json"))
        for name in sorted(files, key=order):
            if files[name] is None:
                (folder / name).unlink(missing_ok=True)
            else:
                runs.write_atomic(folder / name, files[name])
        self._synced = (state.status, state.epoch)

    def _ended(self, message: str) -> None:
        if not self._done.is_set():  # a stop while waiting has ended it already
            self._apply(failure(self._mirror.state, message))

