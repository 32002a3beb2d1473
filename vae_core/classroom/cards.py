"""A run's card (card.json in its folder): who owns it, its title and note, its hand-in and feedback.

The job writes the card once, when it makes the run folder; after that only the actions here change it,
each checking who asks: a student changes their own runs, the teacher any run and alone writes
feedback. Runs without a card (saved before cards, or from the command line) belong to nobody: they
show as "unowned" and only the teacher may change them. A deleted run moves to the store's `.trash`
folder in one rename, so a crash leaves it either in place or in the trash.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from vae_core.classroom.identity import NOTE_MAX, OWNER, TITLE_MAX, plain_text
from vae_core.classroom.room import locked, read_json
from vae_core.config import TrainConfig
from vae_core.runs import SavedRun, run_path, write_atomic

CARD = "card.json"
TRASH = ".trash"
UNOWNED = "unowned"


class NotAllowed(PermissionError):
    """Someone asked to change a run that is not theirs."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a student's owner id, and whether they proved the teacher key."""
    owner: str
    teacher: bool = False


def describe(config: TrainConfig) -> str:
    """A run's settings in a few words: "digits · VAE · z2 · β 4"; the title of a run nobody named."""
    return (f"{config.dataset.removeprefix('upload:')} · {config.mode.upper()} · z{config.latent_dim}"
            + (f" · β {config.beta:g}" if config.mode == "vae" else ""))


def new_card(owner: str, title: str, period: str = "", data: str = "", lesson: str = "") -> dict:
    """The card a job writes with its run folder: owner id ("" for nobody), title, class period, the
    content hash of the uploaded data it trained on ("" for a built-in dataset), and the key of the lesson
    it is a run of ("" for none)."""
    return {"owner": owner if OWNER.match(owner or "") else "", "title": plain_text(title, TITLE_MAX),
            "period": period, "data": data, "lesson": lesson, "note": "", "handed_in": None, "feedback": ""}


def card(run: SavedRun | Path) -> dict:
    """The run's card, cleaned: unknown or malformed fields dropped, text capped."""
    path = run.path if isinstance(run, SavedRun) else Path(run)
    raw = read_json(path / CARD, {})
    raw = raw if isinstance(raw, dict) else {}
    hand_in = raw.get("handed_in")
    hand_in = ({"assignment": plain_text(hand_in.get("assignment"), TITLE_MAX), "at": str(hand_in.get("at", ""))[:40],
                "period": str(hand_in.get("period", ""))[:20]} if isinstance(hand_in, dict) else None)
    owner = raw.get("owner") if isinstance(raw.get("owner"), str) and OWNER.match(raw["owner"]) else ""
    return {"owner": owner, "title": plain_text(raw.get("title"), TITLE_MAX),
            "period": str(raw.get("period", ""))[:20], "data": str(raw.get("data", ""))[:64],
            "lesson": str(raw.get("lesson", ""))[:40],
            "note": plain_text(raw.get("note"), NOTE_MAX, lines=True), "handed_in": hand_in,
            "feedback": plain_text(raw.get("feedback"), NOTE_MAX, lines=True)}


def write_card(run_dir: Path, content: dict) -> None:
    write_atomic(run_dir / CARD, json.dumps(content, indent=1).encode())


def title(run: SavedRun) -> str:
    return card(run)["title"] or describe(run.config)


def label(run: SavedRun) -> str:
    """The run's title, where it was forked from, then the live changes it had, then how it ended if it did not
    complete: "β = 8 · β 1 → 4 at epoch 19 · stopped at epoch 20"."""
    return " · ".join([title(run), *forked(run.meta), *live_changes(run.meta), *ending(run.meta)])


def forked(meta: dict) -> list[str]:
    """Where a fork came from, in words (["forked from β = 1 at epoch 10"]); [] for a run that is no fork."""
    fork = meta.get("fork")
    if not isinstance(fork, dict) or not isinstance(fork.get("epoch"), int):
        return []
    return [f"forked from {plain_text(fork.get('title') or fork.get('parent'), TITLE_MAX)} at epoch {fork['epoch']}"]


def ending(meta: dict) -> list[str]:
    """How a run ended, in words, when it did not train to its end ([] while it runs or once completed)."""
    status, epochs = meta.get("status"), meta.get("epochs_done")
    if status not in ("stopped", "diverged", "failed"):
        return []
    return [f"{status} at epoch {epochs}" if isinstance(epochs, int) and epochs > 0 else f"{status} before epoch 1"]


def change_words(change: dict) -> list[str]:
    """One live change in words, from the setting it replaced where that was saved: ["β 1 → 4"]."""
    out = []
    for name, shown in (("beta", "β"), ("lr", "LR")):
        new, was = change.get(name), change.get(f"{name}_was")
        if isinstance(new, (int, float)):
            out.append(f"{shown} {was:g} → {new:g}" if isinstance(was, (int, float)) else f"{shown} → {new:g}")
    return out


def live_changes(meta: dict) -> list[str]:
    """A run's live changes in words, each with the epoch it was made in."""
    out = []
    changes = meta.get("live_changes") if isinstance(meta.get("live_changes"), list) else []
    epochs, steps = meta.get("epochs_done") or 0, meta.get("steps_done") or 0
    per_epoch = steps / epochs if epochs and steps else None
    for change in changes[:20]:
        if not isinstance(change, dict):
            continue
        step = change.get("step", 0) if isinstance(change.get("step"), int) else 0
        when = f"epoch {int(step // per_epoch) + 1}" if per_epoch else f"step {step:,}"
        out.extend(f"{words} at {when}" for words in change_words(change))
    return out


def owned_by(run: SavedRun, owner: str) -> bool:
    return bool(owner) and card(run)["owner"] == owner


def _check(run_dir: Path, actor: Actor) -> dict:
    current = card(run_dir)
    if not actor.teacher and (not current["owner"] or current["owner"] != actor.owner):
        raise NotAllowed("This run is not yours: only its owner and the teacher can change it."
                         if current["owner"] else "This run belongs to nobody: only the teacher can change it.")
    return current


def _exists(run_dir: Path) -> None:
    if not (run_dir / "meta.json").is_file():
        raise FileNotFoundError(f"{run_dir.name}: no such run (deleted already?)")


def _edit(run_dir: Path, actor: Actor, changes: dict) -> dict:
    _exists(run_dir)  # before the lock, which would make the folder
    with locked(run_dir / ".card.lock"):
        _exists(run_dir)
        new = {**_check(run_dir, actor), **changes}
        write_card(run_dir, new)
    return new


def rename(run_dir: Path, actor: Actor, new_title: str) -> dict:
    new_title = plain_text(new_title, TITLE_MAX)
    if not new_title:
        raise ValueError("A title cannot be empty.")
    return _edit(run_dir, actor, {"title": new_title})


def annotate(run_dir: Path, actor: Actor, note: str) -> dict:
    return _edit(run_dir, actor, {"note": plain_text(note, NOTE_MAX, lines=True)})


def hand_in(run_dir: Path, actor: Actor, assignment: str = "", period: str = "") -> dict:
    """Hand the run in (for `assignment`, one the teacher opened, or none) in class session `period`, where
    the teacher finds it whenever it was trained; handing in again replaces it."""
    return _edit(run_dir, actor, {"handed_in": {"assignment": plain_text(assignment, TITLE_MAX),
                                                "at": time.strftime("%Y-%m-%d %H:%M"), "period": period}})


def withdraw(run_dir: Path, actor: Actor) -> dict:
    return _edit(run_dir, actor, {"handed_in": None})


def give_feedback(run_dir: Path, actor: Actor, text: str) -> dict:
    if not actor.teacher:
        raise NotAllowed("Only the teacher writes feedback.")
    return _edit(run_dir, actor, {"feedback": plain_text(text, NOTE_MAX, lines=True)})


def trash(runs_dir: str | os.PathLike, name: str, actor: Actor) -> Path:
    """Move the run to the trash (one rename); the trash is emptied by the teacher, or after VAE_LAB_KEEP_DAYS
    days by the retention rule. Until then the folder is whole on the server's disk."""
    run_dir = run_path(runs_dir, name)
    _exists(run_dir)
    with locked(run_dir / ".card.lock"):
        _exists(run_dir)
        _check(run_dir, actor)
        bin_dir = Path(runs_dir) / TRASH
        bin_dir.mkdir(exist_ok=True)
        target = bin_dir / name
        os.rename(run_dir, target)  # fails rather than overwrite: a run of that name is in the trash already
    os.utime(target)  # its days in the trash start now
    return target
