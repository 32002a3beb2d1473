"""Faults: NaN/Inf mid-run, Start/Stop hammering, the process killed mid-run, a full or read-only disk.

Each fault ends the run with a plain message (a loss gone NaN or infinite as Status.DIVERGED, an error
in the maths as Status.FAILED); the weights kept are the last good ones; the run folder on disk always
loads (config, metrics up to the last finished epoch, the weights of it).
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_safetensors

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.sessions import SessionRegistry
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status, Trainer
from polling import wait_until
from students import student
from reliability_helpers import REPO, training_threads

SMALL = TrainConfig(epochs=4, hidden=[32], batch_size=64)
LONG = TrainConfig(epochs=400, hidden=[32], batch_size=16)


def _private_copy(data: Dataset) -> Dataset:
    """A copy of the shared digits whose tensors a test may poison."""
    return Dataset(data.name, data.kind, data.train.clone(), data.val.clone(), data.test.clone(),
                   data.train_labels, data.val_labels, data.test_labels, data.class_names)


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- NaN and Inf mid-run ----------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["NaN weights after a step", "Inf in later training batches",
                                   "NaN in the validation data"])
def test_nan_or_inf_mid_run_diverges_with_a_message_and_keeps_the_last_good_epoch(digits, tmp_path,
                                                                                   monkeypatch, fault):
    data = _private_copy(digits)
    good_epochs = 2
    saved = {}
    end_epoch = Trainer.end_epoch

    def end_epoch_then_poison(self, val_loss):
        end_epoch(self, val_loss)
        if self.epoch == good_epochs:
            saved["weights"] = {k: v.clone() for k, v in self.model.state_dict().items()}
            if fault == "Inf in later training batches":
                data.train[::7] = math.inf
            elif fault == "NaN in the validation data":
                data.val[0, 0, 0, 0] = math.nan

    train_step = Trainer.train_step

    def train_step_that_breaks(self, x):
        row = train_step(self, x)
        if fault == "NaN weights after a step" and self.epoch == good_epochs and self.step % 10 == 3:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.fill_(math.nan)
            row["loss"] = math.nan
        return row

    monkeypatch.setattr(Trainer, "end_epoch", end_epoch_then_poison)
    monkeypatch.setattr(Trainer, "train_step", train_step_that_breaks)
    job = TrainingJob(SMALL.replace(epochs=6), data, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(60)
    view = job.view()
    assert view.status == Status.DIVERGED, view.message
    assert "NaN or infinite" in view.message and "last good epoch" in view.message
    assert len(view.epoch_history) == good_epochs
    kept = job.model().state_dict()
    assert all(torch.isfinite(t).all() for t in kept.values() if t.is_floating_point())
    assert _weights_equal(kept, saved["weights"])
    run = runs.load_run(view.run_dir)
    assert run.meta["status"] == Status.DIVERGED and run.meta["epochs_done"] == good_epochs == len(run.epochs)
    on_disk = load_safetensors((Path(view.run_dir) / "weights.safetensors").read_bytes())
    assert _weights_equal(on_disk, saved["weights"])
    run.load_model()


# --- Start and Stop pressed many times ---------------------------------------------------------------
def test_start_and_stop_hammered_keep_one_job_per_session_and_leave_no_thread(digits):
    before = len(training_threads())
    registry = SessionRegistry(grace=60, reaper=False)
    pool = SlotPool(2)
    started: dict[str, list[TrainingJob]] = {"a": [], "b": []}
    worst = 0
    for press in range(60):
        session = "ab"[press % 2]
        if press % 3 == 2:
            current = registry.get(session)
            if current is not None:
                current.stop()
        else:
            job = TrainingJob(LONG, digits, pool=pool)
            started[session].append(job)
            registry.start(session, job.start)
        for name, jobs in started.items():
            live = [j for j in jobs if j.alive and not j._stop.is_set()]
            assert len(live) <= 1 and (not live or live[0] is registry.get(name))
            worst = max(worst, len(live))
        time.sleep(0.005)  # the pace of a fast clicker: the jobs get to train between presses
    assert worst == 1
    for session in "ab":
        registry.clear(session)
    everything = [j for jobs in started.values() for j in jobs]
    assert all(j.join(20) for j in everything), "a stopped job's thread is still running"
    assert {j.view().status for j in everything} <= {Status.STOPPED}
    assert wait_until(lambda: len(training_threads()) <= before)  # a thread ends just after its job's join
    assert pool.running == 0 and all(pool.position(j) == 0 for j in everything)


@pytest.mark.slow
def test_start_and_stop_clicked_quickly_on_the_train_page_leave_one_job_and_no_thread(new_app):
    before = len(training_threads())
    at, other = new_app(), new_app()
    at.run()
    other.run()
    at.sidebar.number_input(key="cfg_epochs").set_value(400).run()
    from vae_core.jobs import sessions
    mine = lambda app: sessions.registry().get(student(app))  # noqa: E731
    seen = []
    for click in range(8):
        at.button(key="start").click().run()
        if click % 2:  # the even click's run still trains: Restart asks first
            at.button(key="confirm_yes").click().run()
        seen.append(mine(at))
        if click % 2:
            at.button(key="stop").click().run()
        assert not at.exception
        # Read through the Job interface only (the job may train in another process): every job replaced
        # by a new Start, or stopped, ends; the session's current one is the only one that may still train.
        current = mine(at)
        assert current is seen[-1] is not None
        ended = [j for j in set(seen) if j is not current or click % 2]
        assert all(j.join(20) for j in ended), "a replaced or stopped job still trains"
        assert all(j.view().status == Status.STOPPED for j in ended), [j.view().status for j in ended]
        assert sum(j.alive for j in set(seen)) <= 1
    assert mine(other) is None and other.button(key="stop").disabled
    at.run()  # the last run has ended: Reset clears at once
    at.button(key="reset").click().run()
    assert mine(at) is None
    assert all(j.join(20) for j in set(seen))
    assert wait_until(lambda: len(training_threads()) <= before)


# --- the process killed mid-run ----------------------------------------------------------------------
def _epochs_on_disk(runs_dir: Path) -> int:
    for meta in runs_dir.glob("*/meta.json"):
        try:
            return json.loads(meta.read_text())["epochs_done"]
        except (OSError, ValueError, KeyError):
            return 0
    return 0


@pytest.mark.slow
def test_killed_processes_leave_consistent_run_folders(tmp_path):
    """Two CLI trainings, SIGKILLed after 3 and after 8 finished epochs (mid-epoch or mid-save)."""
    kills = {3: tmp_path / "runs3", 8: tmp_path / "runs8"}
    processes = {after: subprocess.Popen(
        [sys.executable, "-m", "vae_core", "train", "--dataset", "digits", "--epochs", "500", "--hidden", "32",
         "--batch-size", "64", "--runs-dir", str(runs_dir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        for after, runs_dir in kills.items()}
    try:
        for after, runs_dir in kills.items():
            process = processes[after]
            assert wait_until(lambda: _epochs_on_disk(runs_dir) >= after or process.poll() is not None, 60, 0.001)
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            process.send_signal(signal.SIGKILL)
    finally:
        for process in processes.values():
            process.kill()
            process.wait(10)
            process.stderr.close()
    for after, runs_dir in kills.items():
        (folder,) = list(runs_dir.iterdir())
        run = runs.load_run(folder)
        assert run.config.epochs == 500 and run.config.hidden == [32]
        assert run.meta["status"] == "running" and run.meta["epochs_done"] >= after
        assert len(run.epochs) == run.meta["epochs_done"]
        assert [int(r["epoch"]) for r in run.epochs] == list(range(1, run.meta["epochs_done"] + 1))
        model = run.load_model()
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert runs.list_runs(runs_dir)[0].name == folder.name


def test_a_crash_between_the_metrics_and_meta_writes_still_loads(tmp_path, digits):
    job = TrainingJob(SMALL.replace(epochs=2), digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(30)
    folder = Path(job.view().run_dir)
    extra = job.history.epochs() + [{**job.history.epochs()[-1], "epoch": 3}]
    real_write = runs.write_atomic

    def die_before_meta(path, data):
        if path.name == "meta.json":
            raise KeyboardInterrupt("the process died here")
        real_write(path, data)

    runs.write_atomic = die_before_meta
    try:
        with pytest.raises(KeyboardInterrupt):
            runs.save_progress(folder, {}, extra, [], job.trainer.weights())
    finally:
        runs.write_atomic = real_write
    run = runs.load_run(folder)
    assert run.meta["epochs_done"] == 2 and len(run.epochs) == 2
    run.load_model()


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, stage):
    target = tmp_path / "metrics.csv"
    target.write_bytes(b"old")
    boom = OSError(errno.ENOSPC, "No space left on device")
    if stage == "write":
        monkeypatch.setattr(os, "fdopen", lambda fd, mode: _FailingFile(fd, boom))
    elif stage == "fsync":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(boom))
    else:
        monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(boom))
    with pytest.raises(OSError):
        runs.write_atomic(target, b"new" * 1000)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


class _FailingFile:
    def __init__(self, fd, error):
        self.fd, self.error = fd, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def write(self, data):
        raise self.error


# --- a full disk, a read-only or missing runs folder ------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("fault", ["runs dir is a file", "disk full from the start", "read-only folder",
                                   "disk fills mid-run"])
def test_a_run_that_cannot_be_saved_still_trains_and_says_so(digits, tmp_path, monkeypatch, fault):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    if fault == "runs dir is a file":
        runs_dir.rmdir()
        runs_dir.write_text("not a folder")
    elif fault == "disk full from the start":
        monkeypatch.setattr(runs.os, "replace", _enospc)
    elif fault == "read-only folder":
        real_mkdir = Path.mkdir

        def read_only_mkdir(self, *args, **kwargs):
            if self.parent == runs_dir:
                raise OSError(errno.EROFS, "Read-only file system")
            return real_mkdir(self, *args, **kwargs)
        monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    else:
        real_replace, metas = os.replace, []

        def fills_up(src, dst):
            if len(metas) >= 2:  # two epochs saved whole: meta.json is each epoch's last file
                _enospc()
            real_replace(src, dst)
            metas.extend([dst] if Path(dst).name == "meta.json" else [])
        monkeypatch.setattr(runs.os, "replace", fills_up)
    job = TrainingJob(SMALL, digits, runs_dir=runs_dir, pool=SlotPool(1)).start()
    assert job.join(60)
    view = job.view()
    assert view.status == Status.FINISHED
    assert view.message.startswith("Finished.") and "Could not save the run" in view.message
    assert view.message.count("Could not save") == 1
    assert len(view.epoch_history) == SMALL.epochs and view.snapshot is not None
    model = job.model()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if fault == "disk fills mid-run":  # what was saved before the disk filled is a consistent run
        monkeypatch.undo()
        run = runs.load_run(view.run_dir)
        assert run.meta["epochs_done"] == len(run.epochs) == 2
        run.load_model()
    elif fault != "runs dir is a file":
        assert not [p for p in runs_dir.rglob("*") if p.is_file()]


def test_a_disk_that_frees_up_again_ends_with_a_complete_run(digits, tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def full_once(src, dst):
        calls.append(dst)
        if len(calls) == 6:
            _enospc()
        real_replace(src, dst)
    monkeypatch.setattr(runs.os, "replace", full_once)
    job = TrainingJob(SMALL, digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(60) and job.view().message == "Finished."
    run = runs.load_run(job.view().run_dir)
    assert run.meta["status"] == Status.FINISHED and len(run.epochs) == run.meta["epochs_done"] == SMALL.epochs


def test_a_failure_after_some_epochs_is_recorded_in_the_run_folder(digits, tmp_path, monkeypatch):
    real = Trainer.evaluate

    def evaluate_then_fail(self, x, should_stop=lambda: False):
        if self.epoch == 2:
            raise RuntimeError("simulated out-of-memory")
        return real(self, x, should_stop)
    monkeypatch.setattr(Trainer, "evaluate", evaluate_then_fail)
    job = TrainingJob(SMALL, digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(60)
    assert job.view().status == Status.FAILED and "simulated out-of-memory" in job.view().message
    run = runs.load_run(job.view().run_dir)
    assert run.meta["status"] == Status.FAILED and run.meta["epochs_done"] == len(run.epochs) == 2
    run.load_model()
