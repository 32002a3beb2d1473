"""The class as every web server sees it: files in the runs store's `.class` folder.

`room.json` holds the teacher's settings: the class session (period) under way and the archived ones,
open assignments, the lesson or preset sent to every student, the settings locked for students, the
epoch cap, and which owners proved the teacher key. `students/<owner>.json` holds a student's display
name and the periods they joined. Each change is a read-modify-write under a file lock, written
atomically: servers sharing the folder never lose each other's changes, a crash leaves old or new.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vae_core.classroom.identity import NAME_MAX, OWNER, TITLE_MAX, default_name, plain_text
from vae_core.config import ConfigError, TrainConfig
from vae_core.runs import write_atomic

KEY_ENV = "VAE_LAB_TEACHER_KEY"
ASSIGNMENTS_MAX = 50
ARCHIVE_MAX = 500


def class_dir(runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / ".class"


@contextmanager
def locked(path: Path):
    """An exclusive lock on `path` (created), held by this process and thread for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_thread_lock = threading.RLock()  # flock is per open file: threads of one process also queue here


def read_json(path: Path, default):
    """A small JSON file of ours, or `default` when it is missing or unreadable (a hand-edited file is
    never trusted to be valid)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read(1_000_000))
    except (OSError, ValueError, RecursionError):
        return default


@dataclass(frozen=True)
class Pushed:
    """What the teacher sent every student: a lesson (by key) or a preset (a config), with its label."""
    id: str
    label: str
    lesson: str = ""
    config: dict | None = None

    def configs(self) -> list[TrainConfig]:
        """The runs it offers: the lesson's runs, or the one preset (the lessons are looked up here, so a
        lesson this server lacks offers nothing)."""
        if self.lesson:
            from vae_core.views.lessons import LESSONS
            return [config for item in LESSONS if item.key == self.lesson for _, config in item.runs]
        try:
            return [TrainConfig.from_dict(self.config or {}, strict=False)]
        except ConfigError:
            return []


@dataclass(frozen=True)
class Room:
    period: str = ""  # id of the class session under way, "" before the teacher starts one
    period_name: str = ""
    period_started: float = 0.0
    archived: tuple[dict, ...] = ()  # earlier periods: {"id", "name", "started", "ended"}
    assignments: tuple[str, ...] = ()
    pushed: Pushed | None = None
    locks: tuple[str, ...] = ()  # TrainConfig fields students may not change
    max_epochs: int | None = None  # the class's epoch cap, below the server's own
    teachers: dict[str, str] = field(default_factory=dict)  # owner -> proof that they typed the key

    @classmethod
    def from_dict(cls, raw) -> Room:
        """A room from room.json, keeping only well-formed parts."""
        if not isinstance(raw, dict):
            return cls()
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        pushed = raw.get("pushed")
        try:
            pushed = Pushed(str(pushed["id"]), str(pushed["label"]), str(pushed.get("lesson", "")),
                            pushed.get("config") if isinstance(pushed.get("config"), dict) else None)
        except (TypeError, KeyError):
            pushed = None
        cap, teachers = raw.get("max_epochs"), raw.get("teachers")
        archived, assignments, locks = (raw.get(k) if isinstance(raw.get(k), list) else []
                                        for k in ("archived", "assignments", "locks"))
        return cls(period=str(raw.get("period", "")), period_name=str(raw.get("period_name", "")),
                   period_started=seconds(raw.get("period_started")),
                   archived=tuple(p for p in archived if isinstance(p, dict))[-ARCHIVE_MAX:],
                   assignments=tuple(str(a) for a in assignments)[:ASSIGNMENTS_MAX],
                   pushed=pushed, locks=tuple(f for f in locks if isinstance(f, str) and f in fields),
                   max_epochs=cap if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1 else None,
                   teachers={k: v for k, v in teachers.items() if isinstance(k, str) and isinstance(v, str)}
                   if isinstance(teachers, dict) else {})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["pushed"] = dataclasses.asdict(self.pushed) if self.pushed else None
        return out


def seconds(value) -> float:
    """A time in a hand-editable file: a number of seconds, else 0."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else 0.0


class Classroom:
    """The class state in a runs store, read fresh on every call (other servers change it too)."""

    def __init__(self, runs_dir: str | os.PathLike, clock: Callable[[], float] = time.time):
        self.root = class_dir(runs_dir)
        self.clock = clock

    # --- the room -------------------------------------------------------------------------------
    def room(self) -> Room:
        return Room.from_dict(read_json(self.root / "room.json", {}))

    def change(self, edit: Callable[[Room], Room]) -> Room:
        """Apply `edit` to the room under the lock, save it, and return the new room."""
        with locked(self.root / "room.lock"):
            new = edit(self.room())
            write_atomic(self.root / "room.json", json.dumps(new.to_dict(), indent=1).encode())
        return new

    def start_period(self, name: str) -> Room:
        """Start a class session: the board shows its students and runs; the one before is archived."""
        now = self.clock()

        def edit(room: Room) -> Room:
            archived = room.archived + (({"id": room.period, "name": room.period_name, "started": room.period_started,
                                          "ended": now},) if room.period else ())
            return dataclasses.replace(room, period=secrets.token_hex(4), period_started=now,
                                       period_name=plain_text(name, TITLE_MAX) or time.strftime("%d %b %H:%M"),
                                       archived=archived[-ARCHIVE_MAX:])
        return self.change(edit)

    def open_assignment(self, name: str) -> Room:
        name = plain_text(name, TITLE_MAX)
        if not name:
            raise ValueError("Give the assignment a name.")
        return self.change(lambda r: r if name in r.assignments else
                           dataclasses.replace(r, assignments=(r.assignments + (name,))[-ASSIGNMENTS_MAX:]))

    def close_assignment(self, name: str) -> Room:
        return self.change(lambda r: dataclasses.replace(r, assignments=tuple(a for a in r.assignments if a != name)))

    def push(self, label: str, *, lesson: str = "", config: TrainConfig | None = None) -> Room:
        """Send every student a lesson (its key) or a preset; None of both takes the offer back."""
        pushed = (Pushed(secrets.token_hex(4), plain_text(label, TITLE_MAX), lesson,
                         config.to_dict() if config else None) if lesson or config else None)
        return self.change(lambda r: dataclasses.replace(r, pushed=pushed))

    def set_rules(self, locks: list[str], max_epochs: int | None) -> Room:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(locks) - fields)
        if unknown:
            raise ValueError(f"not a setting: {', '.join(unknown)}")
        if max_epochs is not None and max_epochs < 1:
            raise ValueError("the epoch cap must be at least 1")
        return self.change(lambda r: dataclasses.replace(r, locks=tuple(sorted(set(locks))), max_epochs=max_epochs))

    # --- students ---------------------------------------------------------------------------------
    def _student_path(self, owner: str) -> Path:
        if not OWNER.match(owner):
            raise ValueError("not an owner id")
        return self.root / "students" / f"{owner}.json"

    def student(self, owner: str) -> dict:
        raw = read_json(self._student_path(owner), {})
        raw = raw if isinstance(raw, dict) else {}
        periods = raw.get("periods")
        return {"name": plain_text(raw.get("name"), NAME_MAX) or default_name(owner),
                "named": bool(plain_text(raw.get("name"), NAME_MAX)),
                "periods": [p for p in periods if isinstance(p, str)] if isinstance(periods, list) else []}

    def _edit_student(self, owner: str, edit: Callable[[dict], dict]) -> dict:
        path = self._student_path(owner)
        with locked(self.root / "students.lock"):
            raw = read_json(path, {})
            new = edit(raw if isinstance(raw, dict) else {})
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(new).encode())
        return new

    def set_name(self, owner: str, name: str) -> str:
        """A student's display name (plain text, capped); "" gives the default back."""
        name = plain_text(name, NAME_MAX)
        self._edit_student(owner, lambda raw: {**raw, "name": name})
        return name or default_name(owner)

    def join(self, owner: str, period: str) -> None:
        """The student is in class `period` (they show on its board)."""
        if period:
            self._edit_student(owner, lambda raw: raw if period in raw.get("periods", []) else
                               {**raw, "periods": [*raw.get("periods", []), period][-ARCHIVE_MAX:]})

    def students(self) -> dict[str, dict]:
        """Every student who ever used this store: owner -> {"name", "named", "periods"}."""
        folder = self.root / "students"
        owners = [p.stem for p in folder.glob("*.json") if OWNER.match(p.stem)] if folder.is_dir() else []
        return {owner: self.student(owner) for owner in sorted(owners)}

    # --- the teacher --------------------------------------------------------------------------------
    def is_teacher(self, owner: str) -> bool:
        """Whether `owner` typed the key that is set now (a changed key logs every teacher out)."""
        key = os.environ.get(KEY_ENV, "")
        proof = self.room().teachers.get(owner)
        return bool(key) and proof is not None and hmac.compare_digest(proof, _proof(key, owner))

    def sign_in(self, owner: str, typed: str) -> bool:
        """Check a typed teacher key in constant time, slowing repeated failures down; remember the owner as
        the teacher when it is right."""
        key = os.environ.get(KEY_ENV, "")
        _failures.wait()
        if not key or not hmac.compare_digest(typed.encode(), key.encode()):
            _failures.failed()
            return False
        _failures.reset()
        self.change(lambda r: dataclasses.replace(r, teachers={**r.teachers, owner: _proof(key, owner)}))
        return True

    def sign_out(self, owner: str) -> None:
        self.change(lambda r: dataclasses.replace(r, teachers={k: v for k, v in r.teachers.items() if k != owner}))


def key_set() -> bool:
    return bool(os.environ.get(KEY_ENV, ""))


def _proof(key: str, owner: str) -> str:
    return hmac.new(key.encode(), owner.encode(), hashlib.sha256).hexdigest()


class Backoff:
    """Repeated wrong keys wait longer each time (0.5 s, 1 s, 2 s … up to 8 s), across every session of
    this server: guessing the key by trying is slow."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep):
        self.sleep = sleep
        self.count = 0
        self._lock = threading.Lock()

    def delay(self) -> float:
        return 0.0 if self.count == 0 else min(8.0, 0.5 * 2 ** (self.count - 1))

    def wait(self) -> None:
        with self._lock:
            delay = self.delay()
        if delay:
            self.sleep(delay)

    def failed(self) -> None:
        with self._lock:
            self.count += 1

    def reset(self) -> None:
        with self._lock:
            self.count = 0


_failures = Backoff()
