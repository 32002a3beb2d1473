"""End-to-end fixtures: the app served by `streamlit run` on a free port, and Debian's headless Chromium."""

import os
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, CHROMIUM_ARGS
from bench.server import streamlit_server

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
TEACHER_KEY = "e2e-teacher-key"  # the Class page's key on `class_server`


def _serve(tmp_path_factory, env: dict | None = None, **more):
    """Serve a fresh app with its own runs folder and `env` added to the environment; yields a Server with
    `url`, `runs` (the folder), `log` (the server's output) and the attributes `more`."""
    runs = tmp_path_factory.mktemp("runs")
    log = tmp_path_factory.mktemp("log") / "streamlit.log"
    try:
        with streamlit_server({**os.environ, **(env or {}), "VAE_LAB_RUNS": str(runs)}, log) as (url, _):
            yield type("Server", (), {"url": url, "runs": runs, "log": log, **more})
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Base URL of a fresh app with its own runs folder; the folder is `server.runs`."""
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def class_server(tmp_path_factory):
    """Like `server`, with the teacher's Class page switched on: its key is `class_server.key`."""
    yield from _serve(tmp_path_factory, {"VAE_LAB_TEACHER_KEY": TEACHER_KEY}, key=TEACHER_KEY)


@pytest.fixture(scope="session")
def browser(playwright):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1700})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def shoot():
    """Save a screenshot as test-artifacts/screenshots/<name>.png, once nothing is still loading."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.wait_for_function("""() => !document.querySelector('[data-testid=stSkeleton]')
            && Array.from(document.images).every(img => img.complete)""", polling=50)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    return take


@pytest.fixture(scope="session")
def train_on_page():
    """Train a run as a student does: open the Train page at `link` (a link carrying its settings), press Start
    once the page has settled (a click during a rerun can be lost), and wait until `ended` shows."""
    def train(page, link: str, ended: str) -> None:
        page.goto(link)
        start = page.get_by_role("button", name="Start", exact=True)
        start.wait_for()
        page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")
        start.click()
        page.get_by_text(ended).wait_for(timeout=60_000)
    return train
