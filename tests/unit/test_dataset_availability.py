"""Which built-in datasets are here, how to get the others, and IDX files uploaded through the page."""

import gzip
import io
import socket
import struct
import zipfile

import numpy as np
import pytest

from vae_core.data import DataError, dataset_names, load_dataset
from vae_core.data import availability as avail
from vae_core.data import idx as idx_module


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x803 if array.ndim == 3 else 0x801
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def idx_files(count=30, side=28, splits=("t10k", "train"), gz=True) -> dict[str, bytes]:
    """IDX files as they come (file name: bytes), random images and labels 0-9."""
    rng, files = np.random.default_rng(0), {}
    for split in splits:
        for part, array in (("images", rng.integers(0, 256, (count, side, side), dtype=np.uint8)),
                            ("labels", rng.integers(0, 10, count, dtype=np.uint8))):
            stem = idx_module.FILES[(split, part)]
            files[stem + ".gz" if gz else stem] = gzip.compress(idx_bytes(array)) if gz else idx_bytes(array)
    return files


@pytest.fixture
def offline(no_idx_files, monkeypatch):
    """No IDX files anywhere, and the mirror a closed port on this machine: no network is ever tried."""
    monkeypatch.setattr(avail, "PROBE_WAIT_S", 60.0)  # wait for the probe's answer: the test reads it, not a clock
    return no_idx_files


def test_generated_and_embedded_sets_are_always_here(offline):
    for name in dataset_names():
        state = avail.availability(name).state
        assert state == (avail.MISSING if name in ("mnist", "fashion-mnist") else avail.HERE), name


def test_files_in_the_data_folder_make_a_set_here(offline):
    folder = offline / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for filename, blob in idx_files(splits=("t10k",)).items():
        (folder / filename).write_bytes(blob)
    found = avail.availability("fashion-mnist")
    assert found.state == avail.HERE and found.folder == folder and found.usable
    assert avail.availability("mnist").state == avail.MISSING  # the other set's name is its own folder


def test_a_mirror_that_answers_means_download_on_first_use(offline, monkeypatch):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", f"http://127.0.0.1:{listening.getsockname()[1]}/")
        found = avail.availability("mnist")
    assert found.state == avail.DOWNLOAD and found.usable and found.folder is None


def test_the_probe_is_asked_once_and_remembered(offline, monkeypatch):
    asked = []
    monkeypatch.setattr(avail, "_connects", lambda host, port: asked.append((host, port)) or False)
    for _ in range(3):
        assert avail.availability("mnist").state == avail.MISSING
    assert len(asked) == 1


def test_how_to_get_names_the_package_the_files_and_the_folder(offline):
    fashion, mnist = avail.how_to_get("fashion-mnist"), avail.how_to_get("mnist")
    assert "sudo apt-get install dataset-fashion-mnist" in fashion[0]
    assert not any("apt-get" in way for way in mnist)  # Debian packages Fashion-MNIST only
    assert str(offline / "data" / "mnist") in mnist[0]
    assert all(f"`{name}`" in mnist[0] for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
    assert "Upload" in mnist[-1]
    assert not any(word in " ".join(fashion + mnist) for word in ("VAE_LAB_DATA", "environment", "Errno"))


def test_the_drop_folder_is_the_cache_without_a_data_folder(offline, monkeypatch):
    monkeypatch.delenv("VAE_LAB_DATA")
    assert avail.drop_folder("mnist") == offline / "cache" / "vae-lab" / "mnist"


@pytest.mark.parametrize("gz", [True, False])
def test_uploaded_idx_files_become_the_built_in_set(offline, gz):
    folder = avail.install_upload("mnist", list(idx_files(gz=gz).items()))
    assert folder == offline / "data" / "mnist"
    assert avail.availability("mnist").state == avail.HERE
    data = load_dataset("mnist")
    assert len(data.test) == 30 and data.train.shape[1:] == (1, 28, 28)


def test_a_zip_of_the_t10k_pair_is_enough(offline):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for filename, blob in idx_files(splits=("t10k",)).items():
            zf.writestr(f"mnist/{filename}", blob)
        zf.writestr("__MACOSX/._t10k-images-idx3-ubyte.gz", b"clutter")
    avail.install_upload("fashion-mnist", [("fashion.zip", out.getvalue())])
    assert avail.availability("fashion-mnist").state == avail.HERE


@pytest.mark.parametrize("files, message", [
    (dict(list(idx_files(splits=("train",)).items())), "the two t10k files are needed"),
    ({k: v for k, v in idx_files().items() if not k.startswith("train-images")}, "missing train-images-idx3-ubyte"),
    (idx_files(side=8), "images of 8×8 pixels"),
    ({**idx_files(), "t10k-images-idx3-ubyte.gz": b"not an idx file"}, "not an IDX images or labels file"),
])
def test_bad_uploads_are_refused_and_nothing_is_kept(offline, files, message):
    with pytest.raises(DataError, match=message):
        avail.install_upload("mnist", list(files.items()))
    assert not (offline / "data" / "mnist").exists()
    assert avail.availability("mnist").state == avail.MISSING


def test_uploads_are_capped_like_other_uploads(offline, monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match="VAE_LAB_MAX_UPLOAD_MB"):
        avail.install_upload("mnist", list(idx_files(count=1000, gz=False).items()))


def test_a_new_upload_replaces_the_other_form_of_a_file(offline):
    avail.install_upload("mnist", list(idx_files(splits=("t10k",), gz=False).items()))
    assert len(load_dataset("mnist").test) == 3
    avail.install_upload("mnist", list(idx_files(splits=("t10k",), count=40).items()))
    folder = offline / "data" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert len(load_dataset("mnist").test) == 4  # the 40 new images are read, not the 30 cached before
