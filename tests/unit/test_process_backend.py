"""The trainer process: a RemoteJob trains exactly as a TrainingJob does, in another process, and is
controlled and observed from the server the same way; a dead trainer fails its jobs with a message."""

from __future__ import annotations

import os
import pickle
import threading
import time
from multiprocessing import Pipe

import pytest
import torch

import vae_core.job
from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.job import FAILED, FINISHED, PAUSED, RUNNING, STOPPED, TrainingJob
from vae_core.slots import SlotPool
from vae_core.train import Trainer
from vae_core.trainer_process import RemoteJob, TrainerProcess, _serve, use_trainer_process

SMALL = TrainConfig(epochs=2, hidden=[32], latent_dim=2, batch_size=64)
LONG = SMALL.replace(epochs=400, batch_size=16)


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(scope="module")
def trainer():
    process = TrainerProcess()
    yield process
    process.close()


def test_a_remote_job_trains_as_a_training_job_does_and_saves_its_run(trainer, digits, tmp_path):
    remote = RemoteJob(SMALL, runs_dir=tmp_path / "remote", trainer=trainer).start()
    here = TrainingJob(SMALL, digits, runs_dir=tmp_path / "here", pool=SlotPool(1)).start()
    assert remote.join(60) and here.join(60)
    got, want = remote.view(), here.view()
    assert got.status == FINISHED and got.message == "Finished."
    assert (got.step, got.total_steps, got.epoch) == (want.step, want.total_steps, want.epoch) == (40, 40, 2)
    assert [r["step"] for r in got.step_history] == [r["step"] for r in want.step_history]
    for mine, theirs in zip(got.step_history + got.epoch_history, want.step_history + want.epoch_history):
        assert mine.keys() == theirs.keys()
        assert all(mine[k] == pytest.approx(theirs[k], rel=1e-4, abs=1e-6) for k in mine)
    assert got.snapshot is not None and got.snapshot.step == 40
    assert got.snapshot.reconstructions.shape == want.snapshot.reconstructions.shape
    saved = runs.load_run(got.run_dir)
    assert saved.meta["status"] == FINISHED and len(saved.epochs) == 2
    on_disk, model = saved.load_model().state_dict(), remote.model().state_dict()
    assert on_disk.keys() == model.keys() and all(torch.equal(on_disk[k], model[k]) for k in model)
    assert not remote.alive and torch.equal(remote.data.val, digits.val)  # the server's own copy draws the charts


def test_training_happens_in_the_other_process(trainer):
    job = RemoteJob(LONG, trainer=trainer).start()
    try:
        assert wait_for(lambda: job.view().step > 0)
        assert "vae-lab-training" not in {t.name for t in threading.enumerate()}
        assert any(os.listdir(f"/proc/{trainer.process.pid}/task"))  # (its threads are there, not here)
    finally:
        job.stop()
        assert job.join(10)


def test_pause_gives_the_model_so_far_live_changes_apply_and_stop_saves(trainer, tmp_path):
    job = RemoteJob(LONG, runs_dir=tmp_path, trainer=trainer).start()
    assert wait_for(lambda: job.view().step > 20)
    with pytest.raises(ValueError, match="lr: must be between"):
        job.set_lr(0.0)
    job.pause()
    assert wait_for(lambda: job.status == PAUSED)
    step = job.view().step
    first, second = job.model(), job.model()
    assert first is not None and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                                        second.state_dict().values()))
    assert second is first  # built once per step reached, not on every call
    time.sleep(0.3)
    assert job.view().step == step  # paused: no step taken
    job.set_lr(0.0123)
    job.set_beta(3.0)
    job.resume()
    assert wait_for(lambda: job.view().step > step)  # the changes can show before the first step after resume
    assert wait_for(lambda: job.view().lr == pytest.approx(0.0123) and job.view().beta == 3.0)
    assert job.status == RUNNING
    job.stop()
    assert job.join(10) and job.status == STOPPED and job.message == "Stopped by the user."
    assert runs.load_run(job.run_dir).meta["status"] == STOPPED
    assert job.model() is not first  # trained on since the pause: a new model with the final weights


def test_an_upload_is_sent_to_the_trainer(trainer, digits):
    upload = type(digits)(**{**digits.__dict__, "name": "upload:mine.npz", "train": digits.train[:200],
                                             "train_labels": digits.train_labels[:200]})
    job = RemoteJob(SMALL.replace(dataset="upload:mine.npz"), upload, trainer=trainer).start()
    assert job.join(60) and job.status == FINISHED, job.message
    assert job.view().total_steps == 2 * 4 and job.data is upload  # 200 samples in batches of 64


def test_the_trainer_has_its_own_queue_and_limits(monkeypatch):
    too_long = LONG.replace(epochs=500)  # valid here, before the lower cap
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "1")  # read by the new trainer process
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "450")
    trainer = TrainerProcess()
    refused = RemoteJob(too_long, trainer=trainer).start()
    assert refused.join(20) and refused.status == FAILED
    assert refused.message == "Training failed: epochs: must be between 1 and 450, got 500"
    first, second = RemoteJob(LONG, trainer=trainer).start(), RemoteJob(LONG, trainer=trainer).start()
    try:
        assert wait_for(lambda: first.status == RUNNING and second.view().queue_position == 1)
        second.stop()
        assert second.join(10) and second.status == STOPPED and second.view().step == 0
    finally:
        first.stop()
        assert first.join(10)
        trainer.close()


def test_a_dead_trainer_fails_its_jobs_with_a_message_and_the_next_one_is_new():
    trainer = TrainerProcess()
    job = RemoteJob(LONG, trainer=trainer).start()
    assert wait_for(lambda: job.view().step > 0)
    trainer.process.kill()
    assert job.join(10) and job.status == FAILED
    assert "the training process ended unexpectedly (exit code -9)" in job.message
    assert not trainer.alive and job.model() is None
    late = RemoteJob(SMALL, trainer=trainer).start()  # started after the death: fails at once, with the message
    assert late.join(1) and late.status == FAILED and "ended unexpectedly" in late.message


def test_the_trainer_ends_with_the_server():
    trainer = TrainerProcess()
    job = RemoteJob(LONG, trainer=trainer).start()
    assert wait_for(lambda: job.view().step > 0)
    trainer.close()
    assert trainer.process.returncode == 0 and job.join(5)
    assert job.status == STOPPED and job.message == "Stopped: the server shut down."  # sent before the end


def test_the_choice_of_trainer_is_read_from_the_environment(monkeypatch):
    for raw, process in (("", True), ("process", True), ("threads", False)):
        monkeypatch.setenv("VAE_LAB_TRAINER", raw)
        assert use_trainer_process() is process
    monkeypatch.setenv("VAE_LAB_TRAINER", "gpu")
    with pytest.raises(ValueError, match="VAE_LAB_TRAINER must be 'process' or 'threads'"):
        use_trainer_process()


def test_the_trainer_trains_a_job_on_its_main_thread_and_one_started_meanwhile_on_another(digits, monkeypatch):
    """_serve runs here on pytest's main thread, as in a trainer process; the first job gets the main thread and
    torch's threads (shared while a second job runs), the second a thread of its own and one torch thread."""
    monkeypatch.setattr(vae_core.job, "CORES", 2)
    seen: dict[int, set] = {1: set(), 2: set()}
    train_step = Trainer.train_step

    def recording(self, x):
        on_main = threading.current_thread() is threading.main_thread()
        seen[self.config.seed].add((on_main, torch.get_num_threads()))
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", recording)
    inbox, to_trainer = Pipe(duplex=False)
    from_trainer, outbox = Pipe(duplex=False)
    updates: dict[int, list[dict]] = {1: [], 2: []}
    reached: list[bool] = []

    def server() -> None:
        def send(*message):
            to_trainer.send_bytes(pickle.dumps(message))

        def latest(job_id):
            while from_trainer.poll(0.05):
                kind, key, value = pickle.loads(from_trainer.recv_bytes())
                updates[key].append(value)
            return updates[job_id][-1] if updates[job_id] else {"step": 0, "done": False}

        try:
            send("start", 1, LONG.replace(seed=1).to_json(), digits, None, None)
            reached.append(wait_for(lambda: latest(1)["step"] > 20))
            send("start", 2, LONG.replace(seed=2).to_json(), digits, None, None)
            reached.append(wait_for(lambda: latest(2)["step"] > 0))
            steps = latest(1)["step"]
            reached.append(wait_for(lambda: latest(1)["step"] > steps + 20))  # beside the second job
            send("stop", 2)
            reached.append(wait_for(lambda: latest(2)["done"]))
            steps = latest(1)["step"]
            reached.append(wait_for(lambda: latest(1)["step"] > steps + 20))  # on its own again
            send("stop", 1)
            reached.append(wait_for(lambda: latest(1)["done"]))
        finally:
            send("quit", 0)

    before = torch.get_num_threads()
    driver = threading.Thread(target=server)
    driver.start()
    try:
        _serve(inbox, outbox)
    finally:
        torch.set_num_threads(before)
    driver.join(5)
    assert reached == [True] * 6
    assert updates[1][-1]["status"] == STOPPED and updates[2][-1]["status"] == STOPPED
    assert seen == {1: {(True, 2), (True, 1)}, 2: {(False, 1)}}
