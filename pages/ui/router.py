"""The app's frame: page setup, the navigation, and the first run of a browser session."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.ui import draft, session
from vae_core.jobs.backends import backend
from vae_core.train import warm_up

TRAIN_PAGE = "pages/train.py"
COMPARE_PAGE = "pages/compare.py"
# Shipped with the app: an icon given by Material name is fetched from fonts.gstatic.com, so offline a tab
# had none (and the console an error per page).
ICON = str(Path(__file__).resolve().parents[2] / ".streamlit" / "icon.png")
NAME_ROW = "frame_name"  # key of the row holding the name box on pages without a sidebar
# Streamlit leaves about 100 px between the top menu and a page's title; the page starts just below it. The name
# box's row (right-aligned) sits on the title's line instead of above it, clickable over the title's box.
CSS = f"""<style>
.stMainBlockContainer {{ padding-top: 3.5rem; }}
.st-key-{NAME_ROW} {{ position: relative; z-index: 2; margin-bottom: -3.5rem; pointer-events: none; }}
.st-key-{NAME_ROW} > * {{ pointer-events: auto; }}
</style>"""


def pages() -> list[st.Page]:
    """The app's pages for st.navigation; the first, Train, is the default."""
    return [st.Page(TRAIN_PAGE, title="Train", icon=":material/model_training:", default=True),
            st.Page("pages/explore.py", title="Explore", icon=":material/travel_explore:"),
            st.Page(COMPARE_PAGE, title="Compare", icon=":material/compare:"),
            st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
            st.Page("pages/classroom.py", title="Class", icon=":material/groups:")]


def frame() -> st.Page:
    """What every run does before its page: page setup, this session's first-run setup, navigation.
    Returns the page to run."""
    st.set_page_config(page_title="VAE Lab", page_icon=ICON, layout="wide")
    st.html(CSS)
    st.cache_resource(show_spinner=False)(warm_up)()
    backend()  # made with the server's first page, not on the first Start
    session.remember()
    session.touch()
    session.join_class()
    draft.init_session()
    return st.navigation(pages(), position="top")


def require_router() -> None:
    """Send a session's first run through app.py. Until some run in the process has called st.navigation,
    Streamlit treats a folder named pages/ the old way and runs a requested page file alone (a fresh
    server's first visit to /learn, say): set the frame up, which ends that, and run again."""
    if draft.DRAFT not in st.session_state:
        frame()
        st.rerun()
