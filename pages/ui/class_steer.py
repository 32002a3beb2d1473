"""The Class page's "Steer the class" tab: send the class settings or a lesson, set the rules (locked settings,
an epoch cap), and stop every running job."""

from __future__ import annotations

import dataclasses

import streamlit as st

from pages.ui import draft, text
from vae_core import limits
from vae_core.classroom import cards, policy
from vae_core.config import TrainConfig
from vae_core.jobs import sessions
from vae_core.jobs.backends import backend
from vae_core.views.lessons import LESSONS

STOPPED = "Stopped by the teacher."
FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


def send(classroom) -> None:
    now = classroom.room()
    st.markdown("**Send every student a lesson or settings** · it shows on their Train page, ready to train")
    if now.pushed:
        left, right = st.columns([4, 1.4], vertical_alignment="center")
        left.markdown(f"Sent now: **{text.plain(now.pushed.label)}**")
        if right.button("Take it back", icon=":material/undo:", width="stretch"):
            classroom.push("")
            st.rerun()
    else:
        st.caption("Nothing sent now.")
    what = st.radio("What", ["lesson", "settings"], horizontal=True, key="push_what",
                    format_func={"lesson": "A lesson", "settings": "The Train page's settings"}.get)
    if what == "lesson":
        by_key = {item.key: item for item in LESSONS}
        key = st.selectbox("Lesson", list(by_key), format_func=lambda k: by_key[k].title, key="push_lesson")
        st.caption(by_key[key].claim)
        label, config = by_key[key].title, None
    else:
        config = draft.draft_config()
        st.caption(f"Your Train page's settings: {cards.describe(config)}, {config.epochs} epochs "
                   "(change them on the Train page, then come back).")
        label, key = f"Settings: {cards.describe(config)}", ""
    if st.button("Send to every student", type="primary", icon=":material/send:"):
        if config is None:
            classroom.push(label, lesson=key)
        else:
            classroom.push(label, config=config)
        st.rerun()


def rules(classroom) -> None:
    now = classroom.room()
    cap_limit = limits.current().max_epochs
    st.markdown("**Class rules** · what students may not change (you are not bound by them)")
    with st.form("class_rules", border=False):
        locks = st.multiselect("Settings locked", FIELDS, default=list(now.locks), key="rule_locks",
                               placeholder="none")
        left, right = st.columns([1, 2], vertical_alignment="bottom")
        capped = left.checkbox("Cap epochs", value=now.max_epochs is not None, key="rule_capped")
        cap = right.number_input("Epochs at most", 1, cap_limit, min(now.max_epochs or 20, cap_limit),
                                 key="rule_cap")
        if st.form_submit_button("Save the rules", icon=":material/save:", type="primary"):
            try:
                classroom.set_rules(locks, int(cap) if capped else None)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    allowed = policy.allowed_values(now)
    shown = [f"{name} at {' or '.join(str(v) for v in values)}" for name, values in allowed.items()]
    st.caption(("Locked now: " + "; ".join(shown) + " (the values of what you sent, else the defaults)."
                if shown else "Nothing locked now.")
               + (f" Epochs capped at {now.max_epochs}." if now.max_epochs else " No epoch cap."))


def stop_everything() -> None:
    jobs = [job for job in backend().jobs() if job.alive]
    works = [work for work in sessions.registry().works() if work.alive]
    st.markdown("**Stop every running job** · on this server: running and waiting runs, and series")
    if not st.session_state.get("class_stop_asked"):
        if st.button(f"Stop every running job ({len(jobs)} now)", icon=":material/stop_circle:",
                     disabled=not (jobs or works)):
            st.session_state.class_stop_asked = True
            st.rerun()
        return
    st.warning(f"Stop {len(jobs)} job{'s' if len(jobs) != 1 else ''} of the whole class? Each run keeps what it "
               "trained so far, and its student sees \"Stopped by the teacher.\"", icon=":material/warning:")
    left, right, _ = st.columns([1.3, 1, 2])
    if left.button("Yes, stop them all", type="primary", icon=":material/stop_circle:"):
        for work in works:  # a series first, or it would start its next run
            work.stop(STOPPED)
        for job in jobs:
            job.stop(STOPPED)
        st.session_state.class_stop_asked = False
        st.session_state.class_stopped = len(jobs)
        st.rerun()
    if right.button("Cancel"):
        st.session_state.class_stop_asked = False
        st.rerun()


def steer(classroom) -> None:
    left, right = st.columns(2, border=True)
    with left:
        send(classroom)
    with right:
        rules(classroom)
    with st.container(border=True):
        stop_everything()
        stopped = st.session_state.pop("class_stopped", None)
        if stopped is not None:
            st.success(f"Asked {stopped} job{'s' if stopped != 1 else ''} to stop.")
