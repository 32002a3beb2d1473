"""The background job: control from another thread, bounded history, failures, the slot queue."""

import math
import threading

import numpy as np
import pytest
import torch

import vae_core.jobs.job
import vae_core.jobs.snapshots
from polling import wait_until
from vae_core import runs
from vae_core.config import OPTIMIZERS, TrainConfig
from vae_core.data import Dataset
from vae_core.jobs.clock import JobClock
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.snapshots import SnapshotMaker
from vae_core.train import Status, Trainer

LONG = TrainConfig(epochs=200, batch_size=16, hidden=[32])


def record_steps(monkeypatch, *jobs) -> list[tuple[int, int, Status]]:
    """(index of the job in `jobs`, its step before the step, its status) at every training step from now on."""
    seen, train_step = [], Trainer.train_step

    def recording(self, x):
        index = next(i for i, job in enumerate(jobs) if job.trainer is self)
        seen.append((index, self.step, jobs[index].status))
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", recording)
    return seen


def test_stop_mid_epoch_ends_the_job_and_leaves_no_thread(digits):
    before = threading.active_count()
    job = TrainingJob(LONG, digits, pool=SlotPool(1)).start()
    assert wait_until(lambda: job.view().step > 30)
    job.stop()
    assert job.join(10)
    view = job.view()
    assert view.status == Status.STOPPED and view.message == "Stopped by the user."
    assert view.step < view.total_steps and view.eta is None
    assert wait_until(lambda: threading.active_count() <= before, 5)  # ends just after join (older ones may too)


def test_pause_holds_the_step_count_and_resume_continues(digits, monkeypatch, tmp_path):
    """The run folder says so as well (the teacher's board reads it), before the epoch ends."""
    job = TrainingJob(LONG, digits, pool=SlotPool(1), runs_dir=tmp_path)
    seen = record_steps(monkeypatch, job)
    job.start()
    assert wait_until(lambda: job.view().step > 5)
    job.pause()
    assert wait_until(lambda: job.view().status == Status.PAUSED and job.view().paused)
    assert wait_until(lambda: runs.load_run(job.run_dir).meta["status"] == "paused")
    held = job.view().step
    job.resume()
    assert wait_until(lambda: job.view().step > held + 5)
    assert runs.load_run(job.run_dir).meta["status"] == "running" and not job.view().paused
    job.stop()
    assert job.join(10)
    assert all(status == Status.RUNNING for _, _, status in seen)  # no step while paused
    steps = [step for _, step, _ in seen]
    assert steps == list(range(len(steps))) and held in steps  # on from the step it was held at


def test_live_lr_and_beta_changes_apply_from_the_next_step(digits):
    job = TrainingJob(LONG, digits, pool=SlotPool(1)).start()
    assert wait_until(lambda: job.view().step > 5)
    job.set_lr(1e-4)
    job.set_beta(3.0)
    assert wait_until(lambda: job.history.steps()[-1]["beta_now"] == 3.0)
    last = job.history.steps()[-1]
    applied = {k: v for change in job.live_changes for k, v in change.items() if k in ("lr", "beta")}
    assert math.isclose(last["lr"], 1e-4) and applied == {"lr": 1e-4, "beta": 3.0}  # on one step or two
    assert job.view().live_changes == tuple(job.live_changes) and job.view().beta_now == 3.0
    assert all(5 < change["step"] <= last["step"] for change in job.live_changes)
    job.stop()
    assert job.join(10)


def test_live_changes_out_of_range_are_refused_with_the_field_name(digits):
    job = TrainingJob(LONG, digits, pool=SlotPool(1))
    with pytest.raises(ValueError, match="lr: must be between"):
        job.set_lr(0.0)
    with pytest.raises(ValueError, match="beta: must be between"):
        job.set_beta(-1.0)
    assert job._pending == {}


def test_history_is_thinned_to_its_budget(digits):
    job = TrainingJob(TrainConfig(epochs=6, batch_size=4, hidden=[16]), digits, pool=SlotPool(1), max_points=100)
    job.start()
    assert job.join(60)
    steps = job.history.steps()
    assert job.view().step > 1800 and len(steps) <= 100
    assert steps[-1]["step"] > 0.9 * job.view().step  # thinning keeps the whole span
    gaps = {b["step"] - a["step"] for a, b in zip(steps, steps[1:])}
    assert gaps == {job.history.stride}


def test_snapshots_carry_what_the_ui_draws(digits):
    job = TrainingJob(TrainConfig(epochs=2, latent_dim=5, hidden=[32]), digits, pool=SlotPool(1)).start()
    assert job.join(30)
    snap = job.view().snapshot
    assert snap is job.snapshot
    assert snap.reconstructions.shape == snap.originals.shape == (16, 1, 8, 8)
    assert snap.samples.shape == (16, 1, 8, 8) and 0 <= snap.samples.min() and snap.samples.max() <= 1
    assert snap.latent_mu.shape == (len(digits.val), 5) and snap.latent_2d.shape == (len(digits.val), 2)
    assert snap.labels.shape == (len(digits.val),) and snap.kl_per_dim.shape == (5,)
    assert snap.epoch == 2 and 0 <= snap.active_units <= 5


def test_a_snapshot_from_the_validation_pass_equals_one_that_encodes_its_points(digits, monkeypatch):
    trainer = Trainer(TrainConfig(latent_dim=5, hidden=[32]), digits)
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
    # no time budget: a snapshot whenever one may be taken
    monkeypatch.setattr(vae_core.jobs.snapshots, "SNAPSHOT_SHARE", 1.0)
    job = TrainingJob(TrainConfig(epochs=3, hidden=[32]), digits, pool=SlotPool(1), snapshot_interval=0).start()
    assert job.join(60)
    steps_per_epoch = job.trainer.steps_per_epoch
    assert takes[0] == (0, False)  # the untrained model's
    ends = [step for step, reused in takes if reused]
    assert set(ends) == {steps_per_epoch, 2 * steps_per_epoch, 3 * steps_per_epoch}  # every epoch's end, reused
    assert all(step % steps_per_epoch for step, reused in takes[1:] if not reused)  # the rest within epochs
    assert takes[-1] == (3 * steps_per_epoch, True)  # the final one, at the end of the last validation pass
    assert job.view().snapshot.step == 3 * steps_per_epoch


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_learning_rate_of_1000_diverges_with_a_message_and_the_last_good_weights(digits, optimizer):
    config = TrainConfig(lr=1e3, optimizer=optimizer, epochs=5, hidden=[32])
    job = TrainingJob(config, digits, pool=SlotPool(1)).start()
    assert job.join(30)
    view = job.view()
    assert view.status == Status.DIVERGED and "learning rate (1000)" in view.message, view.message
    assert view.epoch == 0 and not view.epoch_history  # it diverges within the first epoch
    initial = Trainer(config, digits).weights()  # the last good weights: those before the first epoch
    assert all(torch.equal(initial[k], v) for k, v in job.trainer.weights().items())


def test_a_loss_spike_the_run_recovers_from_is_not_divergence(digits):
    # Adam at LR 0.1 on these digits: the loss jumps to about 850 times its first value, then recovers.
    job = TrainingJob(TrainConfig(lr=0.1, epochs=3), digits, pool=SlotPool(1)).start()
    assert job.join(30)
    losses = [row["loss"] for row in job.history.steps()]
    assert max(losses) > 100 * losses[0] and job.view().status == Status.FINISHED, job.view().message


def test_with_a_limit_of_one_two_jobs_run_one_after_the_other(digits, monkeypatch):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool)
    second = TrainingJob(TrainConfig(epochs=1, hidden=[32]), digits, pool=pool)
    seen = record_steps(monkeypatch, first, second)
    first.start()
    assert wait_until(lambda: first.view().status == Status.RUNNING)
    second.start()
    assert wait_until(lambda: second.view().queue_position == 1)
    queued_at = first.view().step
    assert wait_until(lambda: first.view().step > queued_at + 20)  # the first trains on while the second waits
    view = second.view()
    assert view.status == Status.QUEUED and view.step == 0
    first.stop()
    assert first.join(10)
    assert second.join(30) and second.view().status == Status.FINISHED
    order = [index for index, _, _ in seen]
    assert order == sorted(order) and order.count(1) == second.view().total_steps  # none of the second's before


def test_a_queued_job_can_be_stopped_before_it_starts(digits):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool).start()
    second = TrainingJob(LONG, digits, pool=pool).start()
    assert wait_until(lambda: second.view().queue_position == 1)
    second.stop()
    assert second.join(10) and second.view().status == Status.STOPPED
    assert second.view().message == "Stopped before it started." and second.trainer is None
    first.stop()
    assert first.join(10)


def test_a_job_paused_in_the_queue_takes_its_slot_paused_and_trains_on_resume(digits, monkeypatch):
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    job = TrainingJob(LONG, digits, pool=pool)
    seen = record_steps(monkeypatch, job)
    job.start()
    assert wait_until(lambda: job.view().queue_position == 1)
    job.pause()
    pool.release(holder)
    assert wait_until(lambda: job.view().status == Status.PAUSED)
    assert job.view().step == 0 and job.trainer is not None and pool.running == 0  # built, slot given back
    job.resume()
    assert wait_until(lambda: job.view().step > 0)
    job.stop()
    assert job.join(10)
    assert seen[0][1] == 0 and all(status == Status.RUNNING for _, _, status in seen)


def test_a_paused_job_gives_its_slot_to_the_queue_and_queues_again_on_resume(digits, monkeypatch):
    pool = SlotPool(1)
    first = TrainingJob(LONG, digits, pool=pool)
    second = TrainingJob(LONG, digits, pool=pool)
    seen = record_steps(monkeypatch, first, second)
    first.start()
    assert wait_until(lambda: first.view().step > 5)  # past the first step: an ETA
    second.start()
    assert wait_until(lambda: second.view().queue_position == 1)
    first.pause()
    assert wait_until(lambda: second.view().step > 0) and first.view().status == Status.PAUSED
    assert pool.running == 1  # the second's: the paused job gave its own back
    first.resume()
    assert wait_until(lambda: first.view().status == Status.QUEUED and first.view().queue_position == 1)
    held = first.view().step
    first.pause()  # paused again while it waits: it keeps its place, and holds on once it has the slot
    assert first.view().eta is not None  # the ETA stays through the wait
    second.stop()
    assert second.join(10)
    assert wait_until(lambda: first.view().status == Status.PAUSED and pool.running == 0)
    assert first.view().step == held and first.view().eta is not None
    first.resume()
    assert wait_until(lambda: first.view().status == Status.RUNNING and first.view().step > held)
    first.pause()
    assert wait_until(lambda: first.view().status == Status.PAUSED)
    first.stop()  # while paused
    assert first.join(10) and first.view().status == Status.STOPPED
    # every step of the first was taken while it ran, and it went on from the step it was held at
    assert all(status == Status.RUNNING for index, _, status in seen if index == 0)
    steps = [step for index, step, _ in seen if index == 0]
    assert steps == list(range(len(steps))) and held in steps


def test_the_eta_follows_the_pace_of_training_not_the_wait_before_it(digits, monkeypatch):
    """On a fake clock: 100 s queued and loading, a first step of 50 s (the warm-up), then 1 s a step."""
    clock, etas = [0.0], []
    real_step = Trainer.train_step

    def step(trainer, x):
        etas.append((trainer.step, job.view().eta))  # the ETA the page shows before this step
        clock[0] += 50.0 if trainer.step == 0 else 1.0
        return real_step(trainer, x)

    monkeypatch.setattr(Trainer, "train_step", step)
    job = TrainingJob(TrainConfig(epochs=2, batch_size=128, hidden=[32]), digits, pool=SlotPool(1))
    job.clock = JobClock(now=lambda: clock[0])
    job.start(lambda run: threading.Thread(target=lambda: (clock.__setitem__(0, 100.0), run())).start())
    assert job.join(30)
    view = job.view()
    total = view.total_steps
    assert view.status == Status.FINISHED and total == 2 * math.ceil(len(digits.train) / 128)
    assert [eta for done, eta in etas[:2]] == [None, None]  # no pace yet before the second step
    assert all(eta == pytest.approx(total - done) for done, eta in etas[2:])
    assert view.eta is None and view.elapsed == pytest.approx(100.0 + 50.0 + total - 1)


def test_jobs_queue_in_the_order_they_start_whichever_thread_gets_there_first(digits):
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    asked, acquire = [], pool.acquire

    def recording(owner, cancelled):
        asked.append(owner)
        return acquire(owner, cancelled)
    pool.acquire = recording
    held = []
    first = TrainingJob(LONG, digits, pool=pool).start(held.append)  # its run waits until handed a thread
    second = TrainingJob(LONG, digits, pool=pool).start()
    try:
        assert wait_until(lambda: second in asked)  # the second's thread asks for the slot first
        assert (first.view().queue_position, second.view().queue_position) == (1, 2)
        threading.Thread(target=held[0], daemon=True).start()
        assert wait_until(lambda: first in asked)
        pool.release(holder)
        assert wait_until(lambda: first.view().status == Status.RUNNING and second.view().queue_position == 1)
    finally:
        for job in (first, second):
            job.stop()
            assert job.join(10)


def test_a_job_that_fails_before_its_turn_gives_its_place_up():
    pool, holder = SlotPool(1), object()
    assert pool.acquire(holder, threading.Event())
    job = TrainingJob(TrainConfig(dataset="no-such-set"), pool=pool).start()
    assert job.join(10) and job.view().status == Status.FAILED
    assert pool.position(job) == 0 and job.view().queue_position == 0
    pool.release(holder)


def test_an_unknown_dataset_fails_with_the_data_message():
    job = TrainingJob(TrainConfig(dataset="no-such-set"), pool=SlotPool(1)).start()
    assert job.join(10)
    assert job.view().status == Status.FAILED and "no-such-set" in job.view().message


def test_incompatible_settings_fail_with_the_field_name():
    job = TrainingJob(TrainConfig(dataset="moons", recon_loss="bce"), pool=SlotPool(1)).start()
    assert job.join(10)
    assert job.view().status == Status.FAILED and "recon_loss" in job.view().message


def test_stop_during_the_end_of_epoch_evaluation_ends_the_job_before_the_next_chunk(digits, monkeypatch):
    import vae_core.train

    evaluating, stopped, chunks, real = threading.Event(), threading.Event(), [], vae_core.train.reconstruction_nll

    def held(*args, **kwargs):  # the evaluation's reconstruction term only; training steps do not use this name
        chunks.append(1)
        evaluating.set()
        assert stopped.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(vae_core.train, "reconstruction_nll", held)
    big_val = digits.train.repeat(8, 1, 1, 1)  # 10,056 images: 10 chunks
    data = Dataset("digits", "image", digits.train[:64], big_val, digits.test, None, None, None, None)
    before = threading.active_count()
    job = TrainingJob(TrainConfig(epochs=3, hidden=[16]), data, pool=SlotPool(1)).start()
    assert evaluating.wait(10)
    job.stop()
    stopped.set()
    assert job.join(10)
    assert job.view().status == Status.STOPPED and job.view().epoch_history == [] and len(chunks) == 1
    assert wait_until(lambda: threading.active_count() <= before, 5)  # ends just after join (older ones may too)


def test_stop_while_waiting_for_the_data_ends_the_job(monkeypatch, tmp_path):
    from vae_core.data import registry

    lock, tried = registry._locks["mnist"], threading.Event()

    class Watched:  # the dataset's lock, held as by another session's long download of the same dataset
        def acquire(self, *args, **kwargs):
            tried.set()
            return lock.acquire(*args, **kwargs)

        def release(self):
            lock.release()

    monkeypatch.setitem(registry._locks, "mnist", Watched())
    lock.acquire()
    try:
        job = TrainingJob(TrainConfig(dataset="mnist"), data_dir=tmp_path, pool=SlotPool(1)).start()
        assert tried.wait(10)
        assert job.alive and job.view().status == Status.QUEUED
        job.stop()
        assert job.join(10)
    finally:
        lock.release()
    assert job.view().status == Status.STOPPED and job.view().message == "Stopped before it started."


def _record_threads(monkeypatch) -> list[tuple[str, int]]:
    """(thread name, torch's intra-op threads) at every training step from now on."""
    seen, train_step = [], Trainer.train_step

    def recording(self, x):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", recording)
    return seen


def test_a_job_on_a_thread_of_its_own_trains_on_one_torch_thread(digits, monkeypatch):
    monkeypatch.setattr(vae_core.jobs.job, "CORES", 4)
    seen = _record_threads(monkeypatch)
    before = torch.get_num_threads()
    config = TrainConfig(architecture="conv", hidden=[4], epochs=1, batch_size=256)
    assert TrainingJob(config, digits, pool=SlotPool(1)).start().join(30)
    assert set(seen) == {("vae-lab-training", 1)}
    assert torch.get_num_threads() == before  # this thread's count is its own


def test_a_job_on_the_main_thread_shares_the_cores_with_the_jobs_running(digits, monkeypatch):
    monkeypatch.setattr(vae_core.jobs.job, "CORES", 4)
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
    assert job.view().status == Status.FINISHED and not job.alive and job.join(0)
    assert [threads for _, threads in seen] == [2] * 4 + [4] * (len(seen) - 4)
    assert {name for name, _ in seen} == {"MainThread"}


def test_a_finished_job_saves_its_run_and_reports_it_in_its_state(digits, tmp_path):
    from vae_core import runs

    job = TrainingJob(TrainConfig(epochs=2, hidden=[16]), digits, owner="tab-1", runs_dir=tmp_path,
                      pool=SlotPool(1)).start()
    assert job.join(30)
    state = job.state()
    assert (state.id, state.owner, state.status, state.message) == (job.id, "tab-1", Status.FINISHED, "Finished.")
    assert (state.epoch, state.epochs, state.step) == (2, 2, state.total_steps) and state.progress == 1.0
    assert state.best_epoch == job.best_epoch and state.run_dir == str(job.run_dir)
    saved = runs.load_run(state.run_dir)
    assert saved.meta["status"] == "finished" and saved.meta["steps_done"] == state.step
    model = saved.load_model().state_dict()
    assert all(np.array_equal(model[k].numpy(), v) for k, v in job.weights().items())


def test_a_job_shows_its_end_only_with_its_final_message(digits, tmp_path, monkeypatch):
    """The status changes last: a reader that sees the run ended (the worker's feed sends that state once)
    sees the message it ends with, a failed save's included."""
    import errno

    from vae_core import runs

    seen, save = [], runs.save_progress

    def full_at_the_end(run_dir, meta, epochs, steps, weights):
        if meta["status"] != "running":  # the run's end: the disk is full now
            seen.append(job.state())
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(run_dir, meta, epochs, steps, weights)
    monkeypatch.setattr(runs, "save_progress", full_at_the_end)
    job = TrainingJob(TrainConfig(epochs=1, hidden=[16]), digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(30)
    assert len(seen) == 1 and seen[0].status == Status.RUNNING  # while it saves its end, it shows as running
    view = job.view()
    assert view.status == Status.FINISHED and view.message.startswith("Finished. Could not save the run (No space")
