"""VAE Lab: the router. Run with `streamlit run app.py`."""

import sys

import streamlit as st

from pages import common
from vae_core.sessions import JobSeries
from vae_core.trainer_process import use_trainer_process

STATUS_SECONDS = 2  # how often other pages refresh the running work's line in the sidebar
# How long a thread may keep the GIL while another waits for it (Python's default: 5 ms), when the runs
# train on the server's own threads: a page run or the event loop waited up to 5 ms after every torch op
# of a training thread (bench/README.md, "Classroom load"). With the trainer process (the default) the
# server's threads only draw pages, which get more done between switches at the default.
SWITCH_INTERVAL = 0.0005

if not use_trainer_process():
    sys.setswitchinterval(SWITCH_INTERVAL)

page = common.frame()


def status_line(watch: bool) -> None:
    """When `watch`ing, the session's running work in a line (the Train page has its own). An idle open tab
    needs no polling to keep its work: the session registry asks whether its browser is still connected."""
    common.touch()
    if not watch:
        return
    work = common.work()
    if work is None or not work.alive:
        st.rerun()  # it ended: redraw the page without the line
    view = work.view()
    if isinstance(work, JobSeries):
        text = f"Training a series: {view.done} of {view.total} runs done"
    else:
        text = (f"Waiting for a free training slot (number {view.queue_position})" if view.queue_position
                else f"Training: {view.status}, {view.epoch} of {view.epochs} epochs done")
    st.progress(view.progress, text=text)


# First in the sidebar, so the fragment keeps its place (and identity) whatever the page draws.
work = common.work()
watch = page.title != "Train" and work is not None and work.alive
with st.sidebar:
    common.fragment(status_line, STATUS_SECONDS if watch else None)(watch)
page.run()
