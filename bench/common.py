"""Shared helpers of the benchmarks: data, machine facts, statistics, tables, threads, memory."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import torch

from vae_core.data import Dataset, load_dataset

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist-t10k"  # real MNIST t10k: 8,000 train / 1,000 val / 1,000 test
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
IDX_SIZE = (8000, 1000)  # Fashion-MNIST is cut to MNIST's split sizes, so epochs cost the same on both

# torch's own default intra-op thread count, read before any job runs: a job's torch.set_num_threads
# changes the default that threads started later pick up, so the plain loops set this explicitly.
DEFAULT_THREADS = torch.get_num_threads()


def load(name: str, smoke: bool = False) -> Dataset | str:
    """The dataset, or a one-line reason why it is skipped on this machine."""
    if name == "digits":
        data = load_dataset("digits")
    elif name == "mnist":
        if not MNIST_DIR.is_dir():
            return f"the real MNIST test set is not at {MNIST_DIR}"
        data = load_dataset("mnist", data_dir=MNIST_DIR)
    elif name == "fashion-mnist":
        if not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file():
            return f"Fashion-MNIST is not installed at {FASHION_DIR} (apt-get install dataset-fashion-mnist)"
        data = trim(load_dataset("fashion-mnist", data_dir=FASHION_DIR), *IDX_SIZE)
    else:
        raise ValueError(name)
    return trim(data, 256, 128) if smoke else data


def trim(data: Dataset, n_train: int, n_val: int) -> Dataset:
    """The first n_train training and n_val validation samples (labels cut alike)."""
    def cut(t, n):
        return None if t is None else t[:n].clone()
    return dataclasses.replace(data, train=cut(data.train, n_train), train_labels=cut(data.train_labels, n_train),
                               train_factors=cut(data.train_factors, n_train), val=cut(data.val, n_val),
                               val_labels=cut(data.val_labels, n_val), val_factors=cut(data.val_factors, n_val))


# --- statistics and tables -----------------------------------------------------------------------

def stats(values) -> dict:
    """Median and spread (min, max) of repeated measurements."""
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        if value["n"] == 1:
            return f"{value['median']:.{digits}f}"
        return f"{value['median']:.{digits}f} [{value['min']:.{digits}f}–{value['max']:.{digits}f}]"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str, columns: list[tuple[str, str, int]], rows: list[dict], notes: list[str] = ()) -> dict:
    """A result table: columns are (key, heading, decimals); rows map keys to numbers, stats or text."""
    return {"title": title, "columns": [{"key": k, "heading": h, "digits": d} for k, h, d in columns],
            "rows": rows, "notes": list(notes)}


def markdown(t: dict) -> str:
    cols = t["columns"]
    lines = [f"### {t['title']}", "", "| " + " | ".join(c["heading"] for c in cols) + " |",
             "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in t["rows"]:
        lines.append("| " + " | ".join(fmt(row.get(c["key"], ""), c["digits"]) for c in cols) + " |")
    lines += [""] + [f"- {n}" for n in t["notes"]]
    return "\n".join(lines).rstrip() + "\n"


# --- machine, threads, memory --------------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
           if k in os.environ}
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "torch_default_threads": DEFAULT_THREADS, "thread_env": env,
            "date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit}


def in_thread(fn, *args, **kwargs):
    """Run fn on a fresh worker thread and return its result."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised on the calling thread
            out["error"] = exc

    t = threading.Thread(target=target, name="bench-worker")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class OtherLoad:
    """Share of the machine's CPU time that other processes used while active (0.0 to 1.0).

    Figures taken while other programs run are not this code's: 2 intra-op threads on 2 cores, for
    one, slow down many times over when a third busy thread takes a core. The tables report it.
    """

    def __enter__(self):
        self._start = self._sample()
        return self

    def __exit__(self, *exc):
        busy0, own0, t0 = self._start
        busy1, own1, t1 = self._sample()
        cores = os.cpu_count() or 1
        self.share = max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(1e-9, (t1 - t0) * cores))

    @staticmethod
    def _sample():
        own = os.times()
        return busy_seconds(), own.user + own.system + own.children_user + own.children_system, time.perf_counter()


def busy_seconds() -> float:
    """CPU seconds all processes have used since boot, from /proc/stat (0.0 where there is none)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


QUIET_WAIT = 0.0  # seconds to wait for other processes to go quiet before each measurement (--quiet-wait)
QUIET_SHARE = 0.10


def wait_for_quiet() -> None:
    """Wait (up to QUIET_WAIT seconds) until other processes use under QUIET_SHARE of the CPUs."""
    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        with OtherLoad() as load:
            time.sleep(0.5)
        if load.share < QUIET_SHARE:
            return
        print(f"  (other processes use {100 * load.share:.0f} % of the CPUs: waiting)", flush=True)
        time.sleep(2.0)


def finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0
