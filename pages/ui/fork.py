"""A saved run's "Open settings in Train" and "Continue / fork…": its settings into the Train page's draft, or a new
run of this student's that goes on from one of its kept epochs with a new β and learning rate (vae_core/forks.py),
training live on the Train page. Anyone's visible run may be forked; the fork is the student's, the parent untouched.
"""

from __future__ import annotations

import streamlit as st

from pages.ui import draft, live_view, router, session
from vae_core import checkpoints, limits
from vae_core.classroom import cards
from vae_core.classroom.quotas import QuotaError
from vae_core.config import RANGES, ConfigError
from vae_core.data import DataError
from vae_core.forks import ForkError, epochs_offered, prepare
from vae_core.jobs import sessions
from vae_core.jobs.backends import backend
from vae_core.runs import RunError, SavedRun

ERROR = "fork_error"  # (run name, why its fork did not start)


def offer(run: SavedRun) -> None:
    """The two actions on a saved run: its settings into Train, or a fork of it from a kept epoch."""
    offered = epochs_offered(run)
    name, error = st.session_state.get(ERROR) or ("", "")
    error = error if name == run.name else ""
    with st.expander("Open in Train · continue or fork this run", icon=":material/call_split:", expanded=bool(error)):
        if st.button("Open settings in Train", key="open_in_train", icon=":material/tune:",
                     help="Puts this run's settings into the Train page, to change and start afresh."):
            draft.load_config(run.config)
            st.switch_page(router.TRAIN_PAGE)
        if not offered:
            st.caption("This run finished no epoch: there is nothing to go on from.")
            return
        with st.form(f"fork-{run.name}", border=False):
            st.markdown("**Continue / fork…** a new run of yours that goes on from this one's state at the end of an "
                        "epoch (weights, optimiser, schedules, random stream), with the β and learning rate you set "
                        "here. This run stays as it is.")
            when, beta, lr, epochs = st.columns(4)
            when.selectbox("From the end of epoch", offered, index=len(offered) - 1, key="fork_epoch")
            last = _last_settings(run)
            beta.number_input("β", *RANGES["beta"], value=last["beta"], format="%g", key="fork_beta")
            lr.number_input("Learning rate", *RANGES["lr"], value=last["lr"], format="%g", key="fork_lr")
            top = limits.current().max_epochs
            epochs.number_input("Epochs in all", 2, top, min(top, max(run.config.epochs, offered[-1] + 1)),
                                key="fork_epochs")
            st.form_submit_button("Start the fork", icon=":material/call_split:", type="primary",
                                  on_click=_start, args=(run,))
        if not checkpoints.kept(run.path, run.meta.get("epochs_done") or 0):
            st.caption("This run kept no training state (saved before runs did, by the command line, or imported): a "
                       "fork goes on from its final weights with a fresh optimiser and learning-rate schedule.")
        elif len(offered) < (run.meta.get("epochs_done") or 0):
            st.caption("Runs keep their state at every epoch while it fits in 20 MB, else at every few epochs and "
                       "at the last.")
        if error:
            st.error(error, icon=":material/block:")
    if st.session_state.pop("fork_started", False):
        st.switch_page(router.TRAIN_PAGE)  # where the fork trains live


def _last_settings(run: SavedRun) -> dict[str, float]:
    """β and the learning rate as the run ended: its settings, with its live changes applied."""
    last, changes = {"beta": run.config.beta, "lr": run.config.lr}, run.meta.get("live_changes")
    for change in changes if isinstance(changes, list) else []:
        for name in last:
            value = change.get(name) if isinstance(change, dict) else None
            if isinstance(value, float) and RANGES[name][0] <= value <= RANGES[name][1]:
                last[name] = value
    return last


def _start(run: SavedRun) -> None:
    """Start the fork for this student (their current work stops), under the class's rules and their quota."""
    state = st.session_state
    try:
        config = run.config.replace(beta=float(state.fork_beta), lr=float(state.fork_lr),
                                    epochs=int(state.fork_epochs))
        fork = prepare(run, config, int(state.fork_epoch))
        session.check_start([config])
        digest = cards.card(run)["data"]  # an upload the parent trained on: the fork trains on it too
        upload = session.run_dataset(run) if digest else None
        me = session.owner()
        card = cards.new_card(me, "", session.classroom().room().period, digest)
        job = sessions.registry().start(me, lambda: backend().start(config, upload, owner=me, card=card, fork=fork))
    except (ForkError, ConfigError, QuotaError, RunError, DataError) as exc:
        state[ERROR] = (run.name, f"Not started — {exc}")
        return
    state[ERROR] = None
    draft.load_config(config)
    state.live_lr, state.live_beta = config.lr, config.beta
    state[live_view.PAUSED] = (job.id, False)
    state.fork_started = True
