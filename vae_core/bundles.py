"""A run as one zip to download, and such a zip imported as a new run.

A bundle holds one folder, `<run name>/`, with the run's files, its card and, when it trained on an
upload, that dataset as data.safetensors: all another server needs to explore the run. An imported
bundle is untrusted: nothing in it is executed (safetensors and JSON only), its sizes, entry count and
names are checked before anything is unpacked, and the run must load (settings in range, weights that
fit the model and are finite) before it joins the store.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import stat
import zipfile
from pathlib import Path

from vae_core import limits, runs
from vae_core.classroom import cards
from vae_core.classroom.identity import OWNER, TITLE_MAX, plain_text
from vae_core.config import TrainConfig
from vae_core.data import stored
from vae_core.data.errors import DataError
from vae_core.jobs import replay

DATA = "data.safetensors"
NAMES = (*runs.FILES, replay.REPLAY, cards.CARD, DATA)  # a replay: runs saved before replays have none
MB = 2**20
CHUNK = MB


class BundleError(ValueError):
    """A bundle this server refuses; the message says what is wrong with it."""


def bundle(run_dir: str | os.PathLike, *, private: bool = False) -> bytes:
    """A zip of the run's files, its card and the uploaded data it trained on, for download. The card's
    note, hand-in and feedback are the student's and the teacher's: in the bundle only when `private`
    (the owner or the teacher downloads it)."""
    run_dir = Path(run_dir)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (*runs.FILES, replay.REPLAY):
            if (run_dir / name).is_file():
                zf.write(run_dir / name, f"{run_dir.name}/{name}")
        card = cards.card(run_dir)
        if not private:
            card = {**card, "note": "", "handed_in": None, "feedback": ""}
        zf.writestr(f"{run_dir.name}/{cards.CARD}", json.dumps(card, indent=1))
        data = _data_file(run_dir)
        if data is not None:
            zf.write(data, f"{run_dir.name}/{DATA}")
    return out.getvalue()


def import_bundle(raw: bytes, runs_dir: str | os.PathLike, owner: str, title: str = "") -> Path:
    """The bundle `raw` as a new run in `runs_dir`, owned by `owner` ("" for nobody), titled as its card
    says, else `title`, else "imported"; its data (if any) goes to the store, charged to `owner`.

    Unpacked and checked in a hidden folder, then renamed to a fresh run name in one step: the store
    never shows part of it. BundleError saying what is wrong (a store it cannot write to included); a
    refused bundle leaves nothing behind. ValueError when `owner` is not an owner id."""
    if owner and not OWNER.match(owner):
        raise ValueError(f"{owner!r:.40} is not an owner id")
    cap_mb = limits.current().max_upload_mb
    if len(raw) > cap_mb * MB:
        raise BundleError(f"the bundle is larger than this server's upload limit of {cap_mb} MB "
                          f"(VAE_LAB_MAX_UPLOAD_MB)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise BundleError(f"the bundle is not a readable zip file ({exc})") from None
    top, entries = _entries(infos)
    runs_dir = Path(runs_dir)
    tmp = runs_dir / f".import-{secrets.token_hex(6)}"  # a dot: list_runs never shows it
    try:
        with zf:
            runs_dir.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            _unpack(zf, top, entries, tmp, cap_mb * MB)
            return _install(tmp, top, runs_dir, owner, title)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BundleError(f"the run could not be saved on this server ({exc.strerror or exc})") from None
        raise


def _data_file(run_dir: Path) -> Path | None:
    """The stored dataset the run's card names, when the store has it (a run whose data is gone still
    downloads, with its weights)."""
    digest = cards.card(run_dir)["data"]
    if not digest:
        return None
    try:
        path = stored.path_of(digest, run_dir.parent)
    except DataError:
        return None
    return path if path.is_file() else None


def _entries(infos: list[zipfile.ZipInfo]) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """The bundle's one top folder and its files by name, from the zip's directory alone: only the
    expected names, once each, no paths leaving the folder, no links."""
    if len(infos) > len(NAMES) + 1:  # the files, and the folder's own entry
        raise BundleError(f"the bundle holds {len(infos)} entries; a run bundle holds at most {len(NAMES)} "
                          f"files in one folder")
    tops, files = set(), {}
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name) or {"..", "."} & set(parts):
            raise BundleError(f"the bundle's entry {name!r:.80} points outside its folder (absolute path or "
                              f"'..'); refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(f"the bundle's entry {name!r:.80} is a symbolic link; refused")
        if len(parts) == 2 and parts[0] and info.is_dir():
            tops.add(parts[0])
            continue
        if len(parts) != 2 or not parts[0] or parts[1] not in NAMES:
            raise BundleError(f"the bundle's entry {name!r:.80} is not a run file: a run bundle holds "
                              f"{', '.join(NAMES)} in one folder")
        if parts[1] in files:
            raise BundleError(f"the bundle holds {parts[1]} twice")
        tops.add(parts[0])
        files[parts[1]] = info
    if len(tops) != 1:
        raise BundleError(f"the bundle holds {len(tops)} folders ({plain_text(', '.join(sorted(tops)), 100)}); "
                          f"a run bundle holds exactly one")
    top = plain_text(tops.pop(), 60) or "its folder"  # the folder's name, as messages show it
    missing = [name for name in runs.FILES if name not in files]
    if missing:
        raise BundleError(f"{top}/ lacks {', '.join(missing)}: not a complete run")
    return top, files


def _unpack(zf: zipfile.ZipFile, top: str, files: dict[str, zipfile.ZipInfo], tmp: Path, upload_cap: int) -> None:
    """Each file into `tmp`, at most runs.MAX_FILE_BYTES each and a run's files plus an upload in all,
    by the sizes the zip declares and by the bytes it really unpacks to (a zip bomb stops at the cap)."""
    file_cap, total_cap = runs.MAX_FILE_BYTES, runs.MAX_FILE_BYTES + upload_cap
    declared = {name: info.file_size for name, info in files.items()}
    for name, size in declared.items():
        if size > file_cap:
            raise BundleError(f"{top}/{name} would unpack to {size / MB:.0f} MB, over the limit of "
                              f"{file_cap // MB} MB a file; is it a zip bomb?")
    if sum(declared.values()) > total_cap:
        raise BundleError(f"the bundle would unpack to {sum(declared.values()) / MB:.0f} MB, over the limit of "
                          f"{total_cap // MB} MB; is it a zip bomb?")
    total = 0
    for name, info in files.items():
        written = 0
        try:
            with zf.open(info) as src, open(tmp / name, "wb") as dst:
                while chunk := src.read(CHUNK):
                    written, total = written + len(chunk), total + len(chunk)
                    if written > file_cap or total > total_cap:
                        raise BundleError(f"{top}/{name} unpacks to more than the limit of {file_cap // MB} MB "
                                          f"a file, {total_cap // MB} MB in all; is it a zip bomb?")
                    dst.write(chunk)
        except BundleError:
            raise
        except Exception as exc:  # zipfile and its decompressors raise many types for damaged entries
            raise BundleError(f"{top}/{name} cannot be unpacked ({type(exc).__name__}: {exc})") from None


def _install(tmp: Path, top: str, runs_dir: Path, owner: str, title: str) -> Path:
    """Check the unpacked run as the store would load it, give it its new card, store its data, and
    rename it into the store."""
    try:
        run = runs.load_run(tmp)
        run.load_model()
        replay.load(tmp, run.meta.get("epochs_done"))
    except runs.RunError as exc:
        raise BundleError(str(exc).replace(tmp.name, top)) from None
    data = None
    if (tmp / DATA).is_file():
        try:
            data = stored.read(tmp / DATA)
        except DataError as exc:
            raise BundleError(f"{top}/{DATA}: {exc}") from None
        (tmp / DATA).unlink()  # it goes to the store, not the run folder
        if data.name != run.config.dataset or list(data.sample_shape) != run.meta["sample_shape"]:
            raise BundleError(f"{top}/{DATA} is not the data the run trained on: {data.name!r:.60} of shape "
                              f"{list(data.sample_shape)}, config.json and meta.json say "
                              f"{run.config.dataset!r:.60} of shape {run.meta['sample_shape']}")
    old = cards.card(tmp)  # a bundle from before cards reads as an empty card
    card = {**cards.new_card(owner, old["title"] or plain_text(title, TITLE_MAX) or "imported"), "note": old["note"]}
    if data is not None:
        try:
            card["data"] = stored.save(data, runs_dir, owner)
        except DataError as exc:
            raise BundleError(f"{top}/{DATA}: {exc}") from None
    cards.write_card(tmp, card)
    return _rename(tmp, runs_dir, run.config)


def _rename(tmp: Path, runs_dir: Path, config: TrainConfig) -> Path:
    """Move the checked folder to a fresh run name in one rename. runs.new_run_dir makes the name ours (an
    empty folder, made exclusively, retried with another random suffix when taken); the rename replaces
    that empty folder, never another run."""
    for _ in range(10):
        try:
            target = runs.new_run_dir(runs_dir, config)
        except FileExistsError:
            continue
        try:
            os.rename(tmp, target)
        except OSError:
            target.rmdir()
            raise
        return target
    raise BundleError("no free run name was found; import the bundle again")
