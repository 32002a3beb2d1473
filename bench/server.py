"""The app served by a real `streamlit run` on 127.0.0.1, for the classroom benchmark and browser tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"]  # no watcher: others may edit the tree while a server runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_server(env: dict, log: Path, launcher: list[str] | None = None, timeout: float = 60,
                     prefix: list[str] | None = None, script: str = "app.py"):
    """Serve `script` (app.py by default) from the repository's root, so with its .streamlit/config.toml,
    through `<prefix> python <launcher> <script> ...` (by default `-m streamlit run`, and no prefix:
    taskset, say) with `env`, its output in `log`, until it answers health checks; yields (url,
    process); stops the server after. RuntimeError, with the log's tail, when it does not start within
    `timeout` seconds."""
    env = {**env, "VAE_LAB_TRAINER": "process"}  # as users get it (tests/conftest.py sets threads for AppTest)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen([*(prefix or []), sys.executable, *(launcher or ["-m", "streamlit", "run"]),
                                    script, *FLAGS, "--server.port", str(port)], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
