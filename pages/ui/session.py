"""This browser session: its id, its work (a run or a series, started through the backend), its data."""

from __future__ import annotations

import uuid

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset, load_dataset
from vae_core.jobs import sessions
from vae_core.jobs.backends import Job, backend
from vae_core.jobs.series import JobSeries
from vae_core.maths.models import VAE

UPLOAD = "upload"  # session key of the Dataset this session uploaded


def session_id() -> str:
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    return st.session_state.session_id


def touch() -> None:
    """Tell the registry this browser session is still here, and how to ask whether its tab is still open."""
    sessions.registry().touch(session_id(), connected=_connection_probe())


def _connection_probe():
    """Whether this session's browser tab is still connected to the server (None where there is no server:
    AppTest). A busy server may leave a tab's script unrun for longer than the grace period; its open
    connection still keeps its work."""
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, streamlit_session = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(streamlit_session)


def work() -> Job | JobSeries | None:
    return sessions.registry().get(session_id())


def job() -> Job | None:
    """This session's single training run, if that is its current work."""
    current = work()
    return None if isinstance(current, JobSeries) else current


def start_run(config: TrainConfig, upload: Dataset | None = None) -> Job:
    """Train `config` (on `upload`, else the built-in dataset it names) for this session, stopping whatever it
    was doing."""
    owner = session_id()
    return sessions.registry().start(owner, lambda: backend().start(config, upload, owner=owner))


def start_series(configs: list[TrainConfig], labels: list[str]) -> None:
    """Train several runs one after another in the background; the Compare page follows them and selects
    their runs once the series has ended."""
    owner = session_id()
    series = JobSeries(configs, labels, lambda config: backend().start(config, owner=owner))
    sessions.registry().start(owner, series.start)
    st.session_state.series_shown = False


def clear() -> None:
    """Stop this session's work and forget it."""
    sessions.registry().clear(session_id())


def runs_dir():
    return runs.default_runs_dir()


def dataset(name: str) -> Dataset:
    """This session's upload of that name, else the built-in dataset (DataError when it cannot be had)."""
    upload = st.session_state.get(UPLOAD)
    return upload if upload is not None and upload.name == name else load_dataset(name)


def saved_model(run: runs.SavedRun) -> VAE:
    """A saved run's model, loaded once per version of its weights and shared by every session."""
    return _load_model(str(run.path), str(run.meta.get("saved_at")))


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_model(path: str, saved_at: str) -> VAE:
    return runs.load_run(path).load_model()
