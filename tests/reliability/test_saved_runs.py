"""Saved runs are files anyone with the folder can damage: each damage is a RunError naming the file,
nothing in them is ever executed, and the Explore and Compare pages list a folder of broken runs
without crashing (tests/unit/test_runs_and_cli.py covers a missing or corrupt config, truncated
weights, a pickle in the weights and bad meta at the load_run level)."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from reliability_helpers import errors, page_ok

CONFIG = TrainConfig(epochs=2, hidden=[32], latent_dim=2)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, digits) -> Path:
    job = TrainingJob(CONFIG, digits, runs_dir=tmp_path_factory.mktemp("good"), pool=SlotPool(1)).start()
    assert job.join(60)
    return Path(job.view().run_dir)


class Marker:
    """A pickle payload that would create `path` if it were ever unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _safetensors_with_header(header: dict | bytes, length: int | None = None, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + body


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_safetensors((run / "weights.safetensors").read_bytes())


def damage(run: Path, kind: str, marker: Path) -> None:
    """Apply one named damage to a copy of a good run folder."""
    w = run / "weights.safetensors"
    state = _weights(run)
    meta = json.loads((run / "meta.json").read_text())
    first = next(iter(state))
    edits = {
        # weights
        "weights: header length 2^63": lambda: w.write_bytes(_safetensors_with_header(b"{}", 2**63 - 1)),
        "weights: header length past the end": lambda: w.write_bytes(_safetensors_with_header(b"{}", 10**6)),
        "weights: absurd shape": lambda: w.write_bytes(_safetensors_with_header(
            {first: {"dtype": "F32", "shape": [10**12, 10**12], "data_offsets": [0, 4 * 10**24]}})),
        "weights: offsets past the data": lambda: w.write_bytes(_safetensors_with_header(
            {first: {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**40]}}, body=b"\0" * 8)),
        "weights: header not JSON": lambda: w.write_bytes(_safetensors_with_header(b"\xff\xfe{[")),
        "weights: pickle payload": lambda: w.write_bytes(pickle.dumps({"state": Marker(marker)})),
        "weights: torch.save file": lambda: torch.save({"x": Marker(marker)}, w),
        "weights: empty": lambda: w.write_bytes(b""),
        "weights: NaN values": lambda: w.write_bytes(save_safetensors(
            {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in state.items()})),
        "weights: wrong shapes": lambda: w.write_bytes(save_safetensors(
            {k: torch.zeros(3, 3) for k in state})),
        "weights: missing tensors": lambda: w.write_bytes(save_safetensors({first: state[first]})),
        "weights: a directory": lambda: (w.unlink(), w.mkdir()),
        "weights: larger than the cap": lambda: os.truncate(w, runs.MAX_FILE_BYTES + 1),
        # metrics
        "metrics: extra fields": lambda: (run / "metrics.csv").write_text("epoch,val_kl\n1,2,3,4\n"),
        "metrics: words": lambda: (run / "metrics.csv").write_text("epoch,val_kl\none,two\n"),
        "metrics: binary": lambda: (run / "metrics.csv").write_bytes(os.urandom(64) + b"\xff\xfe"),
        "metrics: a field over the csv limit": lambda: (run / "metrics.csv").write_text(
            "epoch\n\"" + "1" * 200_000 + "\"\n"),
        "metrics: NUL bytes": lambda: (run / "metrics.csv").write_bytes(b"epoch\n1\0\n"),
        # meta
        "meta: shape of words": lambda: _write_meta(run, {**meta, "sample_shape": ["a", "b"]}),
        "meta: huge shape": lambda: _write_meta(run, {**meta, "sample_shape": [1, 100_000, 100_000]}),
        "meta: negative shape": lambda: _write_meta(run, {**meta, "sample_shape": [1, -8, 8]}),
        "meta: epochs as text": lambda: _write_meta(run, {**meta, "epochs_done": "two"}),
        "meta: status a number": lambda: _write_meta(run, {**meta, "status": 5}),
        "meta: deeply nested": lambda: (run / "meta.json").write_text("[" * 100_000 + "]" * 100_000),
        # config
        "config: a list": lambda: (run / "config.json").write_text("[1, 2]"),
        "config: huge number": lambda: (run / "config.json").write_text('{"epochs": 1' + "0" * 5000 + "}"),
        "config: a model over the parameter limit": lambda: (run / "config.json").write_text(
            CONFIG.replace(hidden=[4096] * 6).to_json()),
        "config: not UTF-8": lambda: (run / "config.json").write_bytes(b"\xff\xfe\x00{"),
        # steps
        "steps: an object": lambda: (run / "steps.json").write_text('{"step": 1}'),
        "steps: missing": lambda: (run / "steps.json").unlink(),
    }
    edits[kind]()


def _write_meta(run: Path, meta: dict) -> None:
    (run / "meta.json").write_text(json.dumps(meta))


DAMAGES = [
    "weights: header length 2^63", "weights: header length past the end", "weights: absurd shape",
    "weights: offsets past the data", "weights: header not JSON", "weights: pickle payload",
    "weights: torch.save file", "weights: empty", "weights: NaN values", "weights: wrong shapes",
    "weights: missing tensors", "weights: a directory", "weights: larger than the cap",
    "metrics: extra fields", "metrics: words", "metrics: binary", "metrics: a field over the csv limit",
    "metrics: NUL bytes",
    "meta: shape of words", "meta: huge shape", "meta: negative shape", "meta: epochs as text",
    "meta: status a number", "meta: deeply nested",
    "config: a list", "config: huge number", "config: a model over the parameter limit", "config: not UTF-8",
    "steps: an object", "steps: missing",
]


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_run_is_a_run_error_and_runs_nothing(good_run, tmp_path, kind):
    marker = tmp_path / "pwned"
    run = tmp_path / good_run.name
    shutil.copytree(good_run, run)
    damage(run, kind, marker)
    with pytest.raises(runs.RunError) as info:
        runs.load_run(run).load_model()
    part = kind.split(":")[0]
    assert part in str(info.value), str(info.value)
    assert not marker.exists()
    # listing skips a run whose files cannot be read; one whose model cannot be built is listed, and explained
    assert runs.list_runs(tmp_path) == [] or kind.startswith("weights") or "parameter limit" in kind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["config.json", "meta.json", "metrics.csv", "steps.json", "weights.safetensors"]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_random_byte_damage_gives_a_run_or_a_run_error(good_run, tmp_path_factory, name, edits):
    run = tmp_path_factory.mktemp("fuzz") / good_run.name
    shutil.copytree(good_run, run)
    blob = bytearray((run / name).read_bytes())
    for position, value in edits:
        blob[position % len(blob)] = value
    (run / name).write_bytes(bytes(blob))
    try:
        loaded = runs.load_run(run)
        model = loaded.load_model()
    except runs.RunError:
        return
    assert len(loaded.epochs) <= loaded.meta.get("epochs_done", len(loaded.epochs))
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["../../etc", "..", ".", "/etc/passwd", "a/b", "a\\b", "", ".hidden", "a\0b",
                                  "x" * 200, "run\n", "%2e%2e", "C:\\x", "~root"])
def test_run_names_from_users_never_leave_the_runs_folder(tmp_path, name):
    try:
        path = runs.run_path(tmp_path, name)
    except runs.RunError:
        return
    assert path.parent == tmp_path and path.resolve().parent == tmp_path.resolve()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_run_folders_named_from_any_dataset_name_stay_inside(tmp_path_factory, dataset):
    root = tmp_path_factory.mktemp("names")
    config = TrainConfig.__new__(TrainConfig)  # any text, even one validate() refuses
    object.__setattr__(config, "dataset", dataset)
    path = runs.new_run_dir(root, config)
    assert path.parent == root and runs.RUN_NAME.match(path.name) and runs.run_path(root, path.name) == path


# --- the pages over a folder of broken runs ---------------------------------------------------------
@pytest.fixture
def broken_folder(good_run, runs_dir, tmp_path):
    """The app's runs folder: one good run and one copy per damage, plus clutter."""
    marker = tmp_path / "pwned"
    shutil.copytree(good_run, runs_dir / good_run.name)
    for i, kind in enumerate(DAMAGES):
        run = runs_dir / f"20990101-{i:06d}-broken-{i:06x}"
        shutil.copytree(good_run, run)
        damage(run, kind, marker)
    (runs_dir / "not-a-folder.txt").write_text("x")
    (runs_dir / "20990101-999999-empty-000000").mkdir()
    (runs_dir / "20990101-999998-only-config").mkdir()
    shutil.copy(good_run / "config.json", runs_dir / "20990101-999998-only-config")
    (runs_dir / "name with spaces").mkdir()
    return marker


# a run whose model or steps cannot be read is listed (its card and scores are), then explained when opened
EXPLAINED = ("weights.safetensors", "parameter limit", "VAE_LAB_MAX_PARAMS", "steps.json")


def test_explore_lists_a_folder_of_broken_runs_and_explains_each(new_app, broken_folder, runs_dir):
    at = new_app()
    at.run()
    at.session_state["explore_scope"] = "class"  # the runs are nobody's: the whole class's list shows them
    at.switch_page("pages/explore.py").run()
    page_ok(at)
    listed = [run.name for run in runs.list_runs(runs_dir, steps=False)]  # as the page lists them
    assert len(at.selectbox(key="explore_run").options) == len(listed) >= 2
    for name in listed:
        at.selectbox(key="explore_run").set_value(name).run()
        page_ok(at)
        if errors(at):
            assert any(part in e for e in errors(at) for part in EXPLAINED), errors(at)
    assert not broken_folder.exists()


def test_compare_lists_a_folder_of_broken_runs_without_crashing(new_app, broken_folder, runs_dir):
    at = new_app()
    at.run()
    at.session_state["compare_scope"] = "class"
    at.switch_page("pages/compare.py").run()
    page_ok(at)
    every = [run.name for run in runs.list_runs(runs_dir, steps=False)]
    assert len(at.multiselect(key="compare_runs").options) == len(every)
    at.multiselect(key="compare_runs").set_value(every).run()
    page_ok(at)
    shown = [w.value for w in at.warning]
    assert all(any(part in w for part in EXPLAINED) for w in shown), shown
    assert not broken_folder.exists()
