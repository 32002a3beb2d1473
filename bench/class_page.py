"""Part 7: the Class page's server-side cost: one redraw of its live board, timed in this process.

A temporary runs store holds a class session of 30 students with 3 runs of 30 epochs each (90 run folders as
a job leaves them: config.json, metrics.csv with every column a real run writes, meta.json, card.json; no
weights, which the page never reads), the students' files and room.json. One redraw is what
pages/classroom.py's board fragment computes before Streamlit serialises it:

- board: `board.class_runs` (reads every run folder of the session), `Classroom.students`, `board.board`;
- figure: the runs as plain data and `class_plane.class_rate_distortion_figures` (coloured by β), then what
  st.plotly_chart does with each (a validated plotly Figure, as JSON);
- both, one after the other, as the page does.

Each repeat times `SAMPLES` redraws (after one unmeasured one) and reports their mean, 95th percentile and
slowest in ms; the table gives the median and [min–max] of those over the repeats. The files are in the page
cache, as on a server whose board redraws every few seconds. Page loads with the Class page open are another
measurement (not here).

    python -m bench.class_page [--smoke] [--repeats N]
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

import plotly.io
import plotly.tools

from bench import common
from vae_core import runs
from vae_core.classroom import board, cards, identity
from vae_core.classroom.room import Classroom
from vae_core.config import TrainConfig
from vae_core.views import class_plane

STUDENTS, RUNS_EACH, EPOCHS, SAMPLES = 30, 3, 30, 50
SMOKE = (3, 2, 3, 3)
BETAS = (0.5, 1.0, 2.0, 4.0, 8.0)
LATENTS = (2, 8, 16)


def _rows(beta: float, epochs: int, steps_per_epoch: int = 40) -> list[dict]:
    """Metric rows shaped like a real run's on the digits: reconstruction falls, KL settles lower for a larger β."""
    out = []
    for e in range(1, epochs + 1):
        settle = 1 - math.exp(-e / 6)
        kl = (14 / (1 + beta)) * settle + 0.3
        recon = 45 - 20 * settle * (1.2 - min(beta, 8) / 10)
        out.append({"epoch": e, "beta_now": beta, "lr": 0.002, "step": e * steps_per_epoch,
                    "train_kl": kl * 1.03, "train_loss": recon * 1.01 + beta * kl, "train_recon": recon * 1.01,
                    "val_active_units": 2, "val_kl": kl, "val_loss": recon + beta * kl,
                    "val_neg_elbo": recon + kl, "val_recon": recon})
    return out


def make_store(root: Path, students: int = STUDENTS, runs_each: int = RUNS_EACH, epochs: int = EPOCHS) -> str:
    """A runs store with a class session of `students` who trained `runs_each` finished runs of `epochs` epochs;
    returns the session's id."""
    classroom = Classroom(root)
    period = classroom.start_period("bench").period
    for s in range(students):
        owner = identity.owner_of(identity.new_token())
        classroom.set_name(owner, f"Student {s + 1:02d}")
        classroom.join(owner, period)
        for r in range(runs_each):
            beta = BETAS[(s + r) % len(BETAS)]
            config = TrainConfig(beta=beta, latent_dim=LATENTS[r % len(LATENTS)], epochs=epochs)
            run_dir = runs.new_run_dir(root, config)
            runs.save_config(run_dir, config)
            meta = {"status": "finished", "message": "Finished.", "dataset": "digits", "sample_shape": [1, 8, 8],
                    "parameters": 4420, "epochs_done": epochs, "steps_done": 40 * epochs, "best_epoch": epochs,
                    "live_changes": [], "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}
            runs.save_progress(run_dir, meta, _rows(beta, epochs), [], None)
            cards.write_card(run_dir, cards.new_card(owner, f"β sweep: β = {beta:g}", period))
    return period


def redraw_board(root: Path, period: str) -> tuple[list[board.ClassRun], dict, list[board.Row]]:
    classroom = Classroom(root)
    class_runs = board.class_runs(root, period)
    students = classroom.students()
    return class_runs, students, board.board(class_runs, students, period, {})


def build_figures(class_runs: list[board.ClassRun], students: dict, by: str = "beta") -> str:
    """The plane's figures as the page builds them, then as st.plotly_chart makes them its message: a validated
    plotly Figure, as JSON (Streamlit 1.67 validates every figure it is given, dicts too)."""
    plane = [{"label": f"{students.get(item.card['owner'], {}).get('name', '')} · {item.card['title']}",
              "dataset": item.run.config.dataset, "epochs": item.run.epochs, "colour": board.colour_value(item, by)}
             for item in class_runs if item.run is not None and item.run.epochs]
    charts = class_plane.class_rate_distortion_figures(plane, board.COLOUR_BY[by], log_colour=True)
    return "".join(plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(figure, validate_figure=True),
                                     validate=False) for figure in charts.values())


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def time_redraws(root: Path, period: str, samples: int) -> dict[str, list[float]]:
    """ms of each part of `samples` redraws (after one unmeasured)."""
    redraw_board(root, period)
    out = {"board": [], "figure": [], "both": []}
    for _ in range(samples):
        t0 = time.perf_counter()
        class_runs, students, rows = redraw_board(root, period)
        t1 = time.perf_counter()
        payload = build_figures(class_runs, students)
        t2 = time.perf_counter()
        out["board"].append(1000 * (t1 - t0))
        out["figure"].append(1000 * (t2 - t1))
        out["both"].append(1000 * (t2 - t0))
    out["rows"], out["runs"], out["kb"] = len(rows), len(class_runs), len(payload) / 1000
    return out


def run(smoke: bool = False, repeats: int = 3) -> dict:
    students, runs_each, epochs, samples = SMOKE if smoke else (STUDENTS, RUNS_EACH, EPOCHS, SAMPLES)
    per_repeat = []
    with tempfile.TemporaryDirectory(prefix="bench-class-") as folder:
        root = Path(folder) / "runs"
        period = make_store(root, students, runs_each, epochs)
        for _ in range(repeats):
            common.wait_for_quiet()
            with common.OtherLoad() as load:
                timed = time_redraws(root, period, samples)
            timed["other"] = 100 * load.share
            per_repeat.append(timed)
    first = per_repeat[0]
    rows = []
    for part, what in (("board", "board: read the session's runs, the students, the rows"),
                       ("figure", "figure: the rate–distortion plane per dataset, as st.plotly_chart sends it"),
                       ("both", "one redraw of the board (both)")):
        rows.append({"part": what, "mean": common.stats(statistics.fmean(t[part]) for t in per_repeat),
                     "p95": common.stats(_p95(t[part]) for t in per_repeat),
                     "max": common.stats(max(t[part]) for t in per_repeat),
                     "other": common.stats(t["other"] for t in per_repeat)})
    print(f"  class page: one redraw {rows[-1]['mean']['median']:.1f} ms mean, {rows[-1]['p95']['median']:.1f} ms "
          f"p95 ({first['runs']} runs, {first['rows']} students)", flush=True)
    columns = [("part", "part", 0), ("mean", "mean (ms)", 1), ("p95", "p95 (ms)", 1), ("max", "slowest (ms)", 1),
               ("other", "other processes' CPU (%)", 0)]
    notes = [f"{students} students × {runs_each} runs of {epochs} epochs in a temporary runs store ({first['runs']} "
             f"run folders, {first['rows']} board rows); {samples} redraws per repeat, {repeats} repeats: median "
             "[min–max] over the repeats of each repeat's mean, p95 and slowest",
             f"the figures sent: {first['kb']:.0f} KB of JSON per redraw, coloured by β on a log scale"]
    return common.table("Class page: one redraw of the live board", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    import sys
    main(["--only", "class-page", *sys.argv[1:]])
