"""Whether a built-in dataset can be had here without loading it, and how to get one that cannot.

Cheap enough to label the dataset menu on every rerun: it looks for files (vae_core.data.idx's search
order) and never downloads. Whether a download could work is a connection to the mirror's host, tried in
the background and remembered a while, so an offline server says so instead of failing on first use.
"""

from __future__ import annotations

import gzip
import io
import os
import socket
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import numpy as np

from vae_core import limits

from . import idx
from .errors import DataError
from .registry import forget_loaded

HERE, DOWNLOAD, MISSING = "here", "download", "missing"
PROBE_TIMEOUT_S = 3.0  # one connection attempt to a mirror's host
PROBE_WAIT_S = 0.3  # how long the first question waits for the attempt; later ones read what it found
PROBE_TTL_S = 600.0  # how long an answer stands (a classroom's network rarely changes within a lesson)
APT_PACKAGE = {"fashion-mnist": "dataset-fashion-mnist"}  # Debian and Ubuntu package of the files
MB = 2**20


@dataclass(frozen=True)
class Availability:
    name: str
    state: str  # HERE (files found), DOWNLOAD (none found, a mirror answers), MISSING
    folder: Path | None  # where the files were found

    @property
    def usable(self) -> bool:
        return self.state != MISSING


def availability(name: str, data_dir: str | os.PathLike | None = None) -> Availability:
    """Where `name` comes from here: generated and embedded sets are always HERE."""
    if name not in idx.IDX_DATASETS:
        return Availability(name, HERE, None)
    found = next((folder for folder in idx.candidate_dirs(name, data_dir) if idx.usable(folder)), None)
    if found is not None:
        return Availability(name, HERE, found)
    return Availability(name, DOWNLOAD if download_reachable(name) else MISSING, None)


def drop_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The one folder to name when telling someone where to put the files: the data directory's
    <name> folder when there is one (MNIST and Fashion-MNIST files share their names), else the cache."""
    base = data_dir or os.environ.get("VAE_LAB_DATA")
    return Path(base).expanduser() / name if base else idx.cache_dir(name)


def file_names() -> list[str]:
    return [stem + ".gz" for stem in idx.FILES.values()]


def how_to_get(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Plain-words ways to get `name` onto this machine, one sentence each (markdown)."""
    title = idx.IDX_DATASETS[name]["title"]
    ways = []
    if name in APT_PACKAGE:
        ways.append(f"Install the Debian/Ubuntu package: `sudo apt-get install {APT_PACKAGE[name]}`.")
    names = ", ".join(f"`{n}`" for n in file_names())
    ways.append(f"Put the four {title} IDX files ({names}; gzipped or not, and the two t10k files alone are "
                f"enough) in the folder `{drop_folder(name, data_dir)}`.")
    ways.append("Upload the four files (or a zip of them) below.")
    return ways


# --- can a download work? ------------------------------------------------------------------------

_probes: dict[tuple[str, int], tuple[float, threading.Event, list[bool]]] = {}
_probes_lock = threading.Lock()


def _mirror(name: str) -> tuple[str, int]:
    url = urlsplit(os.environ.get("VAE_LAB_DOWNLOAD_URL") or idx.IDX_DATASETS[name]["mirrors"][0])
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def download_reachable(name: str) -> bool:
    """Whether the first mirror of `name` accepted a connection lately; asked once per PROBE_TTL_S in a
    thread of its own, which the question that starts it waits for PROBE_WAIT_S at most (not yet known
    counts as no)."""
    key = _mirror(name)
    with _probes_lock:
        started, done, answer = _probes.get(key, (None, None, None))
        fresh = started is None or time.monotonic() - started > PROBE_TTL_S
        if fresh:
            done, answer = threading.Event(), []
            _probes[key] = (time.monotonic(), done, answer)

            def probe() -> None:
                answer.append(_connects(*key))
                done.set()
            threading.Thread(target=probe, name="vae-lab-mirror-probe", daemon=True).start()
    if fresh:
        done.wait(PROBE_WAIT_S)
    return bool(answer and answer[0])


# --- files uploaded through the page -------------------------------------------------------------

def install_upload(name: str, uploads: list[tuple[str, bytes]],
                   data_dir: str | os.PathLike | None = None) -> Path:
    """Check uploaded IDX files of `name` (each gzipped or raw, or zips of them) and keep them in its drop
    folder, where the built-in dataset is then found for every user of this server. The t10k pair is
    required, the train pair optional; sizes are capped like other uploads (VAE_LAB_MAX_UPLOAD_MB).
    Returns the folder; DataError names what is wrong, and then nothing is kept."""
    lim = limits.current()
    if sum(len(blob) for _, blob in uploads) > lim.max_upload_mb * MB:
        raise DataError(f"the files are over this server's upload limit of {lim.max_upload_mb} MB "
                        f"(VAE_LAB_MAX_UPLOAD_MB)")
    title, classes = idx.IDX_DATASETS[name]["title"], len(idx.IDX_DATASETS[name]["class_names"])
    found: dict[tuple[str, str], tuple[str, bytes, bool, np.ndarray]] = {}
    for filename, blob in _unzipped(uploads, lim.max_upload_mb * MB):
        split = "t10k" if "t10k" in filename.lower() or "test" in filename.lower() else "train"
        part, array, gzipped = *_decode_either(filename, blob), blob[:2] == b"\x1f\x8b"
        if (split, part) in found:
            raise DataError(f"{filename} and {found[(split, part)][0]} are both {split} {part}; upload one of each")
        if part == "images" and array.shape[1:] != (28, 28):
            raise DataError(f"{filename}: images of {array.shape[1]}×{array.shape[2]} pixels; {title} images "
                            f"are 28×28")
        if part == "labels" and array.max() >= classes:
            raise DataError(f"{filename}: labels go up to {array.max()}, but {title} has {classes} classes")
        found[(split, part)] = (filename, blob, gzipped, array)
    for split in ("t10k", "train"):
        have = [part for part in ("images", "labels") if (split, part) in found]
        if split == "t10k" and len(have) < 2 or len(have) == 1:
            lack = [idx.FILES[(split, part)] for part in ("images", "labels") if part not in have]
            raise DataError(f"missing {' and '.join(lack)}: "
                            + ("the two t10k files are needed" if split == "t10k" else "add it, or leave out "
                               f"{idx.FILES[(split, have[0])]}") + " (file names as they come)")
        if len(have) == 2 and len(found[(split, "images")][3]) != len(found[(split, "labels")][3]):
            raise DataError(f"the {split} images and labels hold different counts; upload a matching pair")
    target = drop_folder(name, data_dir)
    _keep(target, {idx.FILES[key] + (".gz" if gzipped else ""): blob
                   for key, (_, blob, gzipped, _) in found.items()})
    forget_loaded()
    return target


def _decode_either(filename: str, blob: bytes) -> tuple[str, np.ndarray]:
    """("images" or "labels", the decoded array), whichever the file's magic number says it is."""
    gzipped = blob[:2] == b"\x1f\x8b"
    try:
        head = gzip.GzipFile(fileobj=io.BytesIO(blob)).read(4) if gzipped else blob[:4]
    except (OSError, EOFError, zlib.error):
        head = b""  # decode_idx names the damage below
    part = "labels" if int.from_bytes(head, "big") == idx.LABELS_MAGIC else "images"
    if not gzipped and part == "images" and int.from_bytes(head, "big") != idx.IMAGES_MAGIC:
        raise DataError(f"{filename}: not an IDX images or labels file (gzipped or raw)")
    return part, idx.decode_idx(blob, filename, part, gzipped)


def _keep(target: Path, files: dict[str, bytes]) -> None:
    """Write `files` into `target`, each atomically, replacing the other form (raw or .gz) of the same file."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        for filename, blob in files.items():
            stem = filename.removesuffix(".gz")
            fd, tmp = tempfile.mkstemp(dir=target, prefix="." + stem, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
            except OSError:
                os.unlink(tmp)
                raise
            (target / (stem if filename.endswith(".gz") else stem + ".gz")).unlink(missing_ok=True)
            os.replace(tmp, target / filename)
    except OSError as e:
        raise DataError(f"cannot write into {target} ({e.strerror or e}); ask whoever runs this server to "
                        f"put the files there") from None


def _unzipped(uploads: list[tuple[str, bytes]], cap: int):
    """(file name, bytes) of each upload, and of each file inside an uploaded zip (never more than `cap`)."""
    for filename, blob in uploads:
        if not (filename.lower().endswith(".zip") and blob[:2] == b"PK"):
            yield PurePosixPath(filename).name, blob
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX")
                         and not PurePosixPath(i.filename).name.startswith(".")]
                if sum(i.file_size for i in infos) > cap:
                    raise DataError(f"{filename}: unpacks to more than {cap // MB} MB (VAE_LAB_MAX_UPLOAD_MB)")
                for info in infos:
                    with zf.open(info) as f:
                        inner = f.read(cap + 1)
                    if len(inner) > cap:
                        raise DataError(f"{filename}: unpacks to more than {cap // MB} MB (VAE_LAB_MAX_UPLOAD_MB)")
                    yield PurePosixPath(info.filename).name, inner
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError(f"{filename}: not a readable zip file ({e})") from None
