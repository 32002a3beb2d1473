"""Run bundles (vae_core.bundles): a downloaded run carries its card and uploaded data, imports as a new run on
another server, and a forged bundle is refused without leaving anything behind."""

import errno
import io
import json
import pickle
import stat
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vae_core import bundles, runs
from vae_core.__main__ import main
from vae_core.bundles import BundleError, import_bundle
from vae_core.classroom import cards
from vae_core.config import TrainConfig
from vae_core.data import load_upload, stored
from vae_core.jobs.history import History
from vae_core.jobs.replay import REPLAY
from vae_core.train import Status, Trainer, fit

REPO = Path(__file__).resolve().parents[2]
ALICE, BOB = "a" * 24, "b" * 24


def upload(size: int = 8, name: str = "blobs.npz"):
    rng = np.random.default_rng(0)
    raw = io.BytesIO()
    np.savez(raw, images=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), labels=rng.integers(0, 3, 40))
    return load_upload(raw.getvalue(), name, size=size)


def train_run(runs_dir: Path, data, owner: str) -> Path:
    """A one-epoch run saved as the app saves it, with a card naming its stored data."""
    config = TrainConfig(dataset=data.name, epochs=1, latent_dim=2, hidden=[16])
    trainer, history = Trainer(config, data), History()
    outcome = fit(trainer, on_step=history.add_step, on_epoch=lambda epoch: history.add_epoch(epoch.row))
    assert outcome.status == Status.FINISHED, outcome.message
    run_dir = runs.new_run_dir(runs_dir, config)
    runs.save_config(run_dir, config)
    card = cards.new_card(owner, "My blobs", "period 3", stored.save(data, runs_dir, owner))
    cards.write_card(run_dir, {**card, "note": "tried β = 1", "feedback": "nice",
                               "handed_in": {"assignment": "", "at": ""}})
    runs.save_progress(run_dir, runs.run_meta(trainer, outcome.status, outcome.message, outcome.best_epoch),
                       history.epochs(), history.steps(), trainer.weights())
    return run_dir


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    data = upload()
    run_dir = train_run(tmp_path_factory.mktemp("source"), data, ALICE)
    return SimpleNamespace(run_dir=run_dir, data=data, raw=bundles.bundle(run_dir, private=True), top=run_dir.name)


def files_of(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def make_zip(files: dict) -> bytes:
    """A zip of `files` (entry name or ZipInfo -> bytes), in order, duplicates allowed."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, content in files.items() if isinstance(files, dict) else files:
            zf.writestr(name, content)
    return out.getvalue()


def nothing_left(runs_dir: Path) -> bool:
    return not runs_dir.exists() or not any(runs_dir.iterdir())


# --- downloading and importing ---------------------------------------------------------------------

def test_a_bundle_holds_the_run_its_card_and_its_data_in_one_folder(source):
    names = set(files_of(source.raw))
    assert names == {f"{source.top}/{name}" for name in bundles.NAMES if name != REPLAY}  # saved without a replay


def test_an_uploaded_data_run_imports_into_a_fresh_store_and_loads_there(source, tmp_path):
    store = tmp_path / "store"
    run_dir = import_bundle(source.raw, store, BOB, title="ignored: the card has a title")
    assert run_dir.parent == store and runs.RUN_NAME.match(run_dir.name) and run_dir.name != source.top
    assert sorted(p.name for p in store.iterdir()) == sorted([".data", run_dir.name])  # no temporary folder left
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*runs.FILES, cards.CARD])

    original, imported = runs.load_run(source.run_dir), runs.load_run(run_dir)
    assert imported.config == original.config and imported.meta == original.meta
    card = cards.card(run_dir)
    assert card == {"owner": BOB, "title": "My blobs", "period": "", "data": cards.card(source.run_dir)["data"],
                    "lesson": "", "note": "tried β = 1", "handed_in": None, "feedback": ""}
    data = stored.load(card["data"], store)
    assert torch.equal(data.train, source.data.train) and data.class_names == source.data.class_names
    assert stored.bytes_of(store, BOB) == stored.path_of(card["data"], store).stat().st_size > 0
    with torch.no_grad():
        assert torch.equal(imported.load_model().encode(data.val)[0], original.load_model().encode(data.val)[0])


def test_a_bundle_from_before_cards_imports_with_the_title_given(source, tmp_path):
    files = {name: content for name, content in files_of(source.raw).items()
             if name.split("/")[1] in runs.FILES}
    run_dir = import_bundle(make_zip(files), tmp_path, "", title="  From\x00 home ")
    assert cards.card(run_dir) == {"owner": "", "title": "From home", "period": "", "data": "", "lesson": "",
                                   "note": "", "handed_in": None, "feedback": ""}
    assert cards.card(import_bundle(make_zip(files), tmp_path, ALICE))["title"] == "imported"
    assert not (tmp_path / stored.DIR).exists()


def test_a_classmates_download_carries_no_note_hand_in_or_feedback(source):
    card = cards.card(source.run_dir)
    cards.write_card(source.run_dir, {**card, "feedback": "for the owner", "handed_in": {"assignment": "HW"}})
    public = json.loads(files_of(bundles.bundle(source.run_dir))[f"{source.top}/{cards.CARD}"])
    assert (public["title"], public["note"], public["handed_in"], public["feedback"]) == ("My blobs", "", None, "")
    private = json.loads(files_of(bundles.bundle(source.run_dir, private=True))[f"{source.top}/{cards.CARD}"])
    assert (private["note"], private["feedback"]) == ("tried β = 1", "for the owner")


def test_importing_twice_makes_two_runs(source, tmp_path):
    first, second = import_bundle(source.raw, tmp_path, ALICE), import_bundle(source.raw, tmp_path, ALICE)
    assert first != second and {run.path for run in runs.list_runs(tmp_path)} == {first, second}
    assert len(list((tmp_path / stored.DIR).glob("*.safetensors"))) == 1  # the data once


def test_a_taken_run_name_is_never_overwritten(source, tmp_path, monkeypatch):
    suffixes = iter(["aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runs, "time", SimpleNamespace(strftime=lambda fmt: "20990101-000000"))
    monkeypatch.setattr(runs, "secrets", SimpleNamespace(token_hex=lambda n: next(suffixes)))
    taken = tmp_path / "20990101-000000-upload-blobs-npz-aaaaaa"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    run_dir = import_bundle(source.raw, tmp_path, ALICE)
    assert run_dir.name == "20990101-000000-upload-blobs-npz-bbbbbb"
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]


def test_a_store_it_cannot_write_to_is_reported_plainly_and_no_run_is_left(source, tmp_path, monkeypatch):
    def disk_full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(bundles, "os", SimpleNamespace(rename=disk_full))
    with pytest.raises(BundleError, match="could not be saved on this server .No space left"):
        import_bundle(source.raw, tmp_path, ALICE)
    assert [p.name for p in tmp_path.iterdir()] == [stored.DIR]  # the data stays stored, deduplicated


# --- forged bundles ---------------------------------------------------------------------------------

def data_file(data) -> bytes:
    """`data` as the store keeps it (stored in a store of its own, outside the test's runs folder)."""
    with tempfile.TemporaryDirectory() as store:
        return stored.path_of(stored.save(data, store, ""), store).read_bytes()


def weights_changed(files, top, change) -> bytes:
    state = load_safetensors(files[f"{top}/weights.safetensors"])
    change(state)
    return save_safetensors(state)


def wrong_shape(state):
    name = next(iter(state))
    state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)


def nan_weight(state):
    next(iter(state.values()))[0] = float("nan")


def config_with(files, top, **changes) -> bytes:
    return json.dumps({**json.loads(files[f"{top}/config.json"]), **changes}).encode()


def symlink(top):
    info = zipfile.ZipInfo(f"{top}/card.json")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


FORGERIES = {
    "a path out of the folder": lambda f, t: {**f, f"{t}/../{t}/card.json": b"{}"},
    "an absolute path": lambda f, t: {**f, "/tmp/evil/card.json": b"{}"},
    "a backslash path": lambda f, t: {**f, f"{t}\\..\\card.json": b"{}"},
    "an extra file": lambda f, t: {**f, f"{t}/run.py": b"import os"},
    "a file in a subfolder": lambda f, t: {**f, f"{t}/sub/card.json": b"{}"},
    "a file at the top": lambda f, t: {**f, "card.json": b"{}"},
    "two top folders": lambda f, t: {k.replace(f"{t}/meta.json", "other/meta.json"): v for k, v in f.items()},
    "a missing weights file": lambda f, t: {k: v for k, v in f.items() if not k.endswith("weights.safetensors")},
    "a missing config": lambda f, t: {k: v for k, v in f.items() if not k.endswith("config.json")},
    "a file twice": lambda f, t: [*f.items(), (f"{t}/config.json", f[f"{t}/config.json"])],
    "a symbolic link": lambda f, t: [*f.items(), (symlink(t), "/etc/passwd")],
    "too many entries": lambda f, t: [*f.items(), *((f"{t}/", b"") for _ in range(10))],
    "weights of the wrong shape": lambda f, t: {**f, f"{t}/weights.safetensors": weights_changed(f, t, wrong_shape)},
    "NaN weights": lambda f, t: {**f, f"{t}/weights.safetensors": weights_changed(f, t, nan_weight)},
    "a config out of range": lambda f, t: {**f, f"{t}/config.json": config_with(f, t, latent_dim=10**6)},
    "a config that is not JSON": lambda f, t: {**f, f"{t}/config.json": b"{beta: 4"},
    "a bad sample shape": lambda f, t: {**f, f"{t}/meta.json": json.dumps(
        {**json.loads(f[f"{t}/meta.json"]), "sample_shape": [5, 8, 8]}).encode()},
    "corrupt data": lambda f, t: {**f, f"{t}/data.safetensors": b"\x08" + b"\x00" * 7 + b"{}junk"},
    "data of another shape": lambda f, t: {**f, f"{t}/data.safetensors": data_file(upload(size=4))},
    "data of another name": lambda f, t: {**f, f"{t}/data.safetensors": data_file(upload(name="other.npz"))},
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_bundles_are_refused_and_leave_nothing(source, tmp_path, forgery):
    raw = make_zip(FORGERIES[forgery](files_of(source.raw), source.top))
    store = tmp_path / "store"
    with pytest.raises(BundleError) as refused:
        import_bundle(raw, store, ALICE)
    assert nothing_left(store), forgery
    assert refused.value.args[0] and ".import-" not in str(refused.value)


def test_a_pickle_named_weights_never_runs(source, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    files = {**files_of(source.raw), f"{source.top}/weights.safetensors": pickle.dumps(Payload())}
    with pytest.raises(BundleError, match="weights.safetensors"):
        import_bundle(make_zip(files), tmp_path / "store", ALICE)
    assert not marker.exists() and nothing_left(tmp_path / "store")


def test_a_bundle_over_the_upload_limit_or_not_a_zip_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    with pytest.raises(BundleError, match="upload limit of 1 MB"):
        import_bundle(b"PK" + b"\0" * 2**20, tmp_path, ALICE)
    with pytest.raises(BundleError, match="not a readable zip"):
        import_bundle(b"hello", tmp_path, ALICE)
    assert nothing_left(tmp_path)


def test_a_zip_bomb_is_refused_by_its_declared_size(source, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MAX_FILE_BYTES", 2**20)
    files = {**files_of(source.raw), f"{source.top}/steps.json": b" " * (2 * 2**20)}  # a few KB zipped
    with pytest.raises(BundleError, match="zip bomb"):
        import_bundle(make_zip(files), tmp_path, ALICE)
    assert nothing_left(tmp_path)


def test_a_zip_entry_lying_about_its_size_is_refused(source, tmp_path):
    name = f"{source.top}/steps.json"
    raw = bytearray(make_zip({**files_of(source.raw), name: b" " * (2 * 2**20)}))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        offset = zf.getinfo(name).header_offset
    struct.pack_into("<I", raw, offset + 22, 10)  # the local header's uncompressed size
    at = raw.find(b"PK\x01\x02")
    while at >= 0:  # the central directory's record of the entry
        if raw[at + 46:at + 46 + struct.unpack_from("<H", raw, at + 28)[0]] == name.encode():
            struct.pack_into("<I", raw, at + 24, 10)
        at = raw.find(b"PK\x01\x02", at + 4)
    with pytest.raises(BundleError, match="steps.json"):
        import_bundle(bytes(raw), tmp_path, ALICE)
    assert nothing_left(tmp_path)


# --- the command line -------------------------------------------------------------------------------

def test_cli_imports_a_bundle_and_prints_the_new_run(source, tmp_path):
    path = tmp_path / "run.zip"
    path.write_bytes(source.raw)
    command = [sys.executable, "-m", "vae_core", "import", str(path), "--runs-dir", str(tmp_path / "store")]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name = proc.stdout.strip()
    assert cards.card(tmp_path / "store" / name)["owner"] == ""
    assert runs.load_run(tmp_path / "store" / name).load_model() is not None


def test_cli_reports_a_bad_bundle_plainly(source, tmp_path, capsys):
    path = tmp_path / "run.zip"
    path.write_bytes(make_zip({k: v for k, v in files_of(source.raw).items() if not k.endswith("meta.json")}))
    assert main(["import", str(path), "--runs-dir", str(tmp_path / "store")]) == 1
    assert "lacks meta.json" in capsys.readouterr().err and nothing_left(tmp_path / "store")
    assert main(["import", str(tmp_path / "nowhere.zip"), "--runs-dir", str(tmp_path / "store")]) == 1
    assert "nowhere.zip" in capsys.readouterr().err
