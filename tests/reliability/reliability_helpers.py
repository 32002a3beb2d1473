"""Helpers of the reliability tests: bad-input builders, thread counting, page checks (waiting is
tests/polling.py's wait_until)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app.py"
TRAINING_THREAD = "vae-lab-training"


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == TRAINING_THREAD and t.is_alive()]


def npz_of(compressed: bool = False, **arrays) -> bytes:
    out = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


def page_ok(at) -> None:
    """The page rendered without an exception."""
    assert not at.exception, [e.value for e in at.exception]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]
