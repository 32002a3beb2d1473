"""This student: their token (kept in a cookie), their owner id, their work (a run or a series, started
through the backend under the class rules), their data."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from vae_core import runs
from vae_core.classroom import cards, identity, policy, quotas
from vae_core.classroom.cards import Actor
from vae_core.classroom.room import Classroom
from vae_core.config import TrainConfig
from vae_core.data import DataError, Dataset, load_dataset, stored
from vae_core.data.availability import availability
from vae_core.jobs import sessions
from vae_core.jobs.backends import Job, backend
from vae_core.jobs.series import JobSeries
from vae_core.maths.models import VAE

UPLOAD = "upload"  # session key of the Dataset this session uploaded
COOKIE = "vae_lab_student"
TOKEN = "student_token"
COOKIE_DAYS = 365


def token() -> str:
    """This student's secret token: from the session, else the browser's cookie, else a new one (which the
    browser is then asked to keep: `remember()`)."""
    if TOKEN not in st.session_state:
        cookie = st.context.cookies.get(COOKIE) if get_script_run_ctx() is not None else None
        st.session_state[TOKEN] = cookie if identity.valid_token(cookie) else identity.new_token()
    return st.session_state[TOKEN]


def remember() -> None:
    """Ask the browser to keep the token in a cookie, so a reload or a second tab is the same student. The
    token never goes into the page's link: a shared link carries settings only."""
    if st.context.cookies.get(COOKIE) != token():
        st.html(f"<script>document.cookie = '{COOKIE}={token()}; path=/; max-age={COOKIE_DAYS * 86400}; "
                "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def owner() -> str:
    return identity.owner_of(token())


def join_class() -> None:
    """Put this student on the board of the class session under way (once per session and period)."""
    period = classroom().room().period
    if period and st.session_state.get("joined") != period:
        classroom().join(owner(), period)
        st.session_state.joined = period


def classroom() -> Classroom:
    return Classroom(runs_dir())


def actor() -> Actor:
    """Who this student is for the run actions, and whether they proved the teacher key."""
    me = owner()
    return Actor(me, classroom().is_teacher(me))


def touch() -> None:
    """Tell the registry this student is still here, and how to ask whether this tab is still open."""
    ctx = get_script_run_ctx()
    sessions.registry().touch(owner(), connected=_connection_probe(), tab=ctx.session_id if ctx else "")


def _connection_probe():
    """Whether this browser tab is still connected to the server (None where there is no server: AppTest). A
    busy server may leave a tab's script unrun for longer than the grace period; its open connection still
    keeps its work."""
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, streamlit_session = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(streamlit_session)


def work() -> Job | JobSeries | None:
    return sessions.registry().get(owner())


def job() -> Job | None:
    """This student's single training run, if that is its current work."""
    current = work()
    return None if isinstance(current, JobSeries) else current


def check_start(configs: list[TrainConfig]) -> None:
    """ConfigError or quotas.QuotaError when the class rules or this student's quota refuse these runs: the
    server's own check, whatever the page showed."""
    me, room = owner(), classroom().room()
    teacher = classroom().is_teacher(me)
    for config in configs:
        policy.check(config, room, teacher=teacher)
    quotas.check_room_for_runs(runs_dir(), me, len(configs))


def start_run(config: TrainConfig, upload: Dataset | None = None, title: str = "", lesson: str = "") -> Job:
    """Train `config` (on `upload`, else the built-in dataset it names) for this student, stopping whatever
    they were doing; `lesson`: the key of the lesson it is a run of. Raises ConfigError or QuotaError (see
    `check_start`) before anything starts."""
    check_start([config])
    me = owner()
    data = stored.save(upload, runs_dir(), me) if upload is not None else ""
    card = cards.new_card(me, title, classroom().room().period, data, lesson)
    return sessions.registry().start(me, lambda: backend().start(config, upload, owner=me, card=card))


def start_series(configs: list[TrainConfig], labels: list[str], title: str = "", lesson: str = "") -> None:
    """Train several runs one after another in the background, each titled "`title`: label" (or the label),
    of `lesson` (a key) when they are a lesson's, moved within the class's rules; the Compare page follows
    them and selects their runs once the series has ended."""
    room = classroom().room()
    if not classroom().is_teacher(owner()):  # a lesson's runs within the class's rules (an epoch cap, say)
        configs = [policy.fit_to(config, room) for config in configs]
    check_start(configs)
    me, period = owner(), room.period

    def start_one(config: TrainConfig, label: str) -> Job:
        card = cards.new_card(me, f"{title}: {label}" if title else label, period, lesson=lesson)
        return backend().start(config, owner=me, card=card)
    sessions.registry().start(me, JobSeries(configs, labels, start_one).start)
    st.session_state.series_shown = False


def clear() -> None:
    """Stop this student's work and forget it."""
    sessions.registry().clear(owner())


def runs_dir():
    return runs.default_runs_dir()


def dataset(name: str) -> Dataset:
    """This session's upload of that name, else the built-in dataset (DataError when it cannot be had: at once,
    without trying a download, when no copy is here and its mirror does not answer)."""
    upload = st.session_state.get(UPLOAD)
    if upload is not None and upload.name == name:
        return upload
    if not availability(name).usable:
        raise DataError(f"{name} is not installed here, and cannot be downloaded from here")
    return load_dataset(name)


def run_dataset(run: runs.SavedRun) -> Dataset:
    """The data a saved run trained on: the uploaded data kept with it, else the built-in dataset."""
    digest = cards.card(run)["data"]
    return stored.load(digest, runs_dir()) if digest else load_dataset(run.config.dataset)


def saved_model(run: runs.SavedRun) -> VAE:
    """A saved run's model, loaded once per version of its weights and shared by every session."""
    return _load_model(str(run.path), str(run.meta.get("saved_at")))


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_model(path: str, saved_at: str) -> VAE:
    return runs.load_run(path).load_model()
