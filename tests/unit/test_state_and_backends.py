"""The pieces under a job: `fit`'s outcomes, the run's state and how it travels (RunState, ProgressFeed,
Mirror), its history, clock and snapshot throttle, the backends' books, and the config helpers."""

from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch

from polling import wait_until
from vae_core.config import FOR_POINTS, LIVE, RANGES, ConfigError, TrainConfig, check_compatible, live_value, \
    parse_numbers
from vae_core.jobs import backends
from vae_core.jobs.clock import JobClock
from vae_core.jobs.history import History
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.snapshots import SNAPSHOT_SHARE, SnapshotThrottle
from vae_core.jobs.state import JobView, Mirror, ProgressFeed, RunState, failure, queued_state
from vae_core.train import ENDED, Status, Trainer, fit

TINY = TrainConfig(hidden=[16], latent_dim=2, epochs=3, batch_size=128)  # 10 steps an epoch on the digits


def equal_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Recorder:
    """fit's hooks, recording what they were called with and in which order."""

    def __init__(self):
        self.calls: list = []  # "hold", then each step's number
        self.steps: list[dict] = []
        self.epochs: list = []

    def hold(self):
        self.calls.append("hold")

    def on_step(self, row):
        self.calls.append(row["step"])
        self.steps.append(row)

    def on_epoch(self, epoch):
        self.epochs.append(epoch)

    def fit(self, trainer, **hooks):
        return fit(trainer, on_step=self.on_step, on_epoch=self.on_epoch, hold=self.hold, **hooks)


def scripted_validation(monkeypatch, losses: list[float]) -> None:
    """Trainer.evaluate reports losses[i] as the validation −ELBO of epoch i + 1 (the rest as measured)."""
    evaluate = Trainer.evaluate

    def scripted(self, x, should_stop=lambda: False):
        out = evaluate(self, x, should_stop)
        return out if out is None else {**out, "neg_elbo": losses[self.epoch]}
    monkeypatch.setattr(Trainer, "evaluate", scripted)


def step_rows_changed(monkeypatch, at_step: int, change) -> None:
    """The row of training step `at_step` (the weights updated as usual) passed through `change`."""
    train_step = Trainer.train_step

    def changed(self, x):
        row = train_step(self, x)
        return change(row) if row["step"] == at_step else row
    monkeypatch.setattr(Trainer, "train_step", changed)


# --- fit ----------------------------------------------------------------------------------------------
def test_status_tells_ended_and_completed_runs():
    assert [s for s in Status if not s.ended] == [Status.QUEUED, Status.RUNNING, Status.PAUSED]
    assert set(ENDED) == {Status.FINISHED, Status.EARLY_STOPPED, Status.STOPPED, Status.DIVERGED, Status.FAILED}
    assert [s for s in Status if s.completed] == [Status.FINISHED, Status.EARLY_STOPPED]
    assert Status.EARLY_STOPPED == "early-stopped" and str(Status.DIVERGED) == "diverged"


def test_fit_trains_every_epoch_and_calls_its_hooks_in_order(digits):
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer)
    spe = trainer.steps_per_epoch
    assert spe == 10 and (trainer.epoch, trainer.step) == (3, 30)
    assert outcome.status == Status.FINISHED and outcome.message == "Finished."
    assert hooks.calls == [call for step in range(1, 31) for call in ("hold", step)]  # hold before every step
    assert [e.row["epoch"] for e in hooks.epochs] == [1, 2, 3] and [e.row["step"] for e in hooks.epochs] == [10, 20, 30]
    vals = [e.row["val_neg_elbo"] for e in hooks.epochs]
    assert outcome.best_epoch == 1 + vals.index(min(vals)) == hooks.epochs[-1].best_epoch
    last = hooks.epochs[-1]
    assert equal_weights(last.weights, trainer.weights())  # no early stopping: the last epoch's weights stay
    assert {"lr", "beta_now", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl",
            "val_neg_elbo", "val_active_units"} <= last.row.keys()
    assert last.row["train_loss"] == pytest.approx(np.mean([r["loss"] for r in hooks.steps[20:]]))
    assert {"step", "loss", "recon", "kl", "kl_term", "beta_now", "lr"} == hooks.steps[0].keys()
    assert all(r["beta_now"] == 1.0 for r in hooks.steps) and "beta" not in hooks.steps[0]


def test_fit_applies_what_hold_changes_from_the_next_step(digits):
    trainer, betas = Trainer(TINY.replace(epochs=1), digits), []

    def hold():
        if trainer.step == 4:
            trainer.beta = 3.0
    outcome = fit(trainer, hold=hold, on_step=lambda row: betas.append(row["beta_now"]))
    assert outcome.status == Status.FINISHED and betas == [1.0] * 4 + [3.0] * 6


def test_fit_stops_early_with_the_best_weights(digits, monkeypatch):
    scripted_validation(monkeypatch, [5.0, 4.0, 4.5, 4.2, 4.1, 3.0, 2.0, 1.0])
    trainer, hooks = Trainer(TINY.replace(epochs=8, early_stopping=True, patience=3), digits), Recorder()
    outcome = hooks.fit(trainer)
    assert outcome.status == Status.EARLY_STOPPED and outcome.best_epoch == 2
    assert outcome.message == "Early stopping: no improvement for 3 epochs; restored the best weights (epoch 2)."
    assert [e.row["epoch"] for e in hooks.epochs] == [1, 2, 3, 4, 5] and trainer.epoch == 5
    assert [e.best_epoch for e in hooks.epochs] == [1, 2, 2, 2, 2]
    assert equal_weights(trainer.weights(), hooks.epochs[1].weights)  # epoch 2's, restored
    assert not equal_weights(trainer.weights(), hooks.epochs[-1].weights)


def test_fit_with_early_stopping_that_runs_every_epoch_keeps_the_best_weights(digits, monkeypatch):
    scripted_validation(monkeypatch, [5.0, 4.0, 4.5])
    trainer, hooks = Trainer(TINY.replace(early_stopping=True, patience=5), digits), Recorder()
    outcome = hooks.fit(trainer)
    assert outcome.status == Status.FINISHED and outcome.best_epoch == 2
    assert outcome.message == "Finished; restored the best weights (epoch 2)."
    assert equal_weights(trainer.weights(), hooks.epochs[1].weights)
    assert not equal_weights(trainer.weights(), hooks.epochs[2].weights)


def test_fit_stops_before_the_next_step_when_asked(digits):
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer, should_stop=lambda: trainer.step == 13)
    assert (outcome.status, outcome.message) == (Status.STOPPED, "Stopped.")
    assert trainer.step == 13 and hooks.steps[-1]["step"] == 13 and len(hooks.epochs) == 1
    assert outcome.best_epoch == 1 and hooks.calls[-1] == "hold"  # held, then asked, then stopped


def test_fit_stops_in_the_validation_pass_when_asked(digits):
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer, should_stop=lambda: trainer.step == 10)  # true from the end of epoch 1 on
    assert outcome.status == Status.STOPPED and outcome.best_epoch is None
    assert trainer.step == 10 and trainer.epoch == 0 and hooks.epochs == []


@pytest.mark.parametrize("change,problem", [
    (lambda row: {**row, "loss": math.nan}, "became NaN or infinite at step 13 (epoch 2)"),
    (lambda row: {**row, "loss": 1e12}, "grew to 1e+12, over 1,000,000 times its first value"),
], ids=["nan", "blow-up"])
def test_fit_ends_a_diverged_run_with_the_last_good_epochs_weights(digits, monkeypatch, change, problem):
    step_rows_changed(monkeypatch, 13, change)
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer)
    assert outcome.status == Status.DIVERGED and problem in outcome.message, outcome.message
    assert "learning rate (0.002)" in outcome.message and outcome.best_epoch == 1
    assert [row["step"] for row in hooks.steps] == list(range(1, 14))  # the diverged step too: the chart shows it
    assert trainer.step == 13 and len(hooks.epochs) == 1
    assert equal_weights(trainer.weights(), hooks.epochs[0].weights)  # epoch 1's, though step 13 changed them


def test_fit_ends_a_run_whose_validation_loss_is_not_finite_as_diverged(digits, monkeypatch):
    scripted_validation(monkeypatch, [5.0, math.inf, 4.0])
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer)
    assert outcome.status == Status.DIVERGED and "at step 20 (epoch 2)" in outcome.message
    assert len(hooks.epochs) == 1 and equal_weights(trainer.weights(), hooks.epochs[0].weights)


def test_fit_reports_an_exception_in_the_maths_as_failed(digits, monkeypatch):
    train_step = Trainer.train_step

    def failing(self, x):
        if self.step == 12:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", failing)
    trainer, hooks = Trainer(TINY, digits), Recorder()
    outcome = hooks.fit(trainer)
    assert outcome.status == Status.FAILED and outcome.best_epoch == 1
    assert outcome.message == "Training failed: mat1 and mat2 shapes cannot be multiplied"
    assert trainer.step == 12 and len(hooks.epochs) == 1


def test_a_job_reports_fits_outcome_and_saves_the_weights_it_kept(digits, monkeypatch, tmp_path):
    from vae_core import runs

    step_rows_changed(monkeypatch, 13, lambda row: {**row, "loss": math.nan})
    job = TrainingJob(TINY, digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(30)
    view = job.view()
    assert view.status == Status.DIVERGED and "became NaN" in view.message and view.best_epoch == 1
    assert view.snapshot.step == 13  # the final snapshot: of the weights kept
    saved = runs.load_run(view.run_dir)
    assert saved.meta["status"] == "diverged" and saved.meta["message"] == view.message
    model = saved.load_model().state_dict()
    assert all(np.array_equal(model[k].numpy(), v) for k, v in job.weights().items())


# --- the run's state, and how it travels ---------------------------------------------------------------
def test_same_but_time_ignores_only_the_clock():
    state = dataclasses.replace(queued_state("j1", "tab", TINY), status=Status.RUNNING, step=5, total_steps=30,
                                elapsed=3.0, eta=12.0)
    assert state.same_but_time(dataclasses.replace(state, elapsed=9.5, eta=None))
    assert not state.same_but_time(None)
    for change in ({"step": 6}, {"status": Status.PAUSED}, {"lr": 0.1}, {"beta_now": 2.0}, {"queue_position": 1},
                   {"message": "x"}, {"live_changes": ({"step": 5, "lr": 0.1},)}, {"best_epoch": 1}):
        assert not state.same_but_time(dataclasses.replace(state, **change)), change
    assert state.progress == pytest.approx(5 / 30) and queued_state("j", "", TINY).progress == 0.0


def test_queued_state_and_failure_describe_a_run_that_never_trained():
    state = queued_state("j1", "tab", TINY.replace(lr=0.01, beta=4.0))
    assert (state.id, state.owner, state.status, state.epochs, state.lr, state.beta_now) == \
        ("j1", "tab", Status.QUEUED, 3, 0.01, 4.0)
    ended = failure(dataclasses.replace(state, eta=5.0), "Training failed: gone")
    assert (ended.state.status, ended.state.message, ended.state.eta) == (Status.FAILED, "Training failed: gone", None)
    assert ended.steps == [] and ended.epochs == [] and ended.snapshot is None and ended.weights is None


def test_progress_feed_sends_only_what_is_new_and_a_mirror_puts_the_view_back_together(digits, monkeypatch):
    # only the forced snapshots: of the untrained model and of the final weights
    job = TrainingJob(TINY, digits, job_id="j1", owner="tab", pool=SlotPool(1), snapshot_interval=3600.0)
    feed, mirror, sent = ProgressFeed(), Mirror(queued_state("j1", "tab", TINY)), {}
    train_step = Trainer.train_step

    def step(trainer, x):  # on the training thread, before steps 4, 6 and 21: nothing moves meanwhile
        if trainer.step in (3, 5, 20):
            news, again = feed.next(job), feed.next(job)
            sent[trainer.step] = news, again
            mirror.apply(news)
        return train_step(trainer, x)
    monkeypatch.setattr(Trainer, "train_step", step)
    job.start()
    assert job.join(30) and job.view().status == Status.FINISHED
    for before, (news, again) in sent.items():
        assert again is None, before  # nothing new since: nothing sent
        assert news.state.step == before and news.state.status == Status.RUNNING and news.weights is None
    assert [r["step"] for r in sent[3][0].steps] == [1, 2, 3]
    assert [r["step"] for r in sent[5][0].steps] == [4, 5]  # only the rows after the last sent
    assert sent[5][0].epochs == [] and [r["epoch"] for r in sent[20][0].epochs] == [1, 2]
    assert sent[3][0].snapshot is not None and sent[3][0].snapshot.step == 0  # the untrained model's, sent once
    assert sent[5][0].snapshot is None and sent[20][0].snapshot is None
    last = feed.next(job)  # the ended job's news: the rest of its rows, its final state and weights
    assert last.state.status == Status.FINISHED and [r["step"] for r in last.steps] == list(range(21, 31))
    assert [r["epoch"] for r in last.epochs] == [3] and last.snapshot is job.snapshot
    assert feed.next(job) is None
    mirror.apply(last)
    got, want = mirror.view(), job.view()
    assert isinstance(got, JobView)
    for field in dataclasses.fields(RunState):
        assert getattr(got, field.name) == getattr(want, field.name), field.name
    assert got.step_history == want.step_history and got.epoch_history == want.epoch_history
    assert got.snapshot is want.snapshot and len(got.step_history) == 30
    weights = job.weights()
    assert mirror.weights.keys() == weights.keys()
    assert all(np.array_equal(mirror.weights[k], v) for k, v in weights.items())


def test_progress_feed_sends_a_state_change_alone():
    class Fake:  # a job whose state changes while its history and snapshot stay
        def __init__(self):
            self.history, self.snapshot = History(), None
            self.now = queued_state("j", "", TINY)

        def state(self):
            return self.now

        def weights(self):
            return {"w": np.ones(2)}

    job, feed = Fake(), ProgressFeed()
    first = feed.next(job)
    assert first.state is job.now and (first.steps, first.epochs, first.snapshot) == ([], [], None)
    job.now = dataclasses.replace(job.now, elapsed=4.0)
    assert feed.next(job) is None  # only the clock moved
    job.now = dataclasses.replace(job.now, queue_position=2)
    assert feed.next(job).state.queue_position == 2
    job.now = dataclasses.replace(job.now, status=Status.STOPPED)
    ended = feed.next(job)
    assert ended.state.status == Status.STOPPED and np.array_equal(ended.weights["w"], np.ones(2))
    assert feed.next(job) is None


def test_progress_feed_sends_a_snapshot_replaced_while_it_reads():
    """The training thread may replace the snapshot while the feed builds a message: the newer one is sent
    with the next message, never taken as sent already."""
    class Racing:
        def __init__(self):
            self.history, self.now, self.reads = History(), queued_state("j", "", TINY), 0
            self.current, self.then = "A", None  # (snapshots as strings: the feed only compares them)

        @property
        def snapshot(self):
            self.reads += 1
            value = self.current
            if self.then is not None and self.reads >= self.then[0]:
                self.current, self.then = self.then[1], None
            return value

        def state(self):
            return self.now

    job, feed, sent = Racing(), ProgressFeed(), []
    sent.append(feed.next(job).snapshot)
    job.current, job.then = "B", (job.reads + 2, "C")  # replaced by C just after the feed's second read from now
    for _ in range(3):
        news = feed.next(job)
        sent.append(news.snapshot if news else None)
    assert "A" in sent and "B" in sent and "C" in sent and sent.count(None) >= 1


def test_history_gives_the_rows_after_a_step_and_from_an_epoch():
    history = History(max_points=100)
    for step in range(1, 6):
        history.add_step({"step": step, "loss": float(step)})
    for epoch in range(1, 4):
        history.add_epoch({"epoch": epoch})
    assert [r["step"] for r in history.steps_after(-1)] == [r["step"] for r in history.steps_after(0)] == [1, 2, 3, 4, 5]
    assert [r["step"] for r in history.steps_after(3)] == [4, 5] and history.steps_after(5) == []
    assert [r["epoch"] for r in history.epochs_from(0)] == [1, 2, 3]
    assert [r["epoch"] for r in history.epochs_from(2)] == [3] and history.epochs_from(3) == []
    rows = history.steps_after(0)
    rows.clear()
    assert len(history.steps()) == 5  # a copy of the list


def test_history_thins_its_steps_and_steps_after_follows():
    history = History(max_points=4)
    for step in range(1, 11):
        history.add_step({"step": step})
    assert [r["step"] for r in history.steps()] == [4, 8] and history.stride == 4
    assert [r["step"] for r in history.steps_after(4)] == [8] and [r["step"] for r in history.steps_after(5)] == [8]
    history.add_step({"step": 11})
    history.add_step({"step": 12})
    assert [r["step"] for r in history.steps_after(8)] == [12]


# --- clock and snapshot throttle ----------------------------------------------------------------------
def test_the_eta_counts_from_the_first_step_and_leaves_pauses_out():
    now = [0.0]
    clock = JobClock(now=lambda: now[0])
    assert clock.elapsed() == 0.0 and clock.eta(0, 100) is None
    clock.start()
    now[0] = 100.0  # queued and loading
    clock.start()  # again, from the training thread: keeps the first start
    clock.stepped(1)  # the first step ends: the pace starts here
    assert clock.eta(1, 101) is None  # no pace before a second step
    now[0] = 110.0
    clock.stepped(11)
    assert clock.eta(11, 101) == pytest.approx(90.0)  # 1 s a step, 90 to go
    clock.hold()
    now[0] = 1110.0  # paused for 1000 s
    assert clock.eta(11, 101) == pytest.approx(90.0)  # stands still while held
    clock.release()
    now[0] = 1120.0
    assert clock.eta(21, 101) == pytest.approx(80.0)  # the pause is not in the pace
    assert clock.elapsed() == pytest.approx(1120.0)  # but it is in the elapsed time
    clock.end()
    now[0] = 2000.0
    assert clock.eta(21, 101) is None and clock.elapsed() == pytest.approx(1120.0)


def test_the_snapshot_throttle_keeps_an_interval_and_a_share_of_the_time():
    now = [0.0]
    throttle = SnapshotThrottle(1.0, now=lambda: now[0])
    assert throttle.due()  # the first one, at once
    now[0] = 0.5
    throttle.took(0.0, forced=True, encoded=True)  # a forced one of 0.5 s: counted as spent, not as the next's cost
    now[0] = 1.0
    assert not throttle.due()  # within the interval
    share_reached = 0.5 / SNAPSHOT_SHARE  # when 0.5 s is the share of the time since the start
    now[0] = share_reached - 0.1
    assert not throttle.due()  # past the interval, but over the share
    now[0] = share_reached + 0.1
    assert throttle.due()
    started = now[0]
    now[0] = started + 0.2
    throttle.took(started, forced=False, encoded=True)  # 0.2 s: spent, and the cost of the next one
    now[0] += 2.0
    assert not throttle.due()
    due_at = (0.5 + 0.2 + 0.2) / SNAPSHOT_SHARE  # spent 0.7 s, and 0.2 s expected
    now[0] = due_at - 0.1
    assert not throttle.due()
    now[0] = due_at + 0.1
    assert throttle.due()
    started = now[0]
    now[0] = started + 0.05
    throttle.took(started, forced=False, encoded=False)  # from a fresh posterior: the expected cost stays 0.2 s
    now[0] = (0.75 + 0.2) / SNAPSHOT_SHARE - 0.1
    assert not throttle.due()
    now[0] = (0.75 + 0.2) / SNAPSHOT_SHARE + 0.1
    assert throttle.due()


# --- backends ------------------------------------------------------------------------------------------
class FakeJob:
    def __init__(self, job_id: str, alive: bool = True):
        self.id, self.alive = job_id, alive


def test_the_job_book_keeps_every_live_job_and_the_last_ended_ones(monkeypatch):
    monkeypatch.setattr(backends, "KEEP_ENDED", 2)
    book = backends.JobBook()
    jobs = [book.add(FakeJob(f"j{i}")) for i in range(5)]  # a backend adds each job as it starts
    assert book.jobs() == jobs and all(book.find(job.id) is job for job in jobs)
    for job in jobs[:4]:
        job.alive = False
    assert len(book.jobs()) == 5  # the book looks again when the next job is added
    jobs.append(book.add(FakeJob("j5")))
    assert book.jobs() == jobs[2:]  # the two newest ended ones stay, the live ones all
    assert book.find("j0") is None and book.find("j1") is None and book.find("j3") is jobs[3]
    jobs[4].alive = False
    more = [book.add(FakeJob(f"k{i}")) for i in range(10)]
    assert book.jobs() == [jobs[3], jobs[4], jobs[5], *more]
    assert sum(not job.alive for job in book.jobs()) == 2 and book.find("no-such-job") is None


def test_the_thread_backend_starts_finds_and_lists_jobs_with_their_owners(digits, tmp_path, monkeypatch):
    switch = sys.getswitchinterval()
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "default"))
    try:
        backend = backends.ThreadBackend()
        first = backend.start(TINY, digits, owner="alice", runs_dir=tmp_path / "runs")
        second = backend.start(TINY.replace(seed=1), digits, owner="bob")  # the runs folder by default
        assert isinstance(first, TrainingJob) and first.owner == "alice"
        assert first.join(30) and second.join(30)
        assert backend.find(first.id) is first and backend.find(second.id) is second and backend.find("x") is None
        assert [(job.id, job.owner) for job in backend.jobs()] == [(first.id, "alice"), (second.id, "bob")]
        assert first.view().owner == "alice" and second.view().status == Status.FINISHED
        assert first.view().run_dir.startswith(str(tmp_path / "runs"))
        assert second.view().run_dir.startswith(str(tmp_path / "default"))
        long = backend.start(TINY.replace(epochs=500), digits, owner="carol", runs_dir=tmp_path / "runs")
        assert wait_until(lambda: long.view().step > 0)
        backend.close()
        assert long.join(10) and long.view().message == "Stopped: the server shut down."
    finally:
        sys.setswitchinterval(switch)


@pytest.mark.slow
def test_the_process_backend_starts_finds_and_lists_jobs_with_their_owners(digits, tmp_path):
    from vae_core.jobs.process import ProcessBackend, RemoteJob

    backend = ProcessBackend()
    try:
        worker = backend.worker()
        assert worker.alive and backend.worker() is worker
        first = backend.start(TINY, owner="alice", runs_dir=tmp_path)
        second = backend.start(TINY.replace(seed=1), digits, owner="bob", runs_dir=tmp_path)
        assert isinstance(first, RemoteJob) and first.worker is second.worker is worker
        assert backend.find(first.id) is first and backend.find(second.id) is second and backend.find("x") is None
        assert [(job.id, job.owner) for job in backend.jobs()] == [(first.id, "alice"), (second.id, "bob")]
        assert first.join(60) and second.join(60)
        assert (first.view().id, first.view().owner, first.view().status) == (first.id, "alice", Status.FINISHED)
        assert (second.view().id, second.view().owner) == (second.id, "bob")
        assert first.view().run_dir != second.view().run_dir and first.view().step == 30
    finally:
        backend.close()


# --- config helpers -------------------------------------------------------------------------------------
def test_live_value_accepts_the_live_settings_within_their_ranges():
    assert LIVE == ("lr", "beta")
    assert live_value("lr", 0.01) == 0.01 and live_value("beta", 3) == 3.0 and type(live_value("beta", 3)) is float
    low, high = RANGES["beta"]
    assert live_value("beta", low) == low and live_value("beta", high) == high
    for name, value, expected in (("lr", 0.0, "lr: must be between 1e-07 and 10000.0, got 0.0"),
                                  ("beta", 1000.5, "beta: must be between 0.0 and 1000.0, got 1000.5"),
                                  ("beta", math.nan, "beta: must be between 0.0 and 1000.0, got nan"),
                                  ("lr", True, "lr: must be between 1e-07 and 10000.0, got True"),
                                  ("lr", "0.1", "lr: must be between 1e-07 and 10000.0, got '0.1'"),
                                  ("epochs", 3, "epochs: cannot be changed while a run trains")):
        with pytest.raises(ConfigError) as caught:
            live_value(name, value)
        assert str(caught.value) == expected
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("name", list(RANGES))
def test_every_range_bounds_its_setting(name):
    low, high = RANGES[name]
    assert low <= getattr(TrainConfig(), name) <= high
    assert getattr(TrainConfig(**{name: high}), name) == high and getattr(TrainConfig(**{name: low}), name) == low
    for outside in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=f"^{name}: must be between {low} and {high}"):
            TrainConfig(**{name: outside})


def test_check_compatible_names_the_first_setting_points_cannot_use():
    points = TrainConfig(dataset="moons", recon_loss="mse")
    check_compatible(points, is_image=False)  # all fine
    check_compatible(TrainConfig(architecture="conv", augment=True), is_image=True)  # images take anything
    for name, (needed, why) in FOR_POINTS.items():
        wrong = {"recon_loss": "bce", "architecture": "conv", "augment": True}[name]
        assert wrong != needed
        with pytest.raises(ConfigError) as caught:
            check_compatible(points.replace(**{name: wrong}), is_image=False)
        assert str(caught.value) == f"{name}: {why}"


def test_parse_numbers_reads_comma_separated_numbers():
    assert parse_numbers("64, 32") == [64, 32] and parse_numbers(" 8 ,, 4, ") == [8, 4] and parse_numbers("") == []
    assert parse_numbers("0.5, 1e-3", float) == [0.5, 0.001]
    with pytest.raises(ValueError, match="expected whole numbers separated by commas, got '64, x'"):
        parse_numbers("64, x")
    with pytest.raises(ValueError, match="expected whole numbers"):
        parse_numbers("1.5")
    with pytest.raises(ValueError, match="expected whole numbers separated by commas, got '16 8'"):
        parse_numbers("16 8")  # two widths without their comma: refused, not read as one of 168
    with pytest.raises(ValueError, match="expected numbers separated by commas, got '0.5 2'"):
        parse_numbers("0.5 2", float)
    with pytest.raises(ValueError, match="expected numbers separated by commas"):
        parse_numbers("a", float)
