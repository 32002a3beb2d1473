"""What the teacher's Class page shows, computed from the runs store (so every web server shows the same):
each student of the class session with their latest run, the session's runs for the rate–distortion
plane, and the summary a teacher downloads.

A run's folder holds its card from the moment it starts training, and its meta.json from its first epoch
on, rewritten at every epoch's end, pause and resume: reading them is reading the run live, whichever server
trains it.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from vae_core.classroom import cards, identity
from vae_core.config import TrainConfig
from vae_core.runs import RUN_NAME, RunError, SavedRun, load_run, started

SUMMARY_FIELDS = ("dataset", "mode", "architecture", "latent_dim", "beta", "beta_schedule", "capacity",
                  "free_bits", "recon_loss", "optimizer", "lr", "lr_schedule", "epochs", "seed")
COLOUR_BY = {"beta": "β", "latent_dim": "latent size", "lesson": "lesson"}


@dataclass(frozen=True)
class ClassRun:
    """One run of the class: its folder's card, and the run itself once its first epoch is saved."""
    name: str
    card: dict
    run: SavedRun | None  # None while it has not finished an epoch

    @property
    def status(self) -> str:
        return str(self.run.meta.get("status")) if self.run else "starting"

    @property
    def last(self) -> dict:
        return self.run.epochs[-1] if self.run and self.run.epochs else {}


def class_runs(runs_dir: str | os.PathLike, period: str) -> list[ClassRun]:
    """The runs trained in class session `period`, oldest first."""
    return _runs(runs_dir, period, lambda card: card["period"] == period)


def hand_ins(runs_dir: str | os.PathLike, period: str) -> list[ClassRun]:
    """The runs handed in during class session `period`, whenever they were trained (or imported)."""
    return _runs(runs_dir, period, lambda card: bool(card["handed_in"]) and card["handed_in"]["period"] == period)


def _runs(runs_dir, period: str, wanted) -> list[ClassRun]:
    """The run folders whose card is `wanted`, oldest first (by their config.json, written once at the start)."""
    root = Path(runs_dir)
    if not period or not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir(), key=started):
        if not (RUN_NAME.match(path.name) and path.is_dir()):
            continue
        card = cards.card(path)
        if not wanted(card):
            continue
        try:
            run = load_run(path, steps=False) if (path / "meta.json").is_file() else None
        except RunError:
            run = None
        out.append(ClassRun(path.name, card, run))
    return out


@dataclass(frozen=True)
class Row:
    """A line of the board: a student and their latest run."""
    owner: str
    name: str
    title: str
    status: str
    epoch: int
    epochs: int
    beta: float | None
    latent: int | None
    val_neg_elbo: float | None
    runs: int  # runs this student started in the session


def board(runs: list[ClassRun], students: dict[str, dict], period: str, waiting: dict[str, TrainConfig]) -> list[Row]:
    """One row per student who joined `period` or has a run in it, by name. `waiting`: owners whose newest
    run waits for a training slot on this server (it has no folder yet), with its config."""
    latest: dict[str, ClassRun] = {}
    counts: dict[str, int] = {}
    for item in runs:
        owner = item.card["owner"]
        latest[owner] = item
        counts[owner] = counts.get(owner, 0) + 1
    owners = ({o for o, s in students.items() if period in s["periods"]} | set(latest) | set(waiting)) - {""}
    rows = []
    for owner in owners:
        name = students.get(owner, {}).get("name") or identity.default_name(owner)
        if owner in waiting:
            config = waiting[owner]
            rows.append(Row(owner, name, cards.describe(config), "waiting for a training slot", 0, config.epochs,
                            config.beta if config.mode == "vae" else None, config.latent_dim, None,
                            counts.get(owner, 0)))
            continue
        item = latest.get(owner)
        if item is None:
            rows.append(Row(owner, name, "no run yet", "", 0, 0, None, None, None, 0))
            continue
        config = item.run.config if item.run else None
        rows.append(Row(owner, name, item.card["title"] or (cards.describe(config) if config else "a new run"),
                        item.status, item.run.meta.get("epochs_done", 0) if item.run else 0,
                        config.epochs if config else 0,
                        config.beta if config and config.mode == "vae" else None,
                        config.latent_dim if config else None, item.last.get("val_neg_elbo"), counts[owner]))
    return sorted(rows, key=lambda r: (r.name.lower(), r.owner))


def colour_value(item: ClassRun, by: str):
    """The setting a run is coloured by on the class's rate–distortion plane: β, latent size, or the title of
    its lesson."""
    if by == "lesson":
        from vae_core.views.lessons import LESSONS
        return next((lesson.title for lesson in LESSONS if lesson.key == item.card["lesson"]), "no lesson")
    return getattr(item.run.config, by)


def summary_csv(runs: list[ClassRun], students: dict[str, dict]) -> str:
    """One row per run: display name, title, status, the main settings and the final metrics. Never a token or
    an owner id."""
    out = io.StringIO()
    metrics = ("val_neg_elbo", "val_recon", "val_kl", "val_active_units")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "title", "status", "epochs_done", *SUMMARY_FIELDS, *metrics, "handed_in", "run"])
    for item in runs:
        if item.run is None:
            continue
        owner = item.card["owner"]
        config = item.run.config.to_dict()
        hand_in = item.card["handed_in"]
        name = students.get(owner, {}).get("name") or (identity.default_name(owner) if owner else cards.UNOWNED)
        writer.writerow([_cell(name), _cell(cards.label(item.run)),
                         item.status, item.run.meta.get("epochs_done", 0), *(config[f] for f in SUMMARY_FIELDS),
                         *(item.last.get(m, "") for m in metrics),
                         _cell(hand_in["assignment"] or "yes") if hand_in else "", item.name])
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
