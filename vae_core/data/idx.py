"""MNIST-style IDX files: reading and checking them, finding their folder, downloading them.

A folder is usable when it holds the t10k pair (images and labels), gzip-compressed or raw;
the train pair is optional. Search order: `data_dir` (and `data_dir/<name>`), $VAE_LAB_DATA
(and `$VAE_LAB_DATA/<name>`), the user cache `${XDG_CACHE_HOME:-~/.cache}/vae-lab/<name>`,
`/usr/share/datasets/<name>`; if none is usable the files are downloaded into the user cache.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, from_splits, random_split
from .errors import DataError, LoadStopped

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
MAX_IDX_BYTES = 128 * 2**20  # decompressed size of one file (MNIST train images: 45 MiB)
MAX_DOWNLOAD_BYTES = 64 * 2**20  # compressed size of one file (Fashion-MNIST train images: 26 MB)
DOWNLOAD_TIMEOUT_S = 10  # per network operation
DOWNLOAD_DEADLINE_S = 120  # for one whole file, so a trickling server cannot hold us forever
SYSTEM_DATASETS_DIR = Path("/usr/share/datasets")  # Debian's dataset-fashion-mnist installs here

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

IDX_DATASETS = {
    "mnist": {"title": "MNIST", "mirrors": MNIST_MIRRORS,
              "class_names": tuple(str(d) for d in range(10))},
    "fashion-mnist": {"title": "Fashion-MNIST", "mirrors": FASHION_MNIST_MIRRORS,
                      "class_names": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")},
}
# (split, part) -> file name without ".gz", in download order: t10k last, so a cache folder
# holding the t10k pair also holds the train pair.
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("t10k", "images"): "t10k-images-idx3-ubyte",
    ("t10k", "labels"): "t10k-labels-idx1-ubyte",
}


def decode_idx(blob: bytes, source: str, part: str, gzipped: bool) -> np.ndarray:
    """Check and decode one IDX file: uint8 (N, H, W) images or (N,) labels. `source` names it in errors."""
    if gzipped:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
                blob = f.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{source}: not a valid gzip file ({e}); the file is damaged or "
                            f"incomplete, delete it and get it again") from None
    if len(blob) > MAX_IDX_BYTES:
        raise DataError(f"{source}: larger than {MAX_IDX_BYTES // 2**20} MiB, too big for an IDX file")
    magic, ndim = (IMAGES_MAGIC, 3) if part == "images" else (LABELS_MAGIC, 1)
    header_len = 4 + 4 * ndim
    if len(blob) < header_len:
        raise DataError(f"{source}: truncated, only {len(blob)} bytes (an IDX {part} header "
                        f"needs {header_len})")
    found = int.from_bytes(blob[:4], "big")
    if found != magic:
        raise DataError(f"{source}: bad magic number 0x{found:08X}, expected 0x{magic:08X} for IDX "
                        f"{part}; this is not an IDX {part} file")
    dims = tuple(int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if 0 in dims:
        raise DataError(f"{source}: header gives dimensions {dims}; it holds no data")
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(blob) != expected:
        problem = "truncated" if len(blob) < expected else "has extra bytes"
        raise DataError(f"{source}: {problem}: the header {dims} needs {expected} bytes, the file has "
                        f"{len(blob)}; the file is damaged or incomplete, delete it and get it again")
    return np.frombuffer(blob, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx(path: Path, part: str) -> np.ndarray:
    """Read and check one IDX file, gzip-compressed when its name ends in .gz."""
    try:
        if path.stat().st_size > MAX_IDX_BYTES:
            raise DataError(f"{path}: larger than {MAX_IDX_BYTES // 2**20} MiB, too big for an IDX file")
        blob = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    return decode_idx(blob, str(path), part, path.suffix == ".gz")


def _file_in(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def usable(folder: Path) -> bool:
    """Whether `folder` holds the t10k pair, the least a dataset is built from."""
    return all(_file_in(folder, FILES[("t10k", part)]) for part in ("images", "labels"))


def cache_dir(name: str) -> Path:
    """Where downloads go: ${XDG_CACHE_HOME:-~/.cache}/vae-lab/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vae-lab" / name


def candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """The folders searched for the files of `name`, in order."""
    dirs = []
    for base in (data_dir, os.environ.get("VAE_LAB_DATA") or None):
        if base is not None:
            base = Path(base).expanduser()
            dirs += [base, base / name]
    return dirs + [cache_dir(name), SYSTEM_DATASETS_DIR / name]


def locate(name: str, data_dir: str | os.PathLike | None = None, stop: threading.Event | None = None) -> Path:
    """The resolved folder holding the IDX files of `name`, downloading them into the cache if needed
    (LoadStopped when `stop` is set during the download)."""
    searched = candidate_dirs(name, data_dir)
    for folder in searched:
        if usable(folder):
            return folder.resolve()
    target = cache_dir(name)
    try:
        download(name, target, stop)
    except _DownloadFailed as e:
        info = IDX_DATASETS[name]
        names = ", ".join(stem + ".gz" for stem in FILES.values())
        message = (f"{info['title']} files not found. Looked in: {', '.join(map(str, searched))}. "
                   f"Downloading them failed: {e}. To fix: put the files ({names}; the two t10k "
                   f"files are enough) in a folder and set the environment variable VAE_LAB_DATA "
                   f"to it, or give that folder as the data directory.")
        if name == "fashion-mnist":
            message += " On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist"
        raise DataError(message) from None
    return target.resolve()


class _DownloadFailed(Exception):
    """One line saying why a download did not work."""


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise LoadStopped("stopped during the download")


def _fetch(url: str, stop: threading.Event | None = None) -> bytes:
    """GET url with a timeout, a byte cap and an overall deadline; `stop` is checked between reads."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    chunks, total = [], 0
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        while chunk := response.read1(1 << 16):  # whatever has arrived, so a slow server cannot delay a stop
            _check(stop)
            total += len(chunk)
            if total > MAX_DOWNLOAD_BYTES:
                raise _DownloadFailed(f"{url} is larger than {MAX_DOWNLOAD_BYTES // 2**20} MiB")
            if time.monotonic() > deadline:
                raise _DownloadFailed(f"{url} took longer than {DOWNLOAD_DEADLINE_S} s")
            chunks.append(chunk)
    return b"".join(chunks)


def _write_atomically(path: Path, blob: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def download(name: str, target: Path, stop: threading.Event | None = None) -> None:
    """Download the missing .gz files of `name` into `target`, checking each before keeping it.

    Mirrors come from IDX_DATASETS, or the single base URL in $VAE_LAB_DOWNLOAD_URL. Setting `stop`
    raises LoadStopped between reads (a stalled connection still takes up to DOWNLOAD_TIMEOUT_S).
    """
    override = os.environ.get("VAE_LAB_DOWNLOAD_URL")
    bases = (override,) if override else IDX_DATASETS[name]["mirrors"]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _DownloadFailed(f"cannot create {target} ({e.strerror or e})") from None
    for (_, part), stem in FILES.items():
        if _file_in(target, stem):
            continue
        errors = []
        for base in bases:
            url = base.rstrip("/") + "/" + stem + ".gz"
            _check(stop)
            try:
                blob = _fetch(url, stop)
                decode_idx(blob, url, part, gzipped=True)
            except (OSError, ValueError, http.client.HTTPException, _DownloadFailed) as e:
                # URLError is an OSError, DataError a ValueError
                errors.append(f"{url}: {getattr(e, 'reason', e)}")
                continue
            try:
                _write_atomically(target / (stem + ".gz"), blob)
            except OSError as e:
                raise _DownloadFailed(f"cannot write into {target} ({e.strerror or e})") from None
            break
        else:
            raise _DownloadFailed("; ".join(errors))


def load_idx_dataset(name: str, seed: int, folder: Path) -> Dataset:
    """Build the Dataset from a usable folder.

    With the train pair: train = train file minus a seeded 10 % held out as val, test = t10k.
    With only the t10k pair: train = first 80 % (8,000 of MNIST's 10,000), val = the next 10 %, test = the
    last 10 %, unshuffled so results are reproducible across runs and machines; test never equals val.
    """
    def pair(split: str) -> tuple[np.ndarray, np.ndarray] | None:
        paths = {part: _file_in(folder, FILES[(split, part)]) for part in ("images", "labels")}
        if not any(paths.values()):
            return None
        if None in paths.values():
            have = next(p.name for p in paths.values() if p is not None)
            lack = next(FILES[(split, part)] for part, p in paths.items() if p is None)
            raise DataError(f"{folder}: has {have} but not {lack}[.gz]; add it or remove {have}")
        images, labels = read_idx(paths["images"], "images"), read_idx(paths["labels"], "labels")
        if len(images) != len(labels):
            raise DataError(f"{paths['images']} has {len(images)} images but {paths['labels']} has "
                            f"{len(labels)} labels; the counts must agree")
        if len(images) < 2:
            raise DataError(f"{paths['images']}: holds only {len(images)} image; need at least 2")
        return images, labels

    test, train = pair("t10k"), pair("train")
    if train is not None and train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(f"{folder}: train images are {train[0].shape[1:]} pixels but t10k images "
                        f"are {test[0].shape[1:]}; they must match")
    class_names = IDX_DATASETS[name]["class_names"]
    if train is None:
        images, labels = test
        if len(images) < 3:
            raise DataError(f"{folder}: the t10k files hold only {len(images)} images; need at least 3 (to "
                            "train, validate and test) or the train pair too")
        held_out = max(1, len(images) // 10)
        n_train = len(images) - 2 * held_out
        splits = (slice(0, n_train), slice(n_train, n_train + held_out), slice(n_train + held_out, None))
    else:
        images, labels = (np.concatenate(arrays) for arrays in zip(train, test))
        n_train_file = len(train[0])
        fit, held_out, _ = random_split(n_train_file, 0.1, 0.0, seed)
        splits = (fit, held_out, slice(n_train_file, None))
    if labels.max() >= len(class_names):
        raise DataError(f"{folder}: labels go up to {labels.max()}, but {name} has "
                        f"{len(class_names)} classes")
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255)
    y = torch.from_numpy(labels.astype(np.int64))
    return from_splits(name, "image", x, y, class_names, splits)
