"""The store of uploaded datasets (vae_core.data.stored): stored once by content, read back checked, charged
to whoever brought them."""

import io
import json
import pickle
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from vae_core.data import DataError, load_upload, stored
from vae_core.data.dataset import Dataset

ALICE, BOB, CAROL = "a" * 24, "b" * 24, "c" * 24


def upload(seed: int = 0, name: str = "blobs.npz") -> Dataset:
    rng = np.random.default_rng(seed)
    raw = io.BytesIO()
    np.savez(raw, images=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), labels=rng.integers(0, 3, 40))
    return load_upload(raw.getvalue(), name, size=8)


def same(a: Dataset, b: Dataset) -> bool:
    tensors = [(getattr(a, k), getattr(b, k)) for k in stored.TENSORS]
    return (a.name, a.kind, a.class_names, a.factor_names) == (b.name, b.kind, b.class_names, b.factor_names) and all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y)) for x, y in tensors)


def test_an_upload_round_trips_through_the_store(tmp_path):
    data = upload()
    digest = stored.save(data, tmp_path, ALICE)
    assert len(digest) == 64 and stored.path_of(digest, tmp_path).is_file()
    back = stored.load(digest, tmp_path)
    assert same(back, data) and back.class_names == ("0", "1", "2")
    assert stored.load(digest, tmp_path) is back  # cached


def test_factors_and_sliced_splits_are_stored_too(tmp_path):
    x, factors = torch.rand(10, 2), torch.rand(10, 3)  # splits cut by slices share the tensors' memory
    data = Dataset("grid", "points", x[:6], x[6:8], x[8:], None, None, None, None, ("a", "b", "c"),
                   factors[:6], factors[6:8], factors[8:])
    assert same(stored.load(stored.save(data, tmp_path, ""), tmp_path), data)


def test_the_digest_depends_on_the_content_only(tmp_path):
    first = stored.save(upload(), tmp_path / "one", ALICE)
    assert stored.save(upload(), tmp_path / "two", "") == first  # another store, another copy of the data
    assert stored.save(upload(seed=1), tmp_path / "one", ALICE) != first
    assert stored.save(upload(name="other.npz"), tmp_path / "one", ALICE) != first


def test_stored_once_and_charged_to_each_owner_who_brought_it(tmp_path):
    digest = stored.save(upload(), tmp_path, ALICE)
    path = stored.path_of(digest, tmp_path)
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert stored.save(upload(), tmp_path, BOB) == digest
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before  # not written again
    size = path.stat().st_size
    assert stored.bytes_of(tmp_path, ALICE) == stored.bytes_of(tmp_path, BOB) == size
    assert stored.bytes_of(tmp_path, CAROL) == stored.bytes_of(tmp_path, "") == 0
    stored.save(upload(seed=1), tmp_path, ALICE)
    assert size < stored.bytes_of(tmp_path, ALICE) < 3 * size and stored.bytes_of(tmp_path, BOB) == size
    assert json.loads(path.with_name(f"{digest}.owners.json").read_text()) == [ALICE, BOB]


def test_owners_saving_at_once_are_all_recorded(tmp_path):
    owners = [f"{i:024x}" for i in range(8)]
    data = upload()
    threads = [threading.Thread(target=stored.save, args=(data, tmp_path, o)) for o in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (owners_file,) = (tmp_path / stored.DIR).glob("*.owners.json")
    assert sorted(json.loads(owners_file.read_text())) == owners


def test_data_over_the_upload_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    x = torch.rand(300_000, 2)  # 2.4 MB
    data = Dataset("big", "points", x[:-2], x[-2:-1], x[-1:], None, None, None, None)
    with pytest.raises(DataError, match="upload limit"):
        stored.save(data, tmp_path, ALICE)
    assert not (tmp_path / stored.DIR).exists() or not list((tmp_path / stored.DIR).glob("*.safetensors"))


def test_owner_ids_are_checked(tmp_path):
    with pytest.raises(ValueError):
        stored.save(upload(), tmp_path, "../../etc")


@pytest.mark.parametrize("digest", ["../../etc/passwd", "abc", "A" * 64, "0" * 63 + "/", None, "0" * 65])
def test_a_digest_that_is_not_64_hex_digits_is_refused_before_any_path(tmp_path, digest):
    with pytest.raises(DataError, match="missing from the server"):
        stored.load(digest, tmp_path)


def test_missing_data_is_reported_plainly(tmp_path):
    with pytest.raises(DataError, match=r"^the uploaded data this run trained on is missing from the server \("):
        stored.load("0" * 64, tmp_path)


def forged(tensors: dict, **metadata) -> bytes:
    meta = {"name": '"forged"', "kind": '"points"', "class_names": "null", "factor_names": "[]", **metadata}
    return save_safetensors(tensors, {k: v for k, v in meta.items() if v is not None})


POINTS = {"train": torch.rand(4, 2), "val": torch.rand(2, 2), "test": torch.rand(2, 2)}


@pytest.mark.parametrize("content", [
    b"", b"\x00" * 100, pickle.dumps({"train": [1, 2]}),
    forged({"train": POINTS["train"], "val": POINTS["val"]}),  # no test split
    forged({**POINTS, "extra": torch.zeros(1)}),
    forged(POINTS, kind='"video"'),
    forged(POINTS, name=None),
    forged(POINTS, name="not json"),
    forged({**POINTS, "train_labels": torch.zeros(3, dtype=torch.int64)}),  # one label short
    forged({**POINTS, "train": torch.rand(4, 2).double()}),
    forged({**POINTS, "val": torch.tensor([[float("nan"), 0.0]])}),
    forged({"train": torch.full((4, 1, 2, 2), 3.0), "val": torch.rand(1, 1, 2, 2), "test": torch.rand(1, 1, 2, 2)},
           kind='"image"'),  # images out of [0, 1]
    forged({**POINTS, "train_labels": torch.tensor([0, 1, 2, 5])}, class_names='["a", "b"]'),
])
def test_corrupt_or_forged_files_are_refused_plainly(tmp_path, content):
    digest = "f" * 64
    path = stored.path_of(digest, tmp_path)
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(DataError, match="missing from the server"):
        stored.load(digest, tmp_path)


def test_files_over_the_size_cap_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(stored.runs, "MAX_FILE_BYTES", 0)
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as f:
        f.truncate(3 * 2**20)  # sparse: nothing to read, and nothing should be
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read a file over the cap"))
    with pytest.raises(DataError, match="larger than 2 MB"):
        stored.read(path)
