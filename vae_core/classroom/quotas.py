"""Room on the disk: each student's share of the runs store, and how long deleted and archived work stays.

Counted from the run folders' cards (no full loads): a student's runs and their bytes, plus the uploads
they brought (`vae_core.data.stored`). Limits come from the environment (vae_core.limits).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vae_core import limits
from vae_core.classroom.cards import TRASH, card
from vae_core.data import stored
from vae_core.runs import RUN_NAME, started

MB = 2**20


class QuotaError(ValueError):
    """A student has no room left; the message says what to delete."""


@dataclass(frozen=True)
class Usage:
    runs: list[Path]  # the student's run folders, oldest first
    bytes: int  # their runs' files and the uploads they stored


def _folder_bytes(path: Path) -> int:
    """A run folder's files, its checkpoints (checkpoints/) included."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def owned_folders(runs_dir: str | os.PathLike, owner: str) -> list[Path]:
    """The run folders whose card names `owner`, oldest first."""
    root = Path(runs_dir)
    if not owner or not root.is_dir():
        return []
    return [path for path in sorted(root.iterdir(), key=started) if RUN_NAME.match(path.name) and path.is_dir()
            and card(path)["owner"] == owner]


def _title(run_dir: Path) -> str:
    return card(run_dir)["title"] or run_dir.name


def usage(runs_dir: str | os.PathLike, owner: str) -> Usage:
    folders = owned_folders(runs_dir, owner)
    return Usage(folders, sum(_folder_bytes(p) for p in folders) + stored.bytes_of(runs_dir, owner))


def check_room_for_runs(runs_dir: str | os.PathLike, owner: str, new_runs: int = 1, new_bytes: int = 0) -> None:
    """QuotaError, in plain words, when `owner` may not add `new_runs` runs (and `new_bytes` of files)."""
    lim = limits.current()
    used = usage(runs_dir, owner)
    if len(used.runs) + new_runs > lim.max_student_runs:
        oldest = f" (your oldest is “{_title(used.runs[0])}”)" if used.runs else ""
        raise QuotaError(f"You have {len(used.runs)} saved runs, and this server keeps at most "
                         f"{lim.max_student_runs} per student: that leaves no room for {new_runs} more. Delete some "
                         f"of yours on the Explore page{oldest}, then start again.")
    if used.bytes + new_bytes > lim.max_student_mb * MB:
        raise QuotaError(f"Your runs and uploads take {used.bytes / MB:.0f} MB, and this server gives each student "
                         f"{lim.max_student_mb} MB: delete some of your runs on the Explore page, then try again.")


def apply_retention(runs_dir: str | os.PathLike, archived_periods: set[str], now: float | None = None) -> dict:
    """Empty the trash of runs deleted more than VAE_LAB_KEEP_DAYS ago, move runs of archived class sessions
    older than that to the trash, and remove imports a crash left half-done a day ago. Returns
    {"emptied": n, "archived_to_trash": n}."""
    now = time.time() if now is None else now
    cutoff = now - limits.current().keep_days * 86400
    root = Path(runs_dir)
    emptied = moved = 0
    trash = root / TRASH
    if trash.is_dir():
        for path in trash.iterdir():
            if path.is_dir() and path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                emptied += 1
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if RUN_NAME.match(path.name) and path.is_dir() and (path / "meta.json").is_file():
            period = card(path)["period"]
            if period in archived_periods and (path / "meta.json").stat().st_mtime < cutoff:
                trash.mkdir(exist_ok=True)
                os.rename(path, trash / path.name)
                os.utime(trash / path.name)  # its days in the trash start now
                moved += 1
    for path in root.glob(".import-*") if root.is_dir() else []:  # left by an import the server died during
        if path.is_dir() and path.stat().st_mtime < now - 86400:
            shutil.rmtree(path, ignore_errors=True)
    return {"emptied": emptied, "archived_to_trash": moved}


def empty_trash(runs_dir: str | os.PathLike) -> int:
    """Delete everything in the trash (the teacher's button); how many runs went."""
    trash = Path(runs_dir) / TRASH
    gone = 0
    for path in trash.iterdir() if trash.is_dir() else []:
        shutil.rmtree(path, ignore_errors=True)
        gone += 1
    return gone
