"""The process backend: a RemoteJob trains exactly as a TrainingJob does, in a worker process, and is
controlled and observed from the server the same way; a dead worker fails its jobs with a message."""

from __future__ import annotations

import os
import pickle
import threading
from multiprocessing import Pipe

import pytest
import torch

import vae_core.jobs.job
from polling import wait_until
from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.jobs import backends
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.process import ProcessBackend, RemoteJob, _serve
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status, Trainer

SMALL = TrainConfig(epochs=2, hidden=[32], latent_dim=2, batch_size=64)
LONG = SMALL.replace(epochs=400, batch_size=16)


@pytest.fixture(scope="module")
def backend():
    process = ProcessBackend()
    yield process
    process.close()


@pytest.mark.slow
def test_a_remote_job_trains_as_a_training_job_does_and_saves_its_run(backend, digits, tmp_path):
    remote = backend.start(SMALL, owner="tab-1", runs_dir=tmp_path / "remote")
    here = TrainingJob(SMALL, digits, runs_dir=tmp_path / "here", pool=SlotPool(1)).start()
    assert isinstance(remote, RemoteJob) and remote.owner == "tab-1"
    assert remote.join(60) and here.join(60)
    got, want = remote.view(), here.view()
    assert got.status == Status.FINISHED and got.message == "Finished." and got.owner == "tab-1"
    assert (got.step, got.total_steps, got.epoch) == (want.step, want.total_steps, want.epoch) == (40, 40, 2)
    assert got.best_epoch == want.best_epoch and got.eta is None
    assert [r["step"] for r in got.step_history] == [r["step"] for r in want.step_history]
    for mine, theirs in zip(got.step_history + got.epoch_history, want.step_history + want.epoch_history):
        assert mine.keys() == theirs.keys()
        assert all(mine[k] == pytest.approx(theirs[k], rel=1e-4, abs=1e-6) for k in mine)
    assert got.snapshot is not None and got.snapshot.step == 40
    assert got.snapshot.reconstructions.shape == want.snapshot.reconstructions.shape
    saved = runs.load_run(got.run_dir)
    assert saved.meta["status"] == "finished" and len(saved.epochs) == 2
    assert saved.meta["score"] == got.score and got.score["rows"] == got.score["iwae_rows"] == len(digits.test)
    assert got.score["neg_iwae"] == pytest.approx(want.score["neg_iwae"], rel=1e-4)  # the final score reached the page
    on_disk, model = saved.load_model().state_dict(), remote.model().state_dict()
    assert on_disk.keys() == model.keys() and all(torch.equal(on_disk[k], model[k]) for k in model)
    assert not remote.alive and torch.equal(remote.data.val, digits.val)  # the server's own copy draws the charts


def test_training_happens_in_the_worker_process(backend):
    job = backend.start(LONG)
    try:
        assert wait_until(lambda: job.view().step > 0)
        assert "vae-lab-training" not in {t.name for t in threading.enumerate()}
        assert job.worker is backend.worker() and job.worker.process.pid != os.getpid()
        assert any(os.listdir(f"/proc/{job.worker.process.pid}/task"))  # (its threads are there, not here)
    finally:
        job.stop()
        assert job.join(10)


def test_pause_gives_the_model_so_far_live_changes_apply_and_stop_saves(backend, tmp_path):
    job = backend.start(LONG, runs_dir=tmp_path)
    assert wait_until(lambda: job.view().step > 20)
    with pytest.raises(ValueError, match="lr: must be between"):
        job.set_lr(0.0)
    job.pause()

    def held() -> bool:  # paused, and the state sent is that of the last step (not read just before it)
        view = job.view()
        return view.status == Status.PAUSED and view.step_history[-1]["step"] == view.step
    assert wait_until(held)
    step = job.view().step  # the worker holds the job before its next step
    first, second = job.model(), job.model()
    assert first is not None and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                                        second.state_dict().values()))
    assert second is first  # built once per step reached, not on every call
    assert job.view().step == step
    job.set_lr(0.0123)
    job.set_beta(3.0)
    job.resume()
    assert wait_until(lambda: job.view().step > step)  # the changes can show before the first step after resume
    assert wait_until(lambda: job.view().lr == pytest.approx(0.0123) and job.view().beta_now == 3.0)
    # both changes applied together, before the first step after the pause: no step was taken while paused
    assert job.view().live_changes == ({"step": step, "lr": 0.0123, "lr_was": LONG.lr, "beta": 3.0,
                                        "beta_was": LONG.beta},)
    assert job.view().status == Status.RUNNING
    job.stop()
    assert job.join(10)
    view = job.view()
    assert view.status == Status.STOPPED and view.message == "Stopped by the user."
    saved = runs.load_run(view.run_dir)
    assert saved.meta["status"] == "stopped" and saved.meta["live_changes"] == [dict(view.live_changes[0])]
    assert job.model() is not first  # trained on since the pause: a new model with the final weights


def test_an_upload_is_sent_to_the_worker(backend, digits):
    upload = type(digits)(**{**digits.__dict__, "name": "upload:mine.npz", "train": digits.train[:200],
                             "train_labels": digits.train_labels[:200]})
    job = backend.start(SMALL.replace(dataset="upload:mine.npz"), upload)
    assert job.join(60) and job.view().status == Status.FINISHED, job.view().message
    assert job.view().total_steps == 2 * 4 and job.data is upload  # 200 samples in batches of 64


@pytest.mark.slow
def test_the_worker_has_its_own_queue_and_limits(monkeypatch):
    too_long = LONG.replace(epochs=500)  # valid here, before the lower cap
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "1")  # read by the new worker process
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "450")
    backend = ProcessBackend()
    try:
        refused = backend.start(too_long)
        assert refused.join(20) and refused.view().status == Status.FAILED
        assert refused.view().message == "Training failed: epochs: must be between 1 and 450, got 500"
        first, second = backend.start(LONG), backend.start(LONG)
        try:
            assert wait_until(lambda: first.view().status == Status.RUNNING and second.view().queue_position == 1)
            second.stop()
            assert second.join(10) and second.view().status == Status.STOPPED and second.view().step == 0
        finally:
            first.stop()
            assert first.join(10)
    finally:
        backend.close()


@pytest.mark.slow
def test_a_dead_worker_fails_its_jobs_with_a_message_and_the_next_job_gets_a_new_one(digits):
    backend = ProcessBackend()
    try:
        job = backend.start(LONG)
        assert wait_until(lambda: job.view().step > 0)
        dead = job.worker
        dead.process.kill()
        assert job.join(10) and job.view().status == Status.FAILED
        assert "the training process ended unexpectedly (exit code -9)" in job.view().message
        assert not dead.alive and job.model() is None
        lost = RemoteJob(SMALL, None, owner="", worker=dead)  # sent to the dead worker: fails at once
        dead.submit(lost, None, None)
        assert lost.join(1) and lost.view().status == Status.FAILED and "ended unexpectedly" in lost.view().message
        late = backend.start(SMALL, digits)  # started after the death: a new worker trains it
        assert late.worker is not dead and late.worker.alive and backend.worker() is late.worker
        assert late.join(60) and late.view().status == Status.FINISHED, late.view().message
    finally:
        backend.close()


@pytest.mark.slow
def test_the_worker_ends_with_the_server():
    backend = ProcessBackend()
    job = backend.start(LONG)
    assert wait_until(lambda: job.view().step > 0)
    backend.close()
    assert job.worker.process.returncode == 0 and job.join(5)
    view = job.view()
    assert view.status == Status.STOPPED and view.message == "Stopped: the server shut down."  # sent before the end


def test_the_kind_of_backend_is_read_from_the_environment(monkeypatch):
    for raw, kind in (("", "process"), ("  ", "process"), ("process", "process"), ("threads", "threads"),
                      ("ray", "ray")):
        monkeypatch.setenv("VAE_LAB_TRAINER", raw)
        assert backends.kind() == kind
    monkeypatch.setenv("VAE_LAB_TRAINER", "gpu")
    with pytest.raises(ValueError, match="VAE_LAB_TRAINER must be one of process, threads, ray, got 'gpu'"):
        backends.kind()
    with pytest.raises(ValueError, match="VAE_LAB_TRAINER"):
        backends.backend()


def test_backend_makes_one_backend_of_the_kind_asked_for(monkeypatch):
    import sys

    import vae_core.jobs.process

    class FakeProcessBackend:  # the real one would start a worker process
        pass

    monkeypatch.setattr(backends, "_backends", {})
    monkeypatch.setattr(vae_core.jobs.process, "ProcessBackend", FakeProcessBackend)
    switch = sys.getswitchinterval()
    try:
        monkeypatch.setenv("VAE_LAB_TRAINER", "threads")
        threads = backends.backend()
        assert isinstance(threads, backends.ThreadBackend) and backends.backend() is threads
        assert sys.getswitchinterval() == pytest.approx(backends.SWITCH_INTERVAL)
        monkeypatch.setenv("VAE_LAB_TRAINER", "process")
        process = backends.backend()
        assert isinstance(process, FakeProcessBackend) and backends.backend() is process
    finally:
        sys.setswitchinterval(switch)


@pytest.mark.slow
def test_the_worker_trains_a_job_on_its_main_thread_and_one_started_meanwhile_on_another(digits, monkeypatch):
    """_serve runs here on pytest's main thread, as in a worker process; the first job gets the main thread and
    torch's threads (shared while a second job runs), the second a thread of its own and one torch thread."""
    monkeypatch.setattr(vae_core.jobs.job, "CORES", 2)
    seen: dict[int, set] = {1: set(), 2: set()}
    train_step = Trainer.train_step

    def recording(self, x):
        on_main = threading.current_thread() is threading.main_thread()
        seen[self.config.seed].add((on_main, torch.get_num_threads()))
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", recording)
    inbox, to_worker = Pipe(duplex=False)
    from_worker, outbox = Pipe(duplex=False)
    updates: dict[str, list] = {"1": [], "2": []}  # job id -> the Progress messages it was sent
    reached: list[bool] = []

    def server() -> None:
        def send(*message):
            to_worker.send_bytes(pickle.dumps(message))

        def latest(job_id):
            """The job's state as last sent."""
            while from_worker.poll(0.05):
                kind, key, value = pickle.loads(from_worker.recv_bytes())
                updates[key].append(value)
            return updates[job_id][-1].state if updates[job_id] else None

        def step(job_id):
            state = latest(job_id)
            return state.step if state else 0

        def ended(job_id):
            state = latest(job_id)
            return state is not None and state.status.ended

        try:
            send("start", "1", LONG.replace(seed=1).to_json(), digits, None, "", None, None)
            reached.append(wait_until(lambda: step("1") > 20))
            send("start", "2", LONG.replace(seed=2).to_json(), digits, None, "", None, None)
            reached.append(wait_until(lambda: step("2") > 0))
            steps = step("1")
            reached.append(wait_until(lambda: step("1") > steps + 20))  # beside the second job
            send("stop", "2")
            reached.append(wait_until(lambda: ended("2")))
            steps = step("1")
            reached.append(wait_until(lambda: step("1") > steps + 20))  # on its own again
            send("stop", "1")
            reached.append(wait_until(lambda: ended("1")))
        finally:
            send("quit", "")

    before = torch.get_num_threads()
    driver = threading.Thread(target=server)
    driver.start()
    try:
        _serve(inbox, outbox)
    finally:
        torch.set_num_threads(before)
    driver.join(5)
    assert reached == [True] * 6
    assert updates["1"][-1].state.status == Status.STOPPED and updates["2"][-1].state.status == Status.STOPPED
    assert updates["1"][-1].weights is not None  # an ended job's last message carries its final weights
    assert seen == {1: {(True, 2), (True, 1)}, 2: {(False, 1)}}
