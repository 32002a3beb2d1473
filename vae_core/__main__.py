"""Headless command line: `python -m vae_core train --dataset digits --beta 4`, `python -m vae_core list`.

Every TrainConfig field is an option (`--latent-dim 8`, `--hidden 400 200`, `--batch-norm`).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import time

from vae_core import runs
from vae_core.config import ConfigError, TrainConfig
from vae_core.data import DataError
from vae_core.job import FINISHED, TrainingJob
from vae_core.slots import SlotPool

_TYPES = {"int": int, "float": float, "str": str}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_core", description="VAE Lab without a browser.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model and save the run")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.type == "bool":
            train.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif f.type == "list[int]":
            train.add_argument(flag, type=int, nargs="+", default=default, metavar="N")
        else:
            train.add_argument(flag, type=_TYPES[f.type], default=default, metavar=f.type.upper())
    train.add_argument("--runs-dir", default=str(runs.default_runs_dir()), help="where the run is saved")
    train.add_argument("--data-dir", default=None, help="folder with MNIST-style IDX files")
    listing = sub.add_parser("list", help="list saved runs")
    listing.add_argument("--runs-dir", default=str(runs.default_runs_dir()))
    return parser


def train(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**values)
    job = TrainingJob(config, data_dir=args.data_dir, runs_dir=args.runs_dir, pool=SlotPool(1))
    printed = [0]

    def print_while_training() -> None:
        while not job.join(0.2):
            printed[0] = _print_epochs(job, printed[0])

    def run_here(run) -> None:  # the job has started: the printer can wait for its end
        printer.start()
        run()

    # The job trains on this (the main) thread, the fastest for torch; Ctrl-C stops it, and the run is saved.
    printer = threading.Thread(target=print_while_training, name="vae-lab-printer", daemon=True)
    previous = signal.signal(signal.SIGINT, lambda *_: job.stop())
    try:
        job.start(run_here)
        printer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    _print_epochs(job, printed[0])
    view = job.view()
    print(f"{view.status}: {view.message}")
    if view.run_dir:
        print(f"saved to {view.run_dir}")
    return 0 if view.status == FINISHED else 1


def _print_epochs(job: TrainingJob, printed: int) -> int:
    rows = job.history.epochs()
    for row in rows[printed:]:
        print(f"epoch {int(row['epoch']):>3}/{job.config.epochs}  train loss {row['train_loss']:9.3f}  "
              f"val −ELBO {row['val_neg_elbo']:9.3f}  recon {row['val_recon']:9.3f}  KL {row['val_kl']:7.3f}  "
              f"active {int(row['val_active_units'])}  lr {row['lr']:.2e}  {time.strftime('%H:%M:%S')}",
              flush=True)
    return len(rows)


def list_runs(args: argparse.Namespace) -> int:
    found = runs.list_runs(args.runs_dir)
    if not found:
        print(f"no saved runs in {args.runs_dir}")
    for run in found:
        last = run.epochs[-1] if run.epochs else {}
        elbo = f"{last['val_neg_elbo']:.2f}" if "val_neg_elbo" in last else "-"
        print(f"{run.name}  {run.config.dataset:<14} {run.meta.get('status', '?'):<9} "
              f"epochs {run.meta.get('epochs_done', 0):>3}  val −ELBO {elbo}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return train(args) if args.command == "train" else list_runs(args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
