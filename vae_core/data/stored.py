"""Uploaded datasets kept with the runs, so a run trained on an upload can be explored, compared and
bundled after the browser session that uploaded it has gone.

Each dataset is stored once, as `<runs_dir>/.data/<digest>.safetensors`, named by a hash of its content:
the same upload gives the same digest in any session, and a run's card names its data by that digest.
`<digest>.owners.json` lists the students who stored it; each one's quota counts it. Safetensors only:
reading a stored dataset never runs code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vae_core import limits, runs
from vae_core.classroom.identity import OWNER, plain_text
from vae_core.classroom.room import locked, read_json

from .dataset import KINDS, Dataset
from .errors import DataError

DIR = ".data"
MB = 2**20
HEADER_ROOM = MB  # a file's safetensors header, on top of the data the upload limit allows
SPLITS = ("train", "val", "test")
TENSORS = tuple(f"{split}{part}" for split in SPLITS for part in ("", "_labels", "_factors"))
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MISSING = "the uploaded data this run trained on is missing from the server ({})"


def path_of(digest: str, runs_dir: str | os.PathLike) -> Path:
    """The file of a stored dataset; a digest that is not 64 hex digits (a hand-edited card, a forged
    bundle) is refused before it comes near a path."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise DataError(_MISSING.format(f"{str(digest)!r:.80} is not a data id"))
    return Path(runs_dir) / DIR / f"{digest}.safetensors"


def save(data: Dataset, runs_dir: str | os.PathLike, owner: str) -> str:
    """Store `data` (written once per content) and record `owner` ("" for nobody) among those who brought
    it; returns its digest. DataError when the data is over the upload limit."""
    if owner and not OWNER.match(owner):
        raise ValueError(f"{owner!r:.40} is not an owner id")
    tensors, metadata = _parts(data)
    cap_mb = limits.current().max_upload_mb
    size = sum(t.nbytes for t in tensors.values())
    if size > cap_mb * MB:
        raise DataError(f"{data.name}: {size / MB:.1f} MB of data is over this server's upload limit of "
                        f"{cap_mb} MB (VAE_LAB_MAX_UPLOAD_MB)")
    digest = _digest(tensors, metadata)
    path = path_of(digest, runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():  # same digest, same content: written once, whoever brings it again
        runs.write_atomic(path, save_safetensors(tensors, metadata))
    if owner:
        owners_path = path.with_name(f"{digest}.owners.json")
        with locked(path.parent / ".owners.lock"):  # servers sharing the store must not lose an owner
            owners = _owners(owners_path)
            if owner not in owners:
                runs.write_atomic(owners_path, json.dumps([*owners, owner]).encode())
    return digest


def load(digest: str, runs_dir: str | os.PathLike) -> Dataset:
    """The stored dataset of `digest`; DataError, in words a student can act on, when it is missing or
    corrupt. Cached: a digest names one content, and datasets are read-only."""
    path = path_of(digest, runs_dir)
    try:
        return _cached(path.absolute())
    except DataError as exc:
        raise DataError(_MISSING.format(f"{digest[:12]}…: {exc}")) from None


def read(path: str | os.PathLike) -> Dataset:
    """A stored dataset file, checked (size before reading, format, metadata, shapes, values); DataError
    saying what is wrong. `load` reads the store through it, a bundle's import its data.safetensors."""
    path = Path(path)
    cap = max(limits.current().max_upload_mb * MB, runs.MAX_FILE_BYTES) + HEADER_ROOM
    try:
        size = path.stat().st_size
        if size > cap:
            raise DataError(f"the file is {size / MB:.0f} MB, larger than {cap // MB} MB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError("no such file") from None
    except OSError as exc:
        raise DataError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        tensors = load_safetensors(raw)
        header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])  # valid: safetensors read it
    except (SafetensorError, ValueError, RuntimeError, RecursionError) as exc:
        raise DataError(f"not a valid safetensors file ({exc})") from None
    meta = header.get("__metadata__") or {}
    unknown = sorted(set(tensors) - set(TENSORS))
    if unknown or not all(split in tensors for split in SPLITS):
        raise DataError(f"holds tensors {plain_text(', '.join(sorted(tensors)), 200) or 'none'}; expected train, "
                        f"val and test, and optionally their _labels and _factors")
    name, kind = _field(meta, "name"), _field(meta, "kind")
    class_names, factor_names = _field(meta, "class_names"), _field(meta, "factor_names")
    if not (isinstance(name, str) and 0 < len(name) <= 200 and kind in KINDS and _texts(factor_names)
            and (class_names is None or _texts(class_names))):
        raise DataError("its metadata lacks a valid name, kind, class_names or factor_names")
    try:
        data = Dataset(name=name, kind=kind, class_names=None if class_names is None else tuple(class_names),
                       factor_names=tuple(factor_names), **{key: tensors.get(key) for key in TENSORS})
    except ValueError as exc:
        raise DataError(str(exc)) from None
    _check_values(data)
    return data


def bytes_of(runs_dir: str | os.PathLike, owner: str) -> int:
    """Bytes of the stored datasets `owner` brought (each counted in full for everyone who brought it)."""
    root = Path(runs_dir) / DIR
    if not owner or not root.is_dir():
        return 0
    total = 0
    for owners_path in root.glob("*.owners.json"):
        digest = owners_path.name.removesuffix(".owners.json")
        if _DIGEST.match(digest) and owner in _owners(owners_path):
            try:
                total += (root / f"{digest}.safetensors").stat().st_size
            except FileNotFoundError:  # deleted by hand: nothing to charge
                continue
    return total


@functools.lru_cache(maxsize=4)
def _cached(path: Path) -> Dataset:
    return read(path)


def _parts(data: Dataset) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata (JSON strings) of a stored dataset. A split cut from a larger tensor is
    copied: safetensors refuses tensors that share memory."""
    tensors = {}
    for key in TENSORS:
        t = getattr(data, key)
        if t is not None:
            t = t.detach().cpu().contiguous()
            tensors[key] = t if t.untyped_storage().nbytes() == t.nbytes else t.clone()
    metadata = {"name": json.dumps(data.name), "kind": json.dumps(data.kind),
                "class_names": json.dumps(None if data.class_names is None else list(data.class_names)),
                "factor_names": json.dumps(list(data.factor_names))}
    return tensors, metadata


def _digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 of a canonical form (sorted JSON of the metadata and each tensor's dtype and shape, then the
    tensors' bytes in name order): safetensors' own bytes are not promised to be the same every time."""
    h = hashlib.sha256()
    head = {"metadata": metadata, "tensors": {k: [str(t.dtype), list(t.shape)] for k, t in tensors.items()}}
    h.update(json.dumps(head, sort_keys=True).encode() + b"\0")
    for key in sorted(tensors):
        h.update(tensors[key].reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _field(meta: dict, key: str):
    try:
        return json.loads(meta[key])
    except (KeyError, TypeError, ValueError, RecursionError):
        return None  # missing or malformed: read as absent, which only class_names may be


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_values(data: Dataset) -> None:
    """What the shapes do not say: finite samples (images in [0, 1]), labels naming a class."""
    for split in SPLITS:
        x = getattr(data, split)
        if not torch.isfinite(x).all() or (data.is_image and (x.min() < 0 or x.max() > 1)):
            raise DataError(f"the {split} samples hold NaN, infinite or (images) out-of-range values")
        labels = getattr(data, f"{split}_labels")
        if labels is not None and data.class_names is not None and (
                labels.min() < 0 or labels.max() >= len(data.class_names)):
            raise DataError(f"the {split} labels do not all name one of its {len(data.class_names)} classes")


def _owners(path: Path) -> list[str]:
    owners = read_json(path, [])
    return [o for o in owners if isinstance(o, str) and OWNER.match(o)] if isinstance(owners, list) else []
