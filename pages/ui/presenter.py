"""Presenter mode, for the projector: larger type, the live view without the settings, and slow motion so a
run of a few seconds lasts long enough to narrate. Kept in the session and in the link (?present=1)."""

from __future__ import annotations

import streamlit as st

from vae_core.jobs.backends import Job

ON = "presenter"  # session key: whether presenter mode is on (kept while other pages show)
PARAM = "present"  # the link's parameter: ?present=1
PACE = "presenter_pace"  # session key: the slow-motion pace chosen, in seconds per step
SENT = "presenter_sent"  # session key: (job id, pace) last sent, so each rerun sends a change only
PACES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# Streamlit sizes its type in rem: a larger root enlarges text, widgets and spacing together. The sidebar goes
# whole (the page leaves its settings out; the name box and status line are the frame's).
CSS = """<style>
html { font-size: 22px; }
[data-testid="stSidebar"], [data-testid="stExpandSidebarButton"] { display: none; }
.stMainBlockContainer { max-width: none; padding-left: 2.5rem; padding-right: 2.5rem; }
</style>"""


def active() -> bool:
    """Whether presenter mode is on: as the link says on a session's first look, then as the toggle left it."""
    if ON not in st.session_state:
        st.session_state[ON] = st.query_params.get(PARAM) == "1"
    return st.session_state[ON]


def pace() -> float:
    """Seconds each step waits: the chosen slow motion in presenter mode, else none."""
    return st.session_state.get(PACE, 0.0) if active() else 0.0


def _remember(key: str, widget: str) -> None:
    """Keep a widget's value under a key of its own: a widget's state goes while other pages show."""
    st.session_state[key] = st.session_state[widget]


def bar(job: Job | None) -> bool:
    """The toggle and, when on, the slow-motion control and the larger type; sends the pace to the running job.
    Returns whether presenter mode is on (the page then leaves its settings out)."""
    on = active()
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.toggle("Presenter mode", value=on, key="presenter_toggle", on_change=_remember, args=(ON, "presenter_toggle"),
                help="For a projector: larger type, no settings, and slow motion to narrate a run.")
    if on:
        st.html(CSS)
        right.select_slider("Slow motion: seconds each training step waits", PACES, value=pace(),
                            key="presenter_slider", on_change=_remember, args=(PACE, "presenter_slider"),
                            format_func=lambda s: "full speed" if s == 0 else f"{s:g} s")
    if on and st.query_params.get(PARAM) != "1":
        st.query_params[PARAM] = "1"
    elif not on and PARAM in st.query_params:
        del st.query_params[PARAM]
    sent = st.session_state.get(SENT)  # a tab that never slowed this run leaves its pace to the tab that did
    if job is not None and not job.state().status.ended and (on or (sent and sent[0] == job.id)) \
            and sent != (job.id, pace()):
        job.set_pace(pace())
        st.session_state[SENT] = (job.id, pace())
    return on
