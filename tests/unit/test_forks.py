"""Checkpoints and forks: a fork from an epoch goes on exactly as the unbroken run did (optimisers, LR schedule,
early stopping's record and the random stream restored), a changed β shows after the fork only, the parent's
folder is never written, and forks that cannot be are refused in plain words."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from vae_core import checkpoints, forks, runs
from vae_core.checkpoints import Checkpoint
from vae_core.classroom import cards
from vae_core.config import TrainConfig
from vae_core.forks import ForkError
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status, Trainer
from vae_core.views import loss_chart

# Everything a checkpoint must carry for the fork to equal the unbroken run: an LR warm-up then plateau (two
# schedulers), a β warm-up, the adversarial critic and its optimiser, dropout and augmentation (the run's random
# stream), early stopping's record.
RICH = TrainConfig(epochs=6, hidden=[32, 16], batch_size=128, lr_schedule="plateau", lr_warmup_epochs=1,
                   lr_patience=0, beta_schedule="warmup", beta_warmup_epochs=2, adv_weight=0.1, dropout=0.1,
                   augment=True, aug_rotation=0.0, early_stopping=True, patience=5)


def train(config: TrainConfig, data, runs_dir: Path, fork: forks.Fork | None = None) -> TrainingJob:
    job = TrainingJob(config, data, runs_dir=runs_dir, pool=SlotPool(1), fork=fork).start()
    assert job.join(120) and job.status.completed, job.message
    return job


def folder_bytes(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def parent(digits, tmp_path_factory) -> runs.SavedRun:
    job = train(RICH, digits, tmp_path_factory.mktemp("runs"))
    return runs.load_run(job.run_dir)


def fork_run(parent: runs.SavedRun, config: TrainConfig, epoch: int, data, tmp_path: Path) -> TrainingJob:
    """Fork `parent` and train the fork to its end; the parent's folder is the same, byte for byte."""
    before = folder_bytes(parent.path)
    job = train(config, data, tmp_path, forks.prepare(parent, config, epoch))
    assert folder_bytes(parent.path) == before
    return job


def same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for mine, theirs in zip(a, b):
        keys = {k for k in mine.keys() & theirs.keys() if not k.startswith("test_")}
        assert keys and all(mine[k] == pytest.approx(theirs[k], rel=1e-6, abs=1e-9) for k in keys), (mine, theirs)


def test_a_fork_with_the_same_settings_goes_on_exactly_as_the_unbroken_run(parent, digits, tmp_path):
    assert forks.epochs_offered(parent) == [1, 2, 3, 4, 5, 6]  # a small run keeps every epoch
    job = fork_run(parent, RICH, 3, digits, tmp_path)
    fork = runs.load_run(job.run_dir)
    same_rows(fork.epochs, parent.epochs)  # 1–3 copied, 4–6 trained again: the same to float tolerance
    same_rows([r for r in fork.steps if r["step"] > 30], [r for r in parent.steps if r["step"] > 30])
    mine, theirs = fork.load_model().state_dict(), parent.load_model().state_dict()
    assert all(torch.allclose(mine[k], theirs[k], atol=1e-6) for k in theirs)
    assert fork.meta["fork"] == {"parent": parent.name, "title": cards.title(parent), "epoch": 3,
                                 "fresh_optimizer": False}
    assert fork.meta["live_changes"] == [{"step": 30, "fork": fork.meta["fork"]}]  # nothing else changed


def test_a_fork_that_raises_beta_differs_from_its_parent_after_the_fork_only(parent, digits, tmp_path):
    job = fork_run(parent, RICH.replace(beta=4.0), 3, digits, tmp_path)
    fork = runs.load_run(job.run_dir)
    same_rows(fork.epochs[:3], parent.epochs[:3])
    same_rows([r for r in fork.steps if r["step"] <= 30], [r for r in parent.steps if r["step"] <= 30])
    after = [(a["beta_now"], b["beta_now"]) for a, b in zip(fork.steps, parent.steps) if a["step"] > 30]
    assert after and all(mine == 4 * theirs for mine, theirs in after)  # the β warm-up's shape, at the new β
    assert all(a["val_kl"] < b["val_kl"] for a, b in zip(fork.epochs[3:], parent.epochs[3:]))
    change = fork.meta["live_changes"][0]
    assert (change["step"], change["beta"], change["beta_was"]) == (30, 4.0, 1.0)
    assert "forked from" in cards.label(fork) and "at epoch 3" in cards.label(fork)
    marks = loss_chart.events(fork.config, 10, fork.meta["live_changes"])
    assert [(m.step, m.text) for m in marks if m.step == 30] == [(30, "fork of epoch 3, β 1 → 4")]


def test_a_fork_can_lower_the_learning_rate_from_its_epoch_on(parent, digits, tmp_path):
    lr = RICH.lr / 10
    job = fork_run(parent, RICH.replace(lr=lr, epochs=5), 4, digits, tmp_path)
    steps = [r for r in job.history.steps() if r["step"] > 40]
    theirs = {r["step"]: r["lr"] for r in parent.steps}
    assert steps and all(r["lr"] == pytest.approx(theirs[r["step"]] / 10) for r in steps)
    assert len(job.history.epochs()) == 5 and job.live_changes[0]["lr_was"] == RICH.lr


def test_a_run_keeps_every_nth_epoch_within_the_cap_and_always_its_latest(digits, tmp_path, monkeypatch):
    config = TrainConfig(epochs=5, hidden=[16], batch_size=256)
    trainer = Trainer(config, digits)
    trainer.train_step(digits.train[:256])  # the optimiser's moments exist from the first step on
    size = checkpoints.take(trainer).nbytes
    monkeypatch.setattr(checkpoints, "KEEP_BYTES", -(-size * 5 // 2))  # room for 2.5 of the run's 5
    assert checkpoints.every(checkpoints.take(trainer), 5) == 2
    job = train(config, digits, tmp_path)
    assert checkpoints.kept(job.run_dir, 5) == [2, 4, 5]  # every second, and the latest
    assert checkpoints.kept(job.run_dir, 4) == [2, 4]  # meta.json's count is the record
    assert {p.name for p in (job.run_dir / checkpoints.FOLDER).iterdir()} == {
        f"epoch-000{e}.{kind}" for e in (2, 4, 5) for kind in ("json", "safetensors")}


def test_the_cap_keeps_every_second_epoch_of_the_default_digits_run(digits):
    trainer = Trainer(TrainConfig(), digits)  # 100k parameters and Adam's two moments: 1.2 MB an epoch
    trainer.train_step(digits.train[:32])
    one = checkpoints.take(trainer)
    assert 1.1e6 < one.nbytes < 1.3e6
    assert checkpoints.every(one, 30) == 2 and checkpoints.every(one, 16) == 1


def test_an_old_run_without_checkpoints_is_forked_from_its_end_with_a_fresh_optimiser(parent, digits, tmp_path):
    old = tmp_path / "old" / parent.name
    shutil.copytree(parent.path, old)
    shutil.rmtree(old / checkpoints.FOLDER)
    run = runs.load_run(old)
    assert forks.epochs_offered(run) == [6]
    with pytest.raises(ForkError, match="Epoch 3 is not one this run kept: pick one of 6"):
        forks.prepare(run, RICH.replace(epochs=8), 3)
    job = fork_run(run, RICH.replace(epochs=8, early_stopping=False), 6, digits, tmp_path / "new")
    fork = runs.load_run(job.run_dir)
    assert len(fork.epochs) == 8 and fork.meta["fork"]["fresh_optimizer"] and fork.meta["steps_done"] == 80
    same_rows(fork.epochs[:6], parent.epochs)


@pytest.mark.parametrize("change, epoch, words", [
    ({}, 0, "Epoch 0 is not one this run kept"),
    ({}, 7, "Epoch 7 is not one this run kept: pick one of 1, 2, 3, 4, 5, 6"),
    ({"epochs": 3}, 3, "must train past epoch 3: set its epochs above 3"),
    ({"latent_dim": 4}, 3, "latent_dim cannot change in a fork: it would change the model"),
    ({"hidden": [64, 16]}, 3, "hidden cannot change in a fork: it would change the model"),
    ({"optimizer": "sgd"}, 3, "optimizer cannot change in a fork: the optimiser, learning-rate schedule and"),
    ({"batch_size": 64}, 3, "batch_size cannot change in a fork"),
])
def test_forks_that_cannot_be_are_refused_in_plain_words(parent, change, epoch, words):
    with pytest.raises(ForkError, match=words):
        forks.prepare(parent, RICH.replace(**change), epoch)


def test_a_fork_of_a_cosine_schedule_keeps_its_epochs(parent, digits, tmp_path):
    cosine = dict(json.loads((parent.path / "config.json").read_text()), lr_schedule="cosine", lr_warmup_epochs=0.0)
    (parent_copy := tmp_path / parent.name).mkdir()
    for p in parent.path.iterdir():
        if p.is_file():
            shutil.copy(p, parent_copy)
    (parent_copy / "config.json").write_text(json.dumps(cosine))
    shutil.copytree(parent.path / checkpoints.FOLDER, parent_copy / checkpoints.FOLDER)
    with pytest.raises(ForkError, match="epochs cannot change in a fork of a run with the cosine"):
        forks.check(runs.load_run(parent_copy), TrainConfig.from_dict(cosine).replace(epochs=9), 3)


def test_damaged_checkpoints_are_refused_naming_the_file(parent, digits, tmp_path):
    copy = tmp_path / parent.name
    shutil.copytree(parent.path, copy)
    values = copy / checkpoints.FOLDER / "epoch-0002.json"
    values.write_text("{not json")
    with pytest.raises(runs.RunError, match=f"{parent.name}/checkpoints/epoch-0002 is damaged"):
        checkpoints.load(copy, 2)
    stored = json.loads((copy / checkpoints.FOLDER / "epoch-0003.json").read_text())
    stored["per_step"]["surprise"] = 1  # a schedule's state from a file never brings attributes of its own
    checkpoint = Checkpoint(checkpoints.load(copy, 3).tensors, stored)
    with pytest.raises(ValueError, match="the learning-rate schedule in the checkpoint are not of this run's kind"):
        checkpoints.restore(Trainer(RICH, digits), checkpoint)


def test_a_failed_restore_fails_the_fork_with_its_reason_and_leaves_no_run(parent, digits, tmp_path):
    fork = forks.prepare(parent, RICH, 3)
    broken = Checkpoint({k: v for k, v in fork.checkpoint.tensors.items() if not k.startswith("model/decoder")},
                        fork.checkpoint.values)
    job = TrainingJob(RICH, digits, runs_dir=tmp_path, pool=SlotPool(1),
                      fork=forks.Fork(fork.parent, fork.title, broken, fork.settings, fork.epochs, fork.steps, []))
    assert job.start().join(60) and job.status == Status.FAILED and "weights do not fit this model" in job.message
    assert not any(tmp_path.iterdir())


def test_a_fork_carries_the_parents_live_changes_up_to_the_fork_only(parent, tmp_path):
    copy = tmp_path / parent.name
    shutil.copytree(parent.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["live_changes"] = [{"step": 12, "beta": 2.0, "beta_was": 1.0}, {"step": 45, "lr": 0.001, "lr_was": 0.002},
                            "not a change"]
    (copy / "meta.json").write_text(json.dumps(meta))
    fork = forks.prepare(runs.load_run(copy), RICH, 3)
    assert fork.changes == [{"step": 12, "beta": 2.0, "beta_was": 1.0}]  # its curves up to step 30 show that one
