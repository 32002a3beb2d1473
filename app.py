"""VAE Lab: the router. Run with `streamlit run app.py`."""

import streamlit as st

from pages import common
from vae_core.job import TrainingJob

st.set_page_config(page_title="VAE Lab", page_icon=":material/blur_on:", layout="wide")
common.init_session()

train = st.Page(common.TRAIN_PAGE, title="Train", icon=":material/model_training:", default=True)
page = st.navigation([
    train,
    st.Page("pages/explore.py", title="Explore", icon=":material/travel_explore:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
], position="top")


def background_status(polling: bool) -> None:
    """This session's work, in a line; while it runs, it also keeps the session alive on other pages."""
    common.touch()
    work = common.work()
    if work is None or work.alive != polling:
        if polling:
            st.rerun()
        return
    view = work.view()
    if isinstance(work, TrainingJob):
        text = (f"Waiting for a free training slot (number {view.queue_position})" if view.queue_position
                else f"Training: {view.status}, epoch {view.epoch} of {view.epochs}")
    else:
        text = f"Training a series: {view.done} of {view.total} runs done"
    st.progress(view.progress, text=text)


page.run()
if page is not train:  # after the page: a page switch restarts the page's containers
    work = common.work()
    if work is not None and work.alive:
        with st.sidebar:
            st.fragment(run_every=2.0)(background_status)(True)
