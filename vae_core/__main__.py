"""Headless command line: `python -m vae_core train --dataset digits --beta 4`, `python -m vae_core list`,
`python -m vae_core import run.zip` (a downloaded run bundle, as a new run).

Every TrainConfig field is an option (`--latent-dim 8`, `--hidden 400 200`, `--batch-norm`).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import time

from vae_core import bundles, controls, devices, limits, runs
from vae_core.config import ConfigError, TrainConfig
from vae_core.data import DataError, load_dataset
from vae_core.jobs import replay
from vae_core.jobs.history import History
from vae_core.maths import score
from vae_core.train import Epoch, Status, Trainer, fit

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
    importing = sub.add_parser("import", help="import a downloaded run bundle (.zip) as a new run")
    importing.add_argument("bundle", help="the .zip that the Train page's 'Download the run' saved")
    importing.add_argument("--runs-dir", default=str(runs.default_runs_dir()))
    return parser


def train(args: argparse.Namespace) -> int:
    """Train on this (the main) thread, the fastest for torch; Ctrl-C stops the run, and it is saved. Then score
    it on the test split (a second Ctrl-C cuts the score's IWAE pass short)."""
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    for name, rule in controls.ignored(config).items():  # the settings the Train page would hide
        print(f"warning: --{name.replace('_', '-')} {getattr(config, name)}: "
              f"{'advised against' if rule.insist else 'not used'}: {rule.reason}", file=sys.stderr)
    trainer = Trainer(config, load_dataset(config.dataset, data_dir=args.data_dir))
    print(f"training on {devices.describe(trainer.device)} (--device {config.device})", flush=True)
    run_dir = runs.new_run_dir(args.runs_dir, config)
    runs.save_config(run_dir, config)
    history = History()
    frames = replay.Recorder(trainer.val_split, trainer.data.val_labels, config.latent_dim, config.seed)
    frames.record(trainer.model, trainer.epoch)

    def save(status: Status, message: str, best_epoch: int | None, weights, final: dict | None = None) -> None:
        meta = runs.run_meta(trainer, status, message, best_epoch, score=final)
        if weights is not None:  # frames come at epochs' ends
            frames.save(run_dir)
        runs.save_progress(run_dir, meta, history.epochs(), history.steps(), weights)

    def on_epoch(epoch: Epoch) -> None:
        history.add_epoch(epoch.row)
        frames.record(trainer.model, trainer.epoch, trainer.posterior)
        save(Status.RUNNING, "", epoch.best_epoch, epoch.weights)
        row = epoch.row
        print(f"epoch {row['epoch']:>3}/{config.epochs}  train loss {row['train_loss']:9.3f}  "
              f"val −ELBO {row['val_neg_elbo']:9.3f}  recon {row['val_recon']:9.3f}  KL {row['val_kl']:7.3f}  "
              f"active {row['val_active_units']}  lr {row['lr']:.2e}  {time.strftime('%H:%M:%S')}", flush=True)

    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        outcome = fit(trainer, on_step=history.add_step, on_epoch=on_epoch, should_stop=interrupted.is_set)
        interrupted.clear()
        final = None if outcome.status == Status.FAILED else score.final_score(trainer, interrupted.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
    message = "Stopped by Ctrl-C." if outcome.status == Status.STOPPED else outcome.message
    save(outcome.status, message, outcome.best_epoch,
         None if outcome.status == Status.FAILED else trainer.weights(), final)
    print(f"{outcome.status}: {message}")
    print(f"final score: {score.describe(final)}" + (f" ({final['seconds']:.1f} s)" if final else ""))
    print(f"saved to {run_dir}")
    return 0 if outcome.status.completed else 1


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


def import_run(args: argparse.Namespace) -> int:
    """Import a bundle as a run of nobody's and print its name; a refused bundle prints why and exits 1."""
    try:
        with open(args.bundle, "rb") as f:
            raw = f.read(limits.current().max_upload_mb * 2**20 + 1)  # one byte over the limit is refused
    except OSError as exc:
        print(f"error: {args.bundle}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(bundles.import_bundle(raw, args.runs_dir, "").name)
    except bundles.BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"train": train, "list": list_runs, "import": import_run}
    try:
        return commands[args.command](args)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
