import gzip
import http.server
import socket
import struct
import threading
import time
from functools import partial

import numpy as np
import pytest
import torch

from vae_core.data import DATASETS, DataError, LoadStopped, dataset_names, load_dataset
from vae_core.data import idx as idx_module
from vae_core.data.shapes import SCALES, SYMMETRY

from pathlib import Path

MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist-t10k"


def test_digits_loads_in_unit_range_with_deterministic_splits(digits):
    assert digits.train.shape[1:] == (1, 8, 8) and digits.sample_shape == (1, 8, 8) and digits.is_image
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert 0.0 <= digits.train.min() and digits.train.max() == 1.0
    assert load_dataset("digits") is digits  # cached: loaded once per process
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.train[:10], digits.train[:10])
    assert set(digits.train_labels.tolist()) == set(range(10)) and digits.class_names[3] == "3"


def test_splits_are_rebuilt_identically_from_the_seed():
    from vae_core.data.registry import _load

    for name in ("digits", "moons", "shapes"):
        first, again = _load.__wrapped__(name, 7, None), _load.__wrapped__(name, 7, None)  # bypass the cache
        assert first is not again
        for split in ("train", "val", "test"):
            assert torch.equal(getattr(first, split), getattr(again, split))
            assert torch.equal(getattr(first, f"{split}_labels"), getattr(again, f"{split}_labels"))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(DataError, match="digits"):
        load_dataset("imagenet")
    assert dataset_names()[0] == "digits" and set(DATASETS) == set(dataset_names())


@pytest.mark.parametrize("name", ["moons", "circles", "gaussians", "swiss-roll"])
def test_toy_sets_are_labelled_2d_points(name):
    data = load_dataset(name)
    assert data.kind == "points" and data.sample_shape == (2,)
    assert data.train.abs().max() < 4 and len(data.train_labels) == len(data.train)
    assert torch.equal(load_dataset(name, seed=5).train, load_dataset(name, seed=5).train)
    assert not torch.equal(load_dataset(name, seed=5).train, data.train)


def test_shapes_carry_aligned_factors_and_scale_lights_more_pixels():
    data = load_dataset("shapes")
    assert data.sample_shape == (1, 32, 32)
    assert data.factor_names == ("shape", "scale", "rotation", "x", "y")
    assert data.train_factors.shape == (len(data.train), 5)
    assert torch.equal(data.train_labels, data.train_factors[:, 0].long())
    lit = data.train.flatten(1).sum(1)
    assert lit.min() > 0 and data.train.max() <= 1
    scale = data.train_factors[:, 1]
    assert lit[scale >= scale.median()].mean() > 1.5 * lit[scale < scale.median()].mean()


def test_shapes_factor_values_stay_in_their_ranges():
    data = load_dataset("shapes")
    factors = torch.cat([data.train_factors, data.val_factors, data.test_factors])
    shape, scale, rotation, x, y = factors.T
    assert set(shape.tolist()) == {0.0, 1.0, 2.0} and data.class_names == ("square", "ellipse", "triangle")
    assert torch.isclose(scale[:, None], torch.tensor(SCALES, dtype=torch.float32)).any(1).all()
    assert len(set(scale.tolist())) == len(SCALES)
    period = 2 * np.pi / torch.tensor(SYMMETRY)[shape.long()]
    assert (rotation >= 0).all() and (rotation < period).all()
    assert (x >= 0).all() and (x <= 1).all() and (y >= 0).all() and (y <= 1).all()
    # the margin keeps every shape inside the frame: the border rows and columns stay dark
    border = torch.cat([data.train[:, 0, [0, -1], :].flatten(1), data.train[:, 0, :, [0, -1]].flatten(1)], 1)
    assert border.max() == 0


# --- MNIST-style IDX files ---------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x803 if array.ndim == 3 else 0x801
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def write_idx(folder, count=50, train=True, gz=True):
    rng = np.random.default_rng(0)
    splits = ["t10k", "train"] if train else ["t10k"]
    for split in splits:
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        for stem, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_with_train_and_test_files(tmp_path, gz):
    write_idx(tmp_path, gz=gz)
    data = load_dataset("mnist", data_dir=tmp_path)
    assert len(data.train) == 45 and len(data.val) == 5 and len(data.test) == 50
    assert data.sample_shape == (1, 28, 28) and data.train.max() <= 1.0


def test_idx_folder_with_only_the_test_pair_splits_it_in_order_with_test_apart_from_val(tmp_path):
    write_idx(tmp_path, count=100, train=False)
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (80, 10, 10) and data.class_names[9] == "Ankle boot"
    whole = idx_module.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz", "images")
    whole = torch.from_numpy(whole.copy()).unsqueeze(1).float().div_(255)
    assert torch.equal(torch.cat([data.train, data.val, data.test]), whole)  # in file order, each row once
    assert all("the last 1,000 are the test set" in DATASETS[name].description for name in ("mnist", "fashion-mnist"))


@pytest.mark.parametrize("count,sizes", [(3, (1, 1, 1)), (19, (17, 1, 1)), (20, (16, 2, 2))])
def test_a_small_test_pair_still_gives_three_non_empty_splits(tmp_path, count, sizes):
    write_idx(tmp_path, count=count, train=False)
    data = load_dataset("mnist", data_dir=tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == sizes


def test_a_test_pair_of_two_images_is_refused_as_too_small_to_split(tmp_path):
    write_idx(tmp_path, count=2, train=False)
    with pytest.raises(DataError, match="need at least 3"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="no shared MNIST test set")
def test_the_real_mnist_test_set_gives_8000_1000_and_1000(mnist):
    assert mnist.train.shape == (8000, 1, 28, 28) and mnist.val.shape == mnist.test.shape == (1000, 1, 28, 28)
    assert mnist.train_labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first t10k digits
    assert 0.1 < mnist.train.mean() < 0.15


@pytest.mark.parametrize("damage,message", [
    ("truncate", "truncated"), ("magic", "bad magic"), ("gzip", "gzip"), ("count", "counts must agree"),
])
def test_damaged_idx_files_are_refused_by_name(tmp_path, damage, message):
    write_idx(tmp_path, train=False)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(gzip.compress(raw[:-100]))
    elif damage == "magic":
        path.write_bytes(gzip.compress(struct.pack(">I", 0x801) + raw[4:]))
    elif damage == "gzip":
        path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    else:
        path.write_bytes(gzip.compress(idx_bytes(np.zeros((49, 28, 28), np.uint8))))
    with pytest.raises(DataError, match=message) as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert "t10k-images-idx3-ubyte" in str(info.value)


def test_half_a_train_pair_is_refused_by_name(tmp_path):
    write_idx(tmp_path, train=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz but not train-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.fixture
def no_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_LAB_DATA", raising=False)
    monkeypatch.setattr(idx_module, "SYSTEM_DATASETS_DIR", tmp_path / "nothing")
    return tmp_path


@pytest.fixture
def file_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_on_first_use_lands_checked_files_in_the_cache(no_local_files, file_server, monkeypatch):
    served, url = file_server
    write_idx(served, count=30)
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", url)
    data = load_dataset("fashion-mnist", seed=3)
    assert len(data.test) == 30
    cached = no_local_files / "cache" / "vae-lab" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in served.iterdir())


def test_no_files_and_no_network_fails_fast_with_advice(no_local_files, monkeypatch):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once this block ends: nothing listens there
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", f"http://127.0.0.1:{port}/")
    fetches, fetch = [], idx_module._fetch

    def counted(url, stop=None):
        fetches.append(url)
        return fetch(url, stop)
    monkeypatch.setattr(idx_module, "_fetch", counted)
    with pytest.raises(DataError, match="VAE_LAB_DATA") as info:
        load_dataset("mnist", seed=4)
    assert len(fetches) == 1  # the first file's one mirror refused: no retry, no other file tried
    assert "Downloading them failed" in str(info.value)


def test_a_truncated_download_is_refused_and_not_kept(no_local_files, file_server, monkeypatch):
    served, url = file_server
    write_idx(served, count=30)
    blob = (served / "train-images-idx3-ubyte.gz").read_bytes()
    (served / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", url)
    with pytest.raises(DataError):
        load_dataset("mnist", seed=5)
    cached = no_local_files / "cache" / "vae-lab" / "mnist"
    assert not any(p.name.startswith("train-images") for p in cached.iterdir())
    assert not any(p.name.endswith(".part") for p in cached.iterdir())


@pytest.fixture
def raw_server():
    """A local TCP server answering each connection with handler(conn, done); yields a function taking the
    handler and giving the server's URL. `done` is set when the test ends."""
    done, threads, listener = threading.Event(), [], socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(handler):
        def accept():
            conn, _ = listener.accept()
            with conn:
                handler(conn, done)
        threads.append(threading.Thread(target=accept, daemon=True))
        threads[-1].start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/"
    yield serve
    done.set()
    for t in threads:
        t.join(5)
    listener.close()


def trickle(sending: threading.Event):
    """A handler giving an HTTP answer announcing 10 MB, then 100 bytes every 50 ms; `sending` is set once
    the body is on its way."""
    def handler(conn, done):
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 10000000\r\n\r\n")
        sent = 0
        while not done.wait(0.05):
            try:
                conn.sendall(b"x" * 100)
            except OSError:  # the client hung up
                return
            sent += 1
            if sent == 3:
                sending.set()
    return handler


def test_a_stop_during_a_download_ends_it(no_local_files, raw_server, monkeypatch):
    sending = threading.Event()
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", raw_server(trickle(sending)))
    stop, outcome = threading.Event(), []

    def load():
        try:
            load_dataset("mnist", seed=6, stop=stop)
        except Exception as e:
            outcome.append(e)
    thread = threading.Thread(target=load)
    thread.start()
    assert sending.wait(10)
    assert thread.is_alive() and not outcome  # still downloading
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and isinstance(outcome[0], LoadStopped)
    assert list((no_local_files / "cache" / "vae-lab" / "mnist").iterdir()) == []  # nothing half-written


# --- where the IDX files are looked for, in order ---------------------------------------------------

LEVELS = ("data_dir", "data_dir/mnist", "VAE_LAB_DATA", "VAE_LAB_DATA/mnist", "user cache", "system")


@pytest.fixture
def levels(tmp_path, monkeypatch):
    """One folder per search level, none holding files yet; downloads are recorded and write 30 images."""
    folders = dict(zip(LEVELS, (tmp_path / "explicit", tmp_path / "explicit" / "mnist", tmp_path / "env",
                                tmp_path / "env" / "mnist", tmp_path / "cache" / "vae-lab" / "mnist",
                                tmp_path / "system" / "mnist")))
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("VAE_LAB_DATA", str(folders["VAE_LAB_DATA"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(idx_module, "SYSTEM_DATASETS_DIR", tmp_path / "system")
    downloads = []

    def fake_download(name, target, stop=None):  # never the network
        downloads.append(target)
        write_idx(target, count=30, train=False)
    monkeypatch.setattr(idx_module, "download", fake_download)
    return folders, downloads


@pytest.mark.parametrize("first", range(len(LEVELS) + 1), ids=[*LEVELS, "download"])
def test_idx_files_are_taken_from_the_first_level_that_has_them(levels, first):
    folders, downloads = levels
    for i, level in enumerate(LEVELS[first:], first):  # this level and every later one hold files: 10 + 2i images
        write_idx(folders[level], count=10 + 2 * i, train=False)
    found = idx_module.locate("mnist", folders["data_dir"])
    data = load_dataset("mnist", data_dir=folders["data_dir"])
    if first < len(LEVELS):
        assert found == folders[LEVELS[first]].resolve() and downloads == []
        assert len(data.train) + len(data.val) + len(data.test) == 10 + 2 * first
    else:
        assert found == folders["user cache"].resolve() and downloads == [folders["user cache"]]
        assert len(data.train) + len(data.val) + len(data.test) == 30


def test_with_no_files_and_the_download_refused_the_message_lists_every_folder_in_order(levels, monkeypatch):
    folders, _ = levels

    def refuse(name, target, stop=None):
        raise idx_module._DownloadFailed("no network (test)")
    monkeypatch.setattr(idx_module, "download", refuse)
    with pytest.raises(DataError, match=r"Downloading them failed: no network \(test\)") as info:
        load_dataset("mnist", data_dir=folders["data_dir"])
    message = str(info.value)
    places = [message.index(f"{folders[level]}, " if level != "system" else f"{folders[level]}.")
              for level in LEVELS]
    assert places == sorted(places)


def stall(conn, done):
    """Accept the connection, read the request, and never answer."""
    conn.recv(4096)
    done.wait()


def test_a_server_that_accepts_and_stalls_fails_the_download_after_its_timeout(no_local_files, raw_server,
                                                                               monkeypatch):
    monkeypatch.setattr(idx_module, "DOWNLOAD_TIMEOUT_S", 0.5)
    monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", raw_server(stall))
    start = time.monotonic()
    with pytest.raises(DataError, match="VAE_LAB_DATA") as info:
        load_dataset("mnist", seed=8)
    assert time.monotonic() - start >= 0.5  # it waited for the timeout (a lower bound: never flaky)
    assert "Downloading them failed" in str(info.value) and "timed out" in str(info.value)
