"""Issue #17, items 4 and 5, in a real browser: an absent dataset explains itself and shows no stale results;
switching datasets and back restores the settings."""

import gzip
import os
import re
import socket
import struct

import numpy as np
import pytest
from playwright.sync_api import expect

from bench.server import streamlit_server

pytestmark = pytest.mark.e2e

LOSS_POINTS = """() => { const g = document.querySelector('.st-key-loss_chart .js-plotly-plot');
  return g && g._fullData ? g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : -1; }"""


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    """The app on a machine without MNIST: empty data and cache folders, the mirror a closed local port."""
    root = tmp_path_factory.mktemp("offline")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once this block ends: nothing listens there
    env = {**os.environ, "VAE_LAB_RUNS": str(root / "runs"), "VAE_LAB_DATA": str(root / "data"),
           "XDG_CACHE_HOME": str(root / "cache"), "VAE_LAB_DOWNLOAD_URL": f"http://127.0.0.1:{port}/"}
    try:
        with streamlit_server(env, root / "streamlit.log") as (url, _):
            yield type("Server", (), {"url": url, "data": root / "data"})
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def screen(browser):
    """A 1400×1000 window, the size the screenshots are looked at."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def idle(page) -> None:
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")


def choose(page, label: str) -> None:
    idle(page)
    page.locator(".st-key-cfg_dataset").click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator(".st-key-cfg_dataset input")).to_have_value(label)
    idle(page)


def architecture(page):
    """The architecture radio, its expander ("Model") opened first: a rerun may draw it closed."""
    expander = page.locator("[data-testid=stSidebar] details").filter(has_text="Model")
    if expander.get_attribute("open") is None:
        expander.locator("summary").click()
    return page.locator(".st-key-cfg_architecture")


def t10k_files(folder, count=30) -> list:
    """The two t10k IDX files of a tiny MNIST look-alike, gzipped as they come."""
    rng, paths = np.random.default_rng(0), []
    for stem, array in (("t10k-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)),
                        ("t10k-labels-idx1-ubyte", rng.integers(0, 10, count, dtype=np.uint8))):
        magic = 0x803 if array.ndim == 3 else 0x801
        blob = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()
        paths.append(folder / f"{stem}.gz")
        paths[-1].write_bytes(gzip.compress(blob))
    return paths


def test_an_absent_dataset_explains_itself_and_shows_no_stale_results(screen, offline_server, shoot, tmp_path):
    page = screen
    page.goto(offline_server.url + "/?epochs=1")
    start = page.get_by_role("button", name="Start", exact=True)
    start.wait_for(timeout=90_000)  # a fresh server's first page builds a lot
    idle(page)
    start.click()
    page.get_by_text("Finished.").wait_for(timeout=180_000)  # a busy 2-core machine trains slowly
    assert page.evaluate(LOSS_POINTS) > 0
    choose(page, "MNIST (28×28) · not installed")
    box = page.locator(".st-key-dataset_missing")
    expect(box).to_contain_text("MNIST is not installed here.")
    expect(box).to_contain_text(f"in the folder {offline_server.data / 'mnist'}")
    expect(box).to_contain_text("Upload the four files")
    expect(page.get_by_text("Your run on Digits (8×8) is not shown")).to_be_visible()
    expect(start).to_be_disabled()
    assert page.evaluate(LOSS_POINTS) == 0  # the digits run's losses are not drawn under MNIST
    expect(page.get_by_text("Finished.")).to_have_count(0)
    expect(page.get_by_text("Validation images and their reconstructions")).to_have_count(0)
    assert not re.search(r"Errno|VAE_LAB_DATA|environment variable", page.locator("body").inner_text())
    shoot(page, "17-absent-dataset")

    box.locator("input[type=file]").set_input_files(t10k_files(tmp_path))
    idle(page)
    page.get_by_role("button", name="Use these files for MNIST").click()
    page.get_by_text("is installed in").wait_for()
    expect(start).to_be_enabled()
    expect(page.locator(".st-key-cfg_dataset")).not_to_contain_text("not installed")  # the chosen set's label too
    page.locator(".st-key-cfg_dataset").click()
    expect(page.get_by_role("option", name="MNIST (28×28)", exact=True)).to_be_visible()  # no longer "not installed"
    page.keyboard.press("Escape")


def test_switching_datasets_and_back_restores_the_settings(screen, offline_server, shoot):
    page = screen
    page.goto(offline_server.url)
    page.get_by_role("button", name="Start", exact=True).wait_for(timeout=90_000)  # a first page builds a lot
    choose(page, "Shapes (32×32)")
    architecture(page).get_by_text("Convolutional").click()
    idle(page)
    choose(page, "Two moons (2-D)")
    note = page.locator("[data-testid=stSidebar] [data-testid=stAlert]").filter(has_text="Two moons")
    expect(note).to_contain_text("loss bce → mse")
    expect(note).to_contain_text("architecture conv → mlp")
    expect(page.get_by_text("Two interleaved half circles of points.")).to_be_visible()  # the rerun is drawn
    shoot(page, "17-switch-note")
    choose(page, "Shapes (32×32)")
    expect(page.locator("[data-testid=stSidebar] [data-testid=stAlert]")).to_contain_text("as you left them")
    expect(architecture(page).get_by_role("radio", name="Convolutional")).to_be_checked()
    choose(page, "Digits (8×8)")
    expect(architecture(page).get_by_role("radio", name="MLP")).to_be_checked()
