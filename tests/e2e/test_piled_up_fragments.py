"""Why some of thirty students' tabs went blank ("Bad delta path index 4 (should be between [0, 1])"), shown
on the smallest app that does it (tests/e2e/apps/piled_up_fragments.py), served with the app's own settings.

When the server falls behind, fragment runs start before it has sent the previous run's messages. Each such
run clears the unsent messages of its fragment, but Streamlit keeps the cached-message references among them
(a large element the browser already has, sent by its hash): the browser then gets a reference into a
fragment block whose other elements were dropped, throws, and that tab stops updating. The app's settings
(.streamlit/config.toml, global.minCachedMessageSize) send no such references, so nothing is left dangling.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from bench.server import streamlit_server

pytestmark = pytest.mark.e2e

BREAKS = ("Bad delta path index", "Cannot set a node at a delta path")


@pytest.fixture(scope="module")
def piled_up(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "streamlit.log"
    with streamlit_server(dict(os.environ), log, script="tests/e2e/apps/piled_up_fragments.py") as (url, _):
        yield url


def test_fragment_runs_that_pile_up_leave_the_tab_working(piled_up, page):
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(piled_up)
    expect(page.get_by_text("Fragment runs: 0")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=stStatusWidget]")).to_be_hidden(timeout=30_000)
    page.get_by_role("button", name="Pile up").click()
    # the page run, then two fragment runs, all sent at once
    expect(page.get_by_text("Fragment runs: 3")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=stStatusWidget]")).to_be_hidden(timeout=30_000)
    broken = [e for e in errors if any(b in e for b in BREAKS)]
    assert not broken, f"the tab broke: {broken}"
    expect(page.get_by_text("A small element")).to_be_visible()
