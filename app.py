"""VAE Lab: the router. Run with `streamlit run app.py`."""

from urllib.parse import urlencode

import streamlit as st

from pages.ui import draft, fragments, router, session, text
from vae_core.classroom.identity import NAME_MAX
from vae_core.jobs.series import JobSeries

STATUS_SECONDS = 2  # how often other pages refresh the running work's line in the sidebar

page = router.frame()


def status_line(watch: bool) -> None:
    """When `watch`ing, the session's running work in a line (the Train page has its own). An idle open tab
    needs no polling to keep its work: the session registry asks whether its browser is still connected."""
    session.touch()
    if not watch:
        return
    work = session.work()
    if work is None or not work.alive:
        st.rerun()  # it ended: redraw the page without the line
    view = work.view()
    if isinstance(work, JobSeries):
        text = f"Training a series: {view.done} of {view.total} runs done"
    else:
        text = (f"Waiting for a free training slot (number {view.queue_position})" if view.queue_position
                else f"Training: {view.status}, {view.epoch} of {view.epochs} epochs done")
    st.progress(view.progress, text=text)


def _save_name() -> None:
    session.classroom().set_name(session.owner(), st.session_state.student_name)


def name_box(width: str) -> None:
    """Who this student is, as the teacher sees them: a name they type once (a label, not a login)."""
    me = session.classroom().student(session.owner())
    with st.popover(text.plain(me["name"]), icon=":material/person:", width=width,
                    help="Your name as your teacher sees it. Your runs are yours in this browser, whatever the name."):
        with st.form("name", border=False):
            st.text_input("Your name", me["name"] if me["named"] else "", max_chars=NAME_MAX, key="student_name")
            st.form_submit_button("Save", on_click=_save_name)


def share_box() -> None:
    """The link to the Train page with these settings, to copy (st.code's copy button works offline)."""
    query = urlencode(draft.config_to_query(draft.draft_config()))
    with st.popover("Copy link to these settings", icon=":material/link:", width="stretch"):
        st.caption("Anyone opening this link gets these settings on the Train page. It carries the settings "
                   "only, never who you are: that stays in this browser.")
        st.code(f"{st.context.url or ''}{'?' if query else ''}{query}", language=None, wrap_lines=True)


# First in the sidebar, so the fragment keeps its place (and identity) whatever the page draws. Only the Train
# page has settings there: on the others the sidebar holds running work, when there is some, and no empty column.
work = session.work()
train = page.title == "Train"
watch = not train and work is not None and work.alive
if train or watch:
    with st.sidebar:
        fragments.fragment(status_line, STATUS_SECONDS if watch else None)(watch)
with st.sidebar if train else st.container(horizontal=True, horizontal_alignment="right", key=router.NAME_ROW):
    name_box("stretch" if train else "content")
    share = st.container() if train else None  # filled after the page: its settings are the page's latest
page.run()
if share is not None:
    with share:
        share_box()
