"""AppTest fixtures: the app in-process, runs saved to a temporary folder, each session's work stopped after."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vae_core.config import TrainConfig
from students import TOKEN, student
from vae_core.classroom.cards import new_card
from vae_core.classroom.identity import new_token
from vae_core.jobs import sessions
from vae_core.jobs.backends import TRAINER_ENV, backend

APP = Path(__file__).resolve().parents[2] / "app.py"
TINY = TrainConfig(epochs=1, hidden=[32])


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def app(runs_dir):
    """A fresh browser session of the app; call .run() to render it."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state[TOKEN] = new_token()  # as if its browser had a cookie: the runs `train_run` saves are its own
    yield at
    if student(at) is not None:
        sessions.registry().clear(student(at))


@pytest.fixture(params=["threads", "process"])
def any_backend(request, monkeypatch):
    """The test runs once with each backend: pages must not know which one trains their runs."""
    monkeypatch.setenv(TRAINER_ENV, request.param)
    return request.param


@pytest.fixture
def train_run(runs_dir, app):
    """Train and save a small run of the `app` session's student, as the Train page would; returns its folder."""
    def train(config: TrainConfig = TINY) -> Path:
        owner = student(app)
        job = backend().start(config, owner=owner, card=new_card(owner, ""), runs_dir=runs_dir)
        assert job.join(60), "the training job did not finish in time"
        return Path(job.view().run_dir)
    return train


def work_of(at: AppTest):
    """The work the registry holds for this AppTest's browser session."""
    return sessions.registry().get(student(at))


@pytest.fixture
def session_work():
    return work_of
