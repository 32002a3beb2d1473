"""The background job: control from another thread, bounded history, failures, the slot queue."""

import math
import threading
import time
import types

import numpy as np
import pytest
import torch

import vae_core.job
from vae_core.config import OPTIMIZERS, TrainConfig
from vae_core.data import Dataset
from vae_core.job import TrainingJob
from vae_core.slots import SlotPool
from vae_core.snapshots import SnapshotMaker
from vae_core.train import Trainer

LONG = TrainConfig(epochs=200, batch_size=16, hidden=[256, 256])


def wait_for(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_stop_mid_epoch_returns_within_a_second_and_leaves_no_thread(digits):
    before = threading.active_count()
    job = TrainingJob(LONG, digits, pool=SlotPool(1)).start()
    assert wait_for(lambda: job.view().step > 30)
    t0 = time.monotonic()
    job.stop()
    assert job.join(1.0), "the job did not stop within a second"
    assert time.monotonic() - t0 < 1.0
    assert job.view().status == "stopped"
    assert wait_for(lambda: threading.active_count() <= before, 5)  # ends just after join (older ones may too)


def test_pause_holds_the_step_count_and_resume_continues(digits):
    job = TrainingJob(LONG, digits, pool=SlotPool(1)).start()
    assert wait_for(lambda: job.view().step > 5)
    job.pause()
    assert wait_for(lambda: job.view().status == "paused")
    held = job.view().step
    time.sleep(0.3)
    assert job.view().step == held
    job.resume()
    assert wait_for(lambda: job.view().step > held + 5)
    job.stop()
    assert job.join(2)


def test_live_lr_and_beta_changes_apply_from_the_next_step(digits):
    job = TrainingJob(LONG, digits, pool=SlotPool(1)).start()
    assert wait_for(lambda: job.view().step > 5)
    job.set_lr(1e-4)
    job.set_beta(3.0)
    assert wait_for(lambda: job.history.steps()[-1]["beta"] == 3.0)
    last = job.history.steps()[-1]
    applied = {k: v for change in job.live_changes for k, v in change.items() if k != "step"}
    assert math.isclose(last["lr"], 1e-4) and applied == {"lr": 1e-4, "beta": 3.0}  # on one step or two
    job.stop()
    assert job.join(2)


def test_history_is_thinned_to_its_budget(digits):
    job = TrainingJob(TrainConfig(epochs=6, batch_size=4, hidden=[16]), digits, pool=SlotPool(1), max_points=100)
    job.start()
    assert job.join(60)
    steps = job.history.steps()
    assert job.view().step > 1800 and len(steps) <= 100
    assert steps[-1]["step"] > 0.9 * job.view().step  # thinning keeps the whole span
    gaps = {b["step"] - a["step"] for a, b in zip(steps, steps[1:])}
    assert len(gaps) == 1


def test_snapshots_carry_what_the_ui_draws(digits):
    job = TrainingJob(TrainConfig(epochs=2, latent_dim=5), digits, pool=SlotPool(1)).start()
    assert job.join(30)
    snap = job.view().snapshot
    assert snap.reconstructions.shape == snap.originals.shape == (16, 1, 8, 8)
    assert snap.samples.shape == (16, 1, 8, 8) and 0 <= snap.samples.min() and snap.samples.max() <= 1
    assert snap.latent_mu.shape == (len(digits.val), 5) and snap.latent_2d.shape == (len(digits.val), 2)
    assert snap.labels.shape == (len(digits.val),) and snap.kl_per_dim.shape == (5,)
    assert snap.epoch == 2 and 0 <= snap.active_units <= 5


def test_a_snapshot_from_the_validation_pass_equals_one_that_encodes_its_points(digits, monkeypatch):
    trainer = Trainer(TrainConfig(latent_dim=5), digits)
    for x in trainer.batches():
        trainer.train_step(x)
    trainer.evaluate(digits.val)
    maker = SnapshotMaker(digits.val, digits.val_labels, 5, seed=0)
    encoded = maker.take(trainer.model, trainer.step, 1)
    monkeypatch.setattr(trainer.model, "encode", lambda x: pytest.fail("encoded the points again"))
    reused = maker.take(trainer.model, trainer.step, 1, trainer.posterior)
    for field in ("latent_mu", "latent_logvar", "latent_2d", "kl_per_dim", "reconstructions", "samples"):
        np.testing.assert_allclose(getattr(reused, field), getattr(encoded, field), atol=1e-6)
    assert reused.active_units == encoded.active_units
    with pytest.raises(pytest.fail.Exception, match="encoded the points again"):  # a posterior of another step
        maker.take(trainer.model, trainer.step + 1, 1, trainer.posterior)
    monkeypatch.undo()
    trainer.load_weights(trainer.weights())  # other weights (the best epoch's, say): the posterior is stale
    assert trainer.posterior is None
    trainer.evaluate(digits.val)
    trainer.train_step(digits.train[:32])  # a step on: stale too
    assert trainer.posterior is None


def test_a_job_encodes_the_snapshot_points_only_between_validation_passes(digits, monkeypatch):
    takes, real = [], SnapshotMaker.take

    def take(maker, model, step, epoch, posterior=None):
        takes.append((step, posterior is not None and posterior.step == step))
        return real(maker, model, step, epoch, posterior)

    monkeypatch.setattr(SnapshotMaker, "take", take)
    monkeypatch.setattr(vae_core.job, "SNAPSHOT_SHARE", 1.0)  # no time budget: a snapshot whenever one may be taken
    job = TrainingJob(TrainConfig(epochs=3), digits, pool=SlotPool(1), snapshot_interval=0)
    job.run()
    steps_per_epoch = job.trainer.steps_per_epoch
    assert takes[0] == (0, False)  # the untrained model's
    ends = [step for step, reused in takes if reused]
    assert set(ends) == {steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch}  # every epoch's end, reused
    assert all(step % steps_per_epoch for step, reused in takes[1:] if not reused)  # the rest within epochs
    assert job.view().snapshot.step == 3 * steps_per_epoch


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_learning_rate_of_1000_fails_with_a_message_and_the_last_good_weights(digits, optimizer):
    config = TrainConfig(lr=1e3, optimizer=optimizer, epochs=5)
    job = TrainingJob(config, digits, pool=SlotPool(1)).start()
    assert job.join(30)
    view = job.view()
    assert view.status == "failed" and "learning rate (1000)" in view.message, view.message
    assert view.epoch == 0 and not view.epoch_history  # it diverges within the first epoch
    initial = Trainer(config, digits).weights()  # the last good weights: those before the first epoch
    assert all(torch.equal(initial[k], v) for k, v in job.trainer.weights().items())


def test_a_loss_spike_the_run_recovers_from_is_not_divergence(digits):
    # Adam at LR 0.1 on these digits: the loss jumps to about 850 times its first value, then recovers.
    job = TrainingJob(TrainConfig(lr=0.1, epochs=3), digits, pool=SlotPool(1)).start()
    assert job.join(30)
    losses = [row["loss"] for row in job.history.steps()]
    assert max(losses) > 100 * losses[0] and job.view().status == "finished", job.view().message


def test_with_a_limit_of_one_two_jobs_run_one_after_the_other(digits):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_for(lambda: first.view().status == "running")
    second = TrainingJob(TrainConfig(epochs=1), digits, pool=pool).start()
    assert wait_for(lambda: second.view().queue_position == 1)
    time.sleep(0.3)
    assert second.view().status == "queued" and second.view().step == 0
    first.stop()
    assert first.join(2)
    assert second.join(30) and second.view().status == "finished"


def test_a_queued_job_can_be_stopped_before_it_starts(digits):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool).start()
    second = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_for(lambda: second.view().queue_position == 1)
    second.stop()
    assert second.join(2) and second.view().status == "stopped"
    first.stop()
    assert first.join(2)


def test_a_job_paused_in_the_queue_takes_its_slot_paused_and_trains_on_resume(digits):
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    job = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_for(lambda: job.view().queue_position == 1)
    job.pause()
    pool.release(holder)
    assert wait_for(lambda: job.view().status == "paused")
    time.sleep(0.2)
    assert job.view().step == 0
    job.resume()
    assert wait_for(lambda: job.view().step > 0)
    job.stop()
    assert job.join(5)


def test_a_paused_job_gives_its_slot_to_the_queue_and_queues_again_on_resume(digits):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_for(lambda: first.view().step > 0)
    second = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_for(lambda: second.view().queue_position == 1)
    first.pause()
    assert wait_for(lambda: second.view().step > 0) and first.view().status == "paused"
    assert pool.running == 1  # the second's: the paused job gave its own back
    first.resume()
    assert wait_for(lambda: first.view().status == "queued" and first.view().queue_position == 1)
    held = first.view().step
    first.pause()  # paused again while it waits: it keeps its place, and holds on once it has the slot
    time.sleep(0.2)
    assert first.view().step == held and first.view().eta is not None  # the ETA stays through the wait
    second.stop()
    assert second.join(5)
    assert wait_for(lambda: first.view().status == "paused") and pool.running == 0
    time.sleep(0.2)
    assert first.view().step == held
    first.resume()
    assert wait_for(lambda: first.view().status == "running" and first.view().step > held)
    first.pause()
    assert wait_for(lambda: first.view().status == "paused")
    first.stop()  # while paused
    assert first.join(5) and first.view().status == "stopped"


def test_the_eta_follows_the_pace_of_training_not_the_wait_before_it(digits, monkeypatch):
    """On a fake clock: 100 s queued and loading, a first step of 50 s (the warm-up), then 1 s a step."""
    clock, etas = [0.0], []
    monkeypatch.setattr(vae_core.job, "time", types.SimpleNamespace(perf_counter=lambda: clock[0],
                                                                     strftime=time.strftime))  # the job's only
    real_step = Trainer.train_step

    def step(trainer, x):
        etas.append((trainer.step, job.view().eta))  # the ETA the page shows before this step
        clock[0] += 50.0 if trainer.step == 0 else 1.0
        return real_step(trainer, x)

    monkeypatch.setattr(Trainer, "train_step", step)
    job = TrainingJob(TrainConfig(epochs=2, batch_size=128), digits, pool=SlotPool(1))
    job.start(lambda run: (clock.__setitem__(0, 100.0), run()))
    total = job.view().total_steps
    assert job.view().status == "finished" and total == 2 * math.ceil(len(digits.train) / 128)
    assert [eta for done, eta in etas[:2]] == [None, None]  # no pace yet before the second step
    assert all(eta == pytest.approx(total - done) for done, eta in etas[2:])


def test_jobs_queue_in_the_order_they_start_whichever_thread_gets_there_first(digits):
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    first = TrainingJob(LONG, digits, pool=pool).start(lambda run: threading.Timer(0.5, run).start())
    second = TrainingJob(LONG, digits, pool=pool).start()  # its thread asks for the slot first
    try:
        assert (first.view().queue_position, second.view().queue_position) == (1, 2)
        time.sleep(0.6)
        pool.release(holder)
        assert wait_for(lambda: first.view().status == "running" and second.view().queue_position == 1)
    finally:
        for job in (first, second):
            job.stop()
            assert job.join(5)


def test_a_job_that_fails_before_its_turn_gives_its_place_up():
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    job = TrainingJob(TrainConfig(dataset="no-such-set"), pool=pool).start()
    assert job.join(10) and job.view().status == "failed"
    assert pool.position(job) == 0 and job.view().queue_position == 0
    pool.release(holder)


def test_an_unknown_dataset_fails_with_the_data_message():
    job = TrainingJob(TrainConfig(dataset="no-such-set"), pool=SlotPool(1)).start()
    assert job.join(10)
    assert job.view().status == "failed" and "no-such-set" in job.view().message


def test_incompatible_settings_fail_with_the_field_name():
    job = TrainingJob(TrainConfig(dataset="moons", recon_loss="bce"), pool=SlotPool(1)).start()
    assert job.join(10)
    assert job.view().status == "failed" and "recon_loss" in job.view().message


def test_stop_during_the_end_of_epoch_evaluation_returns_within_a_second(digits, monkeypatch):
    import vae_core.train

    evaluating, real = threading.Event(), vae_core.train.reconstruction_nll

    def slow(*args, **kwargs):  # the evaluation's reconstruction term only; training steps do not use this name
        evaluating.set()
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(vae_core.train, "reconstruction_nll", slow)
    big_val = digits.train.repeat(8, 1, 1, 1)  # 10,056 images: 10 chunks, 3 s of (slowed) evaluation
    data = Dataset("digits", "image", digits.train[:64], big_val, digits.test, None, None, None, None)
    before = threading.active_count()
    job = TrainingJob(TrainConfig(epochs=3, hidden=[16]), data, pool=SlotPool(1)).start()
    assert evaluating.wait(10)
    t0 = time.monotonic()
    job.stop()
    assert job.join(1.0), "the job did not stop within a second of evaluating"
    assert time.monotonic() - t0 < 1.0
    assert job.view().status == "stopped" and job.view().epoch_history == []
    assert wait_for(lambda: threading.active_count() <= before, 5)  # ends just after join (older ones may too)


def test_stop_while_waiting_for_the_data_returns_within_a_second(monkeypatch, tmp_path):
    from vae_core.data import registry

    lock = registry._locks["mnist"]  # held as by another session's long download of the same dataset
    lock.acquire()
    try:
        job = TrainingJob(TrainConfig(dataset="mnist"), data_dir=tmp_path, pool=SlotPool(1)).start()
        time.sleep(0.3)
        assert job.alive and job.view().status == "queued"
        t0 = time.monotonic()
        job.stop()
        assert job.join(1.0) and time.monotonic() - t0 < 1.0
    finally:
        lock.release()
    assert job.view().status == "stopped" and job.view().message == "Stopped before it started."


def _record_threads(monkeypatch) -> list[tuple[str, int]]:
    """(thread name, torch's intra-op threads) at every training step from now on."""
    seen, train_step = [], Trainer.train_step

    def recording(self, x):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", recording)
    return seen


def test_a_job_on_a_thread_of_its_own_trains_on_one_torch_thread(digits, monkeypatch):
    monkeypatch.setattr(vae_core.job, "CORES", 4)
    seen = _record_threads(monkeypatch)
    before = torch.get_num_threads()
    config = TrainConfig(architecture="conv", hidden=[4], epochs=1, batch_size=256)
    assert TrainingJob(config, digits, pool=SlotPool(1)).start().join(30)
    assert set(seen) == {("vae-lab-training", 1)}
    assert torch.get_num_threads() == before  # this thread's count is its own


def test_a_job_on_the_main_thread_shares_the_cores_with_the_jobs_running(digits, monkeypatch):
    monkeypatch.setattr(vae_core.job, "CORES", 4)
    seen = _record_threads(monkeypatch)
    pool, other = SlotPool(2), object()
    assert pool.acquire(other, threading.Event())
    train_step = Trainer.train_step

    def other_ends_at_step_3(self, x):
        if self.step == 3:
            pool.release(other)
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", other_ends_at_step_3)
    before = torch.get_num_threads()
    job = TrainingJob(TrainConfig(hidden=[4], epochs=1, batch_size=128), digits, pool=pool)
    try:
        job.run()
    finally:
        torch.set_num_threads(before)
    assert job.view().status == "finished" and not job.alive and job.join(0)
    assert [threads for _, threads in seen] == [2] * 4 + [4] * (len(seen) - 4)
    assert {name for name, _ in seen} == {"MainThread"}
