"""Shared fixtures: the embedded digits data, the real MNIST test set from ../shared, and one Playwright driver."""

import os
from pathlib import Path

import pytest

from bench.browser import CHROMIUM
from vae_core.data import load_dataset

# Page tests (AppTest) run the app in this process and look at its jobs in place: train on threads here.
# Real servers (bench/server.py) use the trainer process, as users get it.
os.environ["VAE_LAB_TRAINER"] = "threads"
# Ray's nodes bind to 127.0.0.1 (its "no cluster" setting for laptops), so a test cluster of two nodes runs
# on this machine's loopback whatever its network; read when ray is first imported.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist-t10k"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST test set: in CI a missing folder fails the test, elsewhere it skips it."""
    if not MNIST_DIR.is_dir():
        message = f"the real MNIST test set is not at {MNIST_DIR}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return load_dataset("mnist", data_dir=MNIST_DIR)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests share two cores with a Streamlit server and Chromium: one intra-op thread avoids oversubscription."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def torch_threads_put_back():
    """A job run on the main thread sets its torch threads (its share of the cores): give later tests theirs."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def playwright():
    """The one Playwright driver of the test session (its sync API allows one per process at a time).

    Debian's Chromium is required: in CI a missing browser fails the test, elsewhere it skips it."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster of two nodes of one CPU each on 127.0.0.1, started once for the tests of the Ray
    backend (about 12 s); yields the ray module, connected to it. Once per process: a second cluster refuses
    the code package the first was sent (Ray keeps it as uploaded)."""
    try:
        import ray  # installed by requirements-test.txt; optional for the app
        from ray.cluster_utils import Cluster
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed: tests/run.sh installs requirements-test.txt")
        pytest.skip("ray is not installed")
    from vae_core.jobs import cluster

    temp = tmp_path_factory.mktemp("ray")
    (temp / "ray").mkdir()
    os.environ["RAY_TMPDIR"] = str(temp)  # its address file too: a later ray.init() elsewhere never joins it
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                          "temp_dir": str(temp)})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, namespace=cluster.NAMESPACE, log_to_driver=False,
             runtime_env=cluster.RUNTIME_ENV)
    yield ray
    ray.shutdown()
    nodes.shutdown()
    del os.environ["RAY_TMPDIR"]


@pytest.fixture
def no_idx_files(tmp_path, monkeypatch):
    """MNIST and Fashion-MNIST nowhere on this machine, and their mirror a closed local port: nothing downloads."""
    import socket

    from vae_core.data import availability, idx

    monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(idx, "SYSTEM_DATASETS_DIR", tmp_path / "nothing")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once this block ends: nothing listens there
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setattr(availability, "_probes", {})
    return tmp_path

