"""Reliability fixtures: AppTest browser sessions with their own runs folder, each session's work stopped after."""

from __future__ import annotations

import pytest

from reliability_helpers import APP

@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """The app's runs folder ($VAE_LAB_RUNS) for this test."""
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture
def new_app(runs_dir):
    """A factory of fresh AppTest browser sessions; every session's work is stopped afterwards."""
    from streamlit.testing.v1 import AppTest

    from students import student
    from vae_core.jobs import sessions

    made = []

    def make():
        at = AppTest.from_file(str(APP), default_timeout=60)
        made.append(at)
        return at

    yield make
    for at in made:
        if student(at) is not None:
            work = sessions.registry().get(student(at))
            sessions.registry().clear(student(at))
            if work is not None:
                work.join(5)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (item.rep_call), so fixtures can tell a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
