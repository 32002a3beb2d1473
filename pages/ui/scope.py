"""Which saved runs Explore and Compare list: this student's own, or the whole class's with theirs first."""

from __future__ import annotations

import streamlit as st

from pages.ui import session
from vae_core.classroom import cards, quotas
from vae_core.runs import RunError, SavedRun, list_runs, load_run

SCOPES = {"mine": "My runs", "class": "The whole class"}


def runs_in_scope(key: str) -> list[SavedRun]:
    """A switch between this student's runs and everyone's (session key `key`: "mine" or "class"); the runs
    it selects, this student's first, newest first within each."""
    if st.session_state.get(key) not in SCOPES:
        st.session_state[key] = "mine"
    scope = st.radio("Show", list(SCOPES), format_func=SCOPES.get, key=key, horizontal=True,
                     label_visibility="collapsed")
    me = session.owner()
    if scope == "mine":  # read the cards first: only this student's runs are loaded
        return [run for path in reversed(quotas.owned_folders(session.runs_dir(), me)) if (run := _load(path))]
    saved = list_runs(session.runs_dir(), steps=False)
    return ([run for run in saved if cards.owned_by(run, me)]
            + [run for run in saved if not cards.owned_by(run, me)])


def _load(path) -> SavedRun | None:
    try:
        return load_run(path, steps=False)
    except RunError:
        return None


def owner_name(run: SavedRun) -> str:
    """Whose run it is, in words: "you", a classmate's display name, or "unowned"."""
    owner = cards.card(run)["owner"]
    if not owner:
        return cards.UNOWNED
    return "you" if owner == session.owner() else session.classroom().student(owner)["name"]
