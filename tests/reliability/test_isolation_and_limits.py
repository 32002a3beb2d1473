"""Sessions never see or control each other's work; an abandoned session leaks no thread and no memory;
every limit for a shared server is set by its environment variable, enforced, and documented."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import resource
import weakref

import numpy as np
import pytest

from vae_core import limits
from vae_core.jobs import sessions, slots
from vae_core.config import ConfigError, TrainConfig
from vae_core.data import DataError, load_upload
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.sessions import SessionRegistry, grace_from_env
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status
from polling import wait_until
from students import student
from reliability_helpers import REPO, npz_of, page_ok, training_threads, warnings
from upload_files import png, zip_of

LONG = TrainConfig(epochs=400, hidden=[32], batch_size=16)


# --- isolation ------------------------------------------------------------------------------------
def test_two_browser_sessions_never_see_or_control_each_others_job(new_app):
    alice, bob = new_app(), new_app()
    alice.run()
    bob.run()
    assert re.fullmatch(r"[0-9a-f]{24}", student(alice))
    assert student(alice) != student(bob)
    alice.sidebar.number_input(key="cfg_epochs").set_value(400).run()
    alice.button(key="start").click().run()
    job = sessions.registry().get(student(alice))
    assert job is not None and wait_until(lambda: job.view().step > 0)

    def still_training() -> bool:
        """Alice's job trains on: two more steps after Bob's action (a stop lets at most the step under way
        end). Read through job.view() only: the job may train in another process."""
        step = job.view().step
        return wait_until(lambda: job.view().step >= step + 2) and job.alive and job.view().status == Status.RUNNING
    bob.run()
    page_ok(bob)
    assert bob.button(key="stop").disabled and bob.button(key="reset").disabled
    assert bob.progress[0].text.startswith("Ready")
    bob.sidebar.number_input(key="cfg_epochs").set_value(400).run()
    bob.button(key="start").click().run()  # Bob's own run does not replace Alice's
    bobs = sessions.registry().get(student(bob))
    assert bobs is not job and still_training()
    bob.button(key="reset").click().run()  # asks first: Bob's run trains
    bob.button(key="confirm_yes").click().run()
    assert bobs.join(30) and still_training()
    bob.switch_page("pages/explore.py").run()
    page_ok(bob)
    assert "This session's run" not in (bob.selectbox(key="explore_run").options
                                        if bob.get("selectbox") else [])
    alice.button(key="stop").click().run()
    assert job.join(20) and job.view().status == Status.STOPPED


def test_an_abandoned_session_is_reaped_and_leaks_no_thread_and_no_memory(digits):
    before = len(training_threads())
    registry = SessionRegistry(grace=0.4)
    pool = SlotPool(2)
    kept_alive = registry.start("open tab", TrainingJob(LONG, digits, pool=pool).start)
    refs = []
    for tab in range(4):  # closed tabs: never touched again
        job = TrainingJob(LONG, digits, pool=pool)
        registry.start(f"closed {tab}", job.start)
        refs.append(weakref.ref(job))
    del job

    def closed_tabs_reaped() -> bool:  # while the open tab keeps being seen
        registry.touch("open tab")
        return not any(r() is not None and r().alive for r in refs)
    assert wait_until(closed_tabs_reaped, every=0.05), "a closed tab's job still runs after the grace period"
    assert {registry.get(f"closed {tab}") for tab in range(4)} == {None}
    assert kept_alive.alive and kept_alive.view().status == Status.RUNNING  # the open tab, touched, keeps its job

    def released() -> bool:  # a job's thread lets go of it just after the job has ended
        gc.collect()
        return [r() for r in refs] == [None] * 4
    assert wait_until(released), "a reaped job is still referenced somewhere"
    registry.clear("open tab")
    assert kept_alive.join(20)
    assert wait_until(lambda: len(training_threads()) <= before) and pool.running == 0
    with registry._lock:
        assert not any(s.startswith("closed") for s in registry._seen)  # nothing kept of the closed tabs


def test_a_queued_job_of_a_closed_tab_gives_its_place_up(digits):
    registry = SessionRegistry(grace=0.3)
    pool = SlotPool(1)
    running = registry.start("open", TrainingJob(LONG, digits, pool=pool).start)
    queued = registry.start("closed", TrainingJob(LONG, digits, pool=pool).start)
    assert wait_until(lambda: queued.view().queue_position == 1)

    def closed_tab_reaped() -> bool:  # while the open tab keeps being seen
        registry.touch("open")
        return not queued.alive
    assert wait_until(closed_tab_reaped, every=0.05)
    assert queued.view().status == Status.STOPPED and pool.position(queued) == 0
    registry.clear("open")
    assert running.join(20)


# --- limits, each by its environment variable -----------------------------------------------------
def test_max_jobs(monkeypatch, digits):
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "1")
    monkeypatch.setattr(slots, "_default", None)  # the process-wide pool is sized from the variable
    first, second = TrainingJob(LONG, digits).start(), TrainingJob(LONG, digits).start()
    try:
        assert wait_until(lambda: second.view().queue_position == 1 and first.view().status == Status.RUNNING)
        step = first.view().step
        assert wait_until(lambda: first.view().step >= step + 20)  # the first trains on, the second waits
        assert second.view().status == Status.QUEUED and second.view().step == 0
        assert second.view().queue_position == 1
    finally:
        first.stop()
        second.stop()
        assert first.join(20) and second.join(20)
    assert slots.default_pool().limit == 1


def test_max_jobs_shows_the_queue_on_the_train_page(monkeypatch, new_app):
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "1")
    monkeypatch.setattr(slots, "_default", None)
    first, second = new_app(), new_app()
    for at in (first, second):
        at.run()
        at.sidebar.number_input(key="cfg_epochs").set_value(400).run()
        at.button(key="start").click().run()
    page_ok(second)
    assert any("you are number 1 in the queue" in p.text for p in second.progress)


def test_max_epochs(monkeypatch, new_app):
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "5")
    with pytest.raises(ConfigError, match="epochs: must be between 1 and 5"):
        TrainConfig(epochs=6)
    assert TrainConfig().epochs == 5  # the default fits under a lower cap
    at = new_app()
    at.query_params["epochs"] = "6"
    at.run()
    page_ok(at)
    assert any("epochs" in w for w in warnings(at)) and at.session_state["draft"]["epochs"] == 5
    assert at.sidebar.number_input(key="cfg_epochs").max == 5


def test_limits_below_the_defaults_keep_the_app_working(monkeypatch, new_app):
    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "3")
    monkeypatch.setenv("VAE_LAB_MAX_LATENT", "1")
    at = new_app()
    at.run()
    page_ok(at)
    assert (at.session_state["draft"]["epochs"], at.session_state["draft"]["latent_dim"]) == (3, 1)
    at.button(key="start").click().run()
    page_ok(at)
    job = sessions.registry().get(student(at))
    assert job.join(60) and job.view().status == Status.FINISHED and len(job.view().epoch_history) == 3


@pytest.mark.slow
def test_limits_below_the_lesson_presets_keep_a_fresh_server_working():
    """A teacher sets VAE_LAB_MAX_EPOCHS=20 and VAE_LAB_MAX_LATENT=8 before starting the server."""
    script = ("from streamlit.testing.v1 import AppTest\n"
              "at = AppTest.from_file('app.py', default_timeout=60)\nat.run()\n"
              "print('EXCEPTIONS', [e.value for e in at.exception])")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "VAE_LAB_MAX_EPOCHS": "20",
                               "VAE_LAB_MAX_LATENT": "8"})
    assert "EXCEPTIONS []" in done.stdout, (done.stdout + done.stderr)[-1500:]


def test_max_latent(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_LATENT", "4")
    with pytest.raises(ConfigError, match="latent_dim"):
        TrainConfig(latent_dim=5)
    assert TrainConfig(latent_dim=4).latent_dim == 4


def test_max_params(monkeypatch, digits):
    monkeypatch.setenv("VAE_LAB_MAX_PARAMS", "5000")
    job = TrainingJob(TrainConfig(hidden=[256, 128]), digits, pool=SlotPool(1)).start()
    assert job.join(20)
    assert job.view().status == Status.FAILED and "VAE_LAB_MAX_PARAMS" in job.view().message
    small = TrainingJob(TrainConfig(hidden=[16], epochs=1), digits, pool=SlotPool(1)).start()
    assert small.join(60) and small.view().status == Status.FINISHED


def test_max_params_refuses_a_billion_parameter_model_without_allocating_it(digits):
    """hidden=4096,4096,4096 with the convolutional model is a valid link; the model would take 4 GB."""
    config = TrainConfig(architecture="conv", hidden=[4096, 4096, 4096], epochs=1)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    job = TrainingJob(config, digits, pool=SlotPool(1)).start()
    assert job.join(60)
    assert job.view().status == Status.FAILED and "VAE_LAB_MAX_PARAMS" in job.view().message
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 500, f"refusing the model took {grown_mb:.0f} MB"


def test_max_upload_mb(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match="VAE_LAB_MAX_UPLOAD_MB"):
        load_upload(npz_of(images=np.random.default_rng(0).integers(0, 255, (20, 256, 256), np.uint8)), "a.npz")
    with pytest.raises(DataError, match="VAE_LAB_MAX_UPLOAD_MB"):
        load_upload(npz_of(compressed=True, images=np.zeros((40, 256, 256), np.uint8)), "a.npz")


def test_max_images(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGES", "5")
    with pytest.raises(DataError, match="VAE_LAB_MAX_IMAGES"):
        load_upload(npz_of(images=np.zeros((6, 8, 8), np.uint8)), "six.npz")
    with pytest.raises(DataError, match="VAE_LAB_MAX_IMAGES"):
        load_upload(zip_of({f"{i}.png": png() for i in range(6)}), "six.zip")
    assert load_upload(npz_of(images=np.zeros((5, 8, 8), np.uint8)), "five.npz")


def test_max_image_side(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", "16")
    with pytest.raises(DataError, match="VAE_LAB_MAX_IMAGE_SIDE"):
        load_upload(npz_of(images=np.zeros((4, 17, 16), np.uint8)), "wide.npz")
    with pytest.raises(DataError, match="VAE_LAB_MAX_IMAGE_SIDE"):
        load_upload(zip_of({f"{i}.png": png(size=(16, 17)) for i in range(3)}), "tall.zip")


def test_session_grace(monkeypatch, digits):
    monkeypatch.setenv("VAE_LAB_SESSION_GRACE", "0.3")
    registry = SessionRegistry()
    assert registry.grace == 0.3 == grace_from_env()
    job = registry.start("tab", TrainingJob(LONG, digits, pool=SlotPool(1)).start)
    assert job.join(60), "the job outlived the grace period"
    assert job.view().status == Status.STOPPED and registry.get("tab") is None


@pytest.mark.parametrize("variable", ["VAE_LAB_MAX_JOBS", "VAE_LAB_MAX_EPOCHS", "VAE_LAB_MAX_LATENT",
                                      "VAE_LAB_MAX_PARAMS", "VAE_LAB_MAX_UPLOAD_MB", "VAE_LAB_MAX_IMAGES",
                                      "VAE_LAB_MAX_IMAGE_SIDE"])
@pytest.mark.parametrize("bad", ["lots", "0", "-1", "1.5"])
def test_a_bad_limit_setting_is_refused_by_name(monkeypatch, variable, bad):
    monkeypatch.setenv(variable, bad)
    with pytest.raises(ValueError, match=variable):
        limits.current()


def test_every_limit_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    source = "".join((REPO / "vae_core" / name).read_text()
                     for name in ("limits.py", "jobs/sessions.py", "jobs/backends.py"))
    variables = set(re.findall(r"VAE_LAB_[A-Z_]+", source)) - {"VAE_LAB_"}
    assert len(variables) >= 8
    for variable in sorted(variables):
        assert f"`{variable}`" in readme, f"{variable} is not documented in README.md"
