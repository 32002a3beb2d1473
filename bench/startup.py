"""Part 6: the CLI's start-up, and its whole process against a plain PyTorch script doing the same work.

Each figure is the wall time of a fresh `python` process (sys.executable, started from the repository),
alternating between the two sides of a ratio, the order rotated every repeat:
  start-up   `python -m vae_core list` on an empty runs folder against `python -c "import torch"`, after one
             unmeasured run of each; 3 pairs per repeat (1 in smoke runs), as a start takes about a second;
  whole run  `python -m vae_core train` on MNIST's 8,000 / 1,000 / 1,000 t10k split (MLP 784-400-20, batch 128,
             10 epochs) against bench/plain_script.py, the same work written as a user would: read the IDX
             images, train, validate every epoch, save the weights with safetensors (the CLI also scores
             the run on the test split at its end, which the plain script does not). Parameter counts are
             checked equal. Smoke runs use tiny random IDX files instead.

    python -m bench.startup [--smoke] [--repeats N]
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import common
from vae_core import runs

PLAIN_SCRIPT = Path(__file__).with_name("plain_script.py")
MODEL, SMOKE_MODEL = {"hidden": 400, "latent-dim": 20}, {"hidden": 32, "latent-dim": 4}
BATCH, EPOCHS = 128, 10
STARTS_PER_REPEAT = 3


def timed(cmd: list[str]) -> dict:
    """Wall-clock and CPU seconds (all threads) of one process run to its end, and what it printed."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return {"seconds": seconds, "cpu": _children_cpu() - cpu0, "stdout": proc.stdout}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def alternate(variants: dict, n: int) -> tuple[dict[str, list[dict]], float]:
    """n runs of every variant, interleaved, the order rotated each round so none is always first; and the
    mean % of the CPUs that other processes used during the rounds (each waits for quiet with --quiet-wait)."""
    names = list(variants)
    out: dict[str, list[dict]] = {k: [] for k in names}
    shares = []
    for r in range(n):
        common.wait_for_quiet()
        with common.OtherLoad() as load:
            for k in names[r % len(names):] + names[:r % len(names)]:
                out[k].append(variants[k]())
        shares.append(load.share)
    return out, 100 * sum(shares) / n


def startup_table(smoke: bool = False, repeats: int = 3) -> dict:
    n = repeats if smoke else repeats * STARTS_PER_REPEAT
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as empty:
        variants = {"torch": lambda: timed([sys.executable, "-c", "import torch"]),
                    "list": lambda: timed([sys.executable, "-m", "vae_core", "list", "--runs-dir", empty])}
        for run in variants.values():  # warm-up: the page cache holds torch's libraries afterwards
            run()
        times, other_cpu = alternate(variants, n)
    seconds = {k: [t["seconds"] for t in v] for k, v in times.items()}
    row = {"torch": common.stats(seconds["torch"]), "list": common.stats(seconds["list"]),
           "ratio": common.stats([a / b for a, b in zip(seconds["list"], seconds["torch"])]), "other_cpu": other_cpu}
    print(f"  start-up: list / import torch {row['ratio']['median']:.2f}", flush=True)
    columns = [("torch", 'python -c "import torch" (s)', 3), ("list", "python -m vae_core list (s)", 3),
               ("ratio", "list / import torch", 2), ("other_cpu", "other processes' CPU %", 0)]
    notes = [f"target: list within 1.25× of import torch; median [min–max] of {n} alternating pairs, after one "
             "unmeasured run of each; wall time of the whole process, started from the repository"]
    return common.table("Start-up: python -m vae_core list against importing torch", columns, [row], notes)


def cli_table(smoke: bool = False, repeats: int = 3) -> dict:
    model, batch, epochs = (SMOKE_MODEL, 64, 1) if smoke else (MODEL, BATCH, EPOCHS)
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("batch", "batch", 0), ("epochs", "epochs", 0),
               ("cli", "CLI (s)", 2), ("plain", "plain script (s)", 2), ("ratio", "CLI speed / plain", 2),
               ("cli_cpu", "CLI CPU s", 1), ("plain_cpu", "plain CPU s", 1), ("cli_val", "CLI val −ELBO", 1),
               ("plain_val", "plain val loss", 1), ("other_cpu", "other processes' CPU %", 0)]
    notes = [f"target: CLI speed / plain (plain seconds / CLI seconds, per repeat) at least 0.95; median "
             f"[min–max] of {repeats} alternating repeats; wall time of each whole process: start-up, data, "
             "training, validation every epoch, saving",
             "CLI: python -m vae_core train --dataset mnist --data-dir DIR (which also saves the run's progress "
             "every epoch); plain: bench/plain_script.py, Adam as torch builds it by default, loss.item() every step",
             "CPU s: user + system seconds of the process, all its threads"]
    title = "Whole run: python -m vae_core train against a plain PyTorch script"
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        tmp = Path(tmp)
        if smoke:
            data_dir, dataset = write_tiny_idx(tmp / "idx"), "tiny random IDX (256 / 32 / 32)"
        elif (common.MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
            data_dir, dataset = common.MNIST_DIR, "mnist (8,000 / 1,000 / 1,000)"
        else:
            notes.append(f"mnist skipped: the real MNIST test set is not at {common.MNIST_DIR}")
            return common.table(title, columns, [], notes)
        flags = [f"--{k}={v}" for k, v in model.items()] + [f"--batch-size={batch}", f"--epochs={epochs}"]

        def cli() -> dict:
            runs_dir = tempfile.mkdtemp(dir=tmp, prefix="runs-")
            out = timed([sys.executable, "-m", "vae_core", "train", "--dataset=mnist", f"--data-dir={data_dir}",
                         f"--runs-dir={runs_dir}", *flags])
            (run,) = runs.list_runs(runs_dir)
            if run.meta["status"] != "finished":
                raise RuntimeError(f"the CLI's run did not finish: {run.meta['status']}: {run.meta['message']}")
            return {**out, "val": run.epochs[-1]["val_neg_elbo"], "parameters": run.meta["parameters"]}

        def plain() -> dict:
            out = timed([sys.executable, str(PLAIN_SCRIPT), str(data_dir), str(tmp / "plain.safetensors"), *flags])
            last = json.loads(out["stdout"].splitlines()[-1])
            return {**out, "val": last["val_loss"], "parameters": last["parameters"]}

        times, other_cpu = alternate({"cli": cli, "plain": plain}, repeats)
    if {t["parameters"] for t in times["cli"] + times["plain"]} != {times["cli"][0]["parameters"]}:
        raise AssertionError("the plain script's model and the CLI's have different parameter counts")

    def stat(side, key):
        return common.stats([t[key] for t in times[side]])

    row = {"dataset": dataset, "model": "mlp {hidden}-{latent-dim}".format(**model), "batch": batch,
           "epochs": epochs, "cli": stat("cli", "seconds"), "plain": stat("plain", "seconds"),
           "ratio": common.stats([p["seconds"] / c["seconds"] for c, p in zip(times["cli"], times["plain"])]),
           "cli_cpu": stat("cli", "cpu"), "plain_cpu": stat("plain", "cpu"), "cli_val": stat("cli", "val"),
           "plain_val": stat("plain", "val"), "other_cpu": other_cpu}
    print(f"  whole run: CLI speed / plain {row['ratio']['median']:.2f}", flush=True)
    return common.table(title, columns, [row], notes)


def write_tiny_idx(folder: Path, n: int = 320) -> Path:
    """A t10k pair of n random 28×28 images and their labels, gzipped, for smoke runs."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    header = (0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
    labels = rng.integers(0, 10, n, dtype=np.uint8).tobytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress((0x801).to_bytes(4, "big")
                                                                     + n.to_bytes(4, "big") + labels))
    return folder


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "startup"] + sys.argv[1:])
