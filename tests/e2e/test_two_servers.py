"""Two web servers, one class: two `streamlit run` servers share a runs folder behind nginx, run with the
example configuration in deploy/nginx.conf (sticky sessions by nginx's own cookie, never by address).

Browsers from this one machine spread over both servers, each browser stays on its server (Streamlit keeps
a tab's session where its websocket landed), and a run started through one server is listed on the other.
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect
from polling import wait_until

from bench.server import streamlit_server

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answered_by(url: str, route: str) -> str:
    """Which server answered a request carrying the route cookie `route` (nginx's X-VAE-Lab-Server)."""
    request = urllib.request.Request(url + "/_stcore/health", headers={"Cookie": f"vae_lab_route={route}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers["X-VAE-Lab-Server"]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """deploy/nginx.conf on a free port in front of two app servers sharing one runs folder."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed: tests/run.sh installs Debian's nginx")
    runs, logs = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("logs")
    env = {**os.environ, "VAE_LAB_RUNS": str(runs)}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(streamlit_server(env, logs / f"server-{i}.log"))[0] for i in range(2)]
        port, prefix = _free_port(), tmp_path_factory.mktemp("nginx")
        (prefix / "tmp").mkdir()
        conf = (REPO / "deploy" / "nginx.conf").read_text()
        conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
        conf = conf.replace("server 127.0.0.1:8501;", f"server {servers[0].removeprefix('http://')};")
        conf = conf.replace("server 127.0.0.1:8502;", f"server {servers[1].removeprefix('http://')};")
        (prefix / "nginx.conf").write_text(conf)
        nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", "nginx.conf"], stderr=subprocess.STDOUT,
                                 stdout=(prefix / "out.log").open("w"))
        stack.callback(nginx.wait, 10)
        stack.callback(nginx.terminate)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return bool(_answered_by(url, "x"))
            except OSError:
                return False
        assert wait_until(up, timeout=20), (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
        yield type("Proxy", (), {"url": url, "runs": runs, "servers": [s.removeprefix("http://") for s in servers]})


def test_routes_stick_to_one_server_and_spread_over_both(proxy):
    by_route = {f"route-{i}": _answered_by(proxy.url, f"route-{i}") for i in range(12)}
    assert set(by_route.values()) == set(proxy.servers)  # twelve browsers from one address: both servers
    for route, server in by_route.items():
        assert {_answered_by(proxy.url, route) for _ in range(3)} == {server}  # each always the same one
    with urllib.request.urlopen(proxy.url + "/", timeout=5) as response:  # a new browser gets a route
        assert re.match(r"vae_lab_route=\w+; Path=/", response.headers["Set-Cookie"])


def test_a_run_started_through_one_server_is_listed_on_the_other(proxy, browser):
    """Alex's browser is routed to one server, Sam's to the other: Sam sees Alex's run in the class's list."""
    routes = {}
    for i in range(40):  # a route cookie for each server, as nginx would have given a browser
        routes.setdefault(_answered_by(proxy.url, f"r{i}"), f"r{i}")
    alex, sam = (_browser(browser, proxy.url, routes[server]) for server in proxy.servers)
    try:
        assert alex.goto(proxy.url + "/?epochs=2&hidden=32").headers["x-vae-lab-server"] == proxy.servers[0]
        alex.get_by_role("button", name="Start", exact=True).click()
        alex.get_by_text("Finished.", exact=True).wait_for(timeout=120_000)
        assert wait_until(lambda: len([p for p in proxy.runs.iterdir() if p.is_dir() and p.name[0].isdigit()]) == 1)
        assert sam.goto(proxy.url + "/").headers["x-vae-lab-server"] == proxy.servers[1]
        sam.get_by_role("link", name="Explore").click()
        sam.get_by_text("No trained model yet").wait_for()  # none of Sam's own
        sam.get_by_role("radio", name="The whole class").click(force=True)
        sam.get_by_text(re.compile(r"^About this run · ")).wait_for()  # Alex's run, opened
        listed = re.compile(r"^digits · VAE · z2 · β 1 · Student ")  # Alex's run, by Alex's name
        expect(sam.get_by_role("combobox", name="Run")).to_have_value(listed)
    finally:
        for page in (alex, sam):
            page.context.close()


def _browser(chromium, url: str, route: str):
    """A browser of its own (its own student) carrying nginx's route cookie `route`."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([{"name": "vae_lab_route", "value": route, "url": url}])
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page
