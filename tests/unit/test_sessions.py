"""vae_core.jobs.sessions: one live job per browser session, reaping of silent sessions, job series."""

import threading
from pathlib import Path

import pytest

from polling import wait_until
from vae_core.classroom.cards import card, new_card
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.series import JobSeries
from vae_core.jobs.sessions import SessionRegistry, grace_from_env
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status
from vae_core.views.pacing import REDRAW_LEVELS, RedrawCost, redraw_seconds


class FakeWork:
    def __init__(self):
        self.started = self.stopped = False

    def start(self):
        self.started = True
        return self

    def stop(self, why="Stopped by the user."):
        self.stopped = why

    def join(self, timeout=None):
        return True

    @property
    def alive(self):
        return self.started and not self.stopped


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_start_stops_the_sessions_old_work_only():
    reg = SessionRegistry(grace=10, reaper=False)
    a1, a2, b = FakeWork(), FakeWork(), FakeWork()
    assert reg.start("a", a1.start) is a1
    reg.start("b", b.start)
    reg.start("a", a2.start)
    assert a1.stopped == "Stopped: a new run was started in its place."
    assert a2.started and not a2.stopped and not b.stopped
    assert reg.get("a") is a2 and reg.get("b") is b and reg.get("c") is None


def test_clear_stops_and_forgets():
    reg = SessionRegistry(grace=10, reaper=False)
    work = reg.start("a", FakeWork().start)
    reg.clear("a")
    reg.clear("never-seen")
    assert work.stopped == "Stopped by the user." and reg.get("a") is None


def test_reap_stops_only_sessions_silent_past_the_grace_period():
    clock = Clock()
    reg = SessionRegistry(grace=120, clock=clock, reaper=False)
    quiet, busy = reg.start("quiet", FakeWork().start), reg.start("busy", FakeWork().start)
    clock.now += 100
    reg.touch("busy")
    assert reg.reap() == [] and not quiet.stopped
    clock.now += 30
    assert reg.reap() == ["quiet"]
    assert quiet.stopped == "Stopped: its browser tab was closed." and reg.get("quiet") is None
    assert not busy.stopped and reg.get("busy") is busy


def test_a_connected_tab_keeps_its_work_however_long_its_page_is_not_run():
    """A busy server may not run a tab's page for longer than the grace period; while the tab's connection
    is open its work stays, and once it closes the work goes after a further grace period."""
    clock, tab_open = Clock(), [True]
    reg = SessionRegistry(grace=120, clock=clock, reaper=False)
    starved = reg.start("starved", FakeWork().start)
    reg.touch("starved", connected=lambda: tab_open[0])
    clock.now += 500
    assert reg.reap() == [] and not starved.stopped
    tab_open[0] = False
    clock.now += 100
    assert reg.reap() == [] and not starved.stopped  # seen connected 100 s ago: still within the grace
    clock.now += 30
    assert reg.reap() == ["starved"] and starved.stopped and reg.get("starved") is None


def test_a_students_work_stays_while_any_of_their_tabs_is_open():
    """A reload or a second tab is the same student (one session id): closing one tab keeps the work."""
    clock, tabs = Clock(), {"first": True, "second": True}
    reg = SessionRegistry(grace=120, clock=clock, reaper=False)
    work = reg.start("alex", FakeWork().start)
    reg.touch("alex", connected=lambda: tabs["first"], tab="first")
    reg.touch("alex", connected=lambda: tabs["second"], tab="second")
    tabs["first"] = False
    clock.now += 500
    assert reg.reap() == [] and not work.stopped
    tabs["second"] = False
    clock.now += 130
    assert reg.reap() == ["alex"] and work.stopped


def test_reaper_thread_stops_a_closed_tabs_job():
    reg = SessionRegistry(grace=0.1)
    work = reg.start("tab", FakeWork().start)
    assert wait_until(lambda: work.stopped)
    assert work.stopped == "Stopped: its browser tab was closed." and reg.get("tab") is None


def test_registry_is_thread_safe():
    reg = SessionRegistry(grace=10, reaper=False)
    works = {}

    def worker(i):
        for k in range(50):
            works[(i, k)] = reg.start(f"s{i % 3}", FakeWork().start)
            reg.touch(f"s{i % 3}")
            reg.reap()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    live = [w for w in works.values() if not w.stopped]
    assert len(live) == 3 and {id(reg.get(f"s{i}")) for i in range(3)} == {id(w) for w in live}


def test_grace_from_env(monkeypatch):
    monkeypatch.delenv("VAE_LAB_SESSION_GRACE", raising=False)
    assert grace_from_env() == 120
    monkeypatch.setenv("VAE_LAB_SESSION_GRACE", "5.5")
    assert grace_from_env() == 5.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("VAE_LAB_SESSION_GRACE", bad)
        with pytest.raises(ValueError, match="VAE_LAB_SESSION_GRACE"):
            grace_from_env()


TINY = TrainConfig(dataset="moons", recon_loss="mse", hidden=[16], epochs=1, batch_size=512)


def job_starter(runs_dir, pool):
    """What a page hands a series: start a job of a configuration titled by its label, and return it."""
    return lambda config, label: TrainingJob(config, card=new_card("", label), runs_dir=runs_dir, pool=pool).start()


def test_the_registry_starts_new_work_only_after_stopping_the_old():
    reg, order = SessionRegistry(grace=10, reaper=False), []
    old = reg.start("a", FakeWork().start)

    def begin():
        order.append(old.stopped)
        return FakeWork().start()
    new = reg.start("a", begin)
    assert order == ["Stopped: a new run was started in its place."] and reg.get("a") is new and new.started


def test_series_trains_each_config_in_turn_and_saves_them(tmp_path):
    series = JobSeries([TINY.replace(beta=b) for b in (0.5, 2.0)], ["β = 0.5", "β = 2"],
                       job_starter(tmp_path, SlotPool(1)))
    assert series.start() is series
    assert series.join(60)
    view = series.view()
    assert view.status == Status.FINISHED and view.done == view.total == 2 and view.progress == 1.0
    assert [job.config.beta for job in series.jobs] == [0.5, 2.0]
    assert view.statuses == [Status.FINISHED, Status.FINISHED] and view.labels == ["β = 0.5", "β = 2"]
    assert len(view.run_dirs) == 2 and all(m == "Finished." for m in view.messages)
    assert [card(Path(d))["title"] for d in view.run_dirs] == ["β = 0.5", "β = 2"]
    assert view.current is not None and view.current.id == series.jobs[-1].id


def test_series_stop_ends_the_running_job_and_skips_the_rest(tmp_path):
    series = JobSeries([TINY.replace(epochs=200, batch_size=8), TINY], ["long", "never"],
                       job_starter(tmp_path, SlotPool(1)))
    series.start()
    series.stop()
    assert series.join(30)
    view = series.view()
    assert view.status == Status.STOPPED and len(series.jobs) <= 1
    assert all(status == Status.STOPPED for status in view.statuses)


def test_a_series_stopped_for_a_reason_gives_it_to_its_running_job(tmp_path):
    series = JobSeries([TINY.replace(epochs=200, batch_size=8), TINY], ["long", "never"],
                       job_starter(tmp_path, SlotPool(1))).start()
    assert wait_until(lambda: series.jobs and series.jobs[0].view().step > 0)
    series.stop("Stopped: its browser tab was closed.")
    assert series.join(30) and len(series.jobs) == 1
    assert series.jobs[0].view().message == "Stopped: its browser tab was closed."
    assert series.view().messages == ["Stopped: its browser tab was closed."]
    assert series.view().statuses == [Status.STOPPED] and series.view().status == Status.STOPPED


def test_a_series_needs_one_label_per_configuration():
    with pytest.raises(ValueError, match="one label per configuration"):
        JobSeries([TINY, TINY], ["only one"], lambda config, label: None)
    with pytest.raises(ValueError, match="at least one configuration"):
        JobSeries([], [], lambda config, label: None)


def test_live_counts_the_sessions_whose_work_is_queued_or_running():
    registry = SessionRegistry(grace=60, reaper=False)
    works = [registry.start(f"s{i}", FakeWork().start) for i in range(3)]
    registry.start("s3", FakeWork().start).stop()
    assert registry.live() == 3
    works[0].stop()
    registry.clear("s1")
    assert registry.live() == 1


def test_live_views_redraw_less_often_as_more_sessions_train():
    paces = [redraw_seconds(n, cost=0.15) for n in range(0, 61)]
    assert paces[0] == paces[1] == REDRAW_LEVELS[0]  # one user gets the fastest pace
    assert paces == sorted(paces) and set(paces) == set(REDRAW_LEVELS)  # slower with load, in a few steps
    assert paces[-1] == REDRAW_LEVELS[-1] <= 5  # and never slower than every 5 s
    for n in range(1, 61):  # redraws of 0.15 s each keep under one process in total, up to the cap
        assert n * 0.15 / paces[n] <= 0.75 or paces[n] == REDRAW_LEVELS[-1]


def test_the_pace_follows_the_measured_cost_of_a_redraw():
    cost = RedrawCost(initial=0.15)
    assert redraw_seconds(5, cost.seconds) == 1.0
    for _ in range(100):  # a slower machine: redraws measured at 0.3 s each
        cost.add(0.3)
    assert cost.seconds == pytest.approx(0.3, abs=1e-3)
    assert redraw_seconds(5, cost.seconds) == 2.0 and redraw_seconds(1, cost.seconds) == 0.6
    assert redraw_seconds(5, 0.05) == 0.6  # a cheaper redraw, a faster pace
