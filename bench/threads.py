"""Part 1, thread effects: the plain loop's step rate by intra-op thread count, on the main thread
and on a worker thread (where a job trains when another has the trainer process's main thread), across model
and batch sizes; and on a worker thread while one core is busy with something else (a spinning process
standing in for a second job or a Streamlit rerun, as on a classroom server).

Timed are training steps only (no epochs, no validation), so the table isolates what the thread and
its thread count do to the step. The main thread has run torch before the worker runs (its OpenMP
team exists), as in the trainer process, where the main thread trains the first job.

    python -m bench.threads [--smoke] [--repeats N]
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench import common, plain
from bench.engine import MODELS, SMOKE_MODELS

CASES = [("digits", "mlp 400-20", 64), ("digits", "mlp 400-20", 256),
         ("mnist", "mlp 400-20", 64), ("mnist", "mlp 400-20", 256),
         ("digits", "conv 32-64-20", 64), ("digits", "conv 32-64-20", 256),
         ("mnist", "conv 32-64-20", 64), ("mnist", "conv 32-64-20", 256)]
SMOKE_CASES = [("digits", "mlp 32-4", 64)]
STEP_SECONDS = 0.4  # target length of one timed run


class BusyCore:
    """A child process spinning on one core while active."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.1)  # let it start spinning
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def thread_counts() -> list[int]:
    n = common.DEFAULT_THREADS
    return sorted({1, min(2, n), n})


def measure(name: str, data, model: str, batch: int, repeats: int, smoke: bool) -> dict:
    config = (SMOKE_MODELS if smoke else MODELS)[model].replace(batch_size=batch)
    if smoke:
        n = 3
    else:
        per_step = plain.steps(config, data, 1, 5) / 5
        n = max(5, round(STEP_SECONDS / per_step))
    common.wait_for_quiet()
    variants = [(where, t) for where in ("main", "worker", "busy") for t in thread_counts()]
    rates: dict[tuple[str, int], list[float]] = {v: [] for v in variants}
    with common.OtherLoad() as load:
        for r in range(repeats):
            for where, t in variants[r % len(variants):] + variants[:r % len(variants)]:
                if where == "main":
                    seconds = plain.steps(config, data, t, n)
                elif where == "worker":
                    seconds = common.in_thread(plain.steps, config, data, t, n)
                else:
                    with BusyCore():
                        seconds = common.in_thread(plain.steps, config, data, t, n)
                rates[(where, t)].append(n * batch / seconds)
    row = {"dataset": name, "model": model, "batch": batch, "steps": n, "other_cpu": 100 * load.share}
    for (where, t), values in rates.items():
        row[f"{where}_{t}"] = common.stats(values)
    top = max(thread_counts())
    if top > 1:
        for where in ("main", "worker", "busy"):
            row[f"{where}_gain"] = common.stats([b / a for a, b in zip(rates[(where, 1)], rates[(where, top)])])
    return row


def run(smoke: bool = False, repeats: int = 3) -> dict:
    rows, notes, loaded = [], [], {}
    for name, model, batch in (SMOKE_CASES if smoke else CASES):
        if name not in loaded:
            loaded[name] = common.load(name, smoke)
            if isinstance(loaded[name], str):
                notes.append(f"{name} skipped: {loaded[name]}")
        if isinstance(loaded[name], str):
            continue
        rows.append(measure(name, loaded[name], model, batch, repeats, smoke))
        print(f"  threads {name} {model} batch {batch}", flush=True)
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("batch", "batch", 0)]
    for where, label in (("main", "main"), ("worker", "worker"), ("busy", "worker, 1 core busy")):
        columns += [(f"{where}_{t}", f"{label} {t} thr samples/s", 0) for t in thread_counts()]
    top = max(thread_counts())
    if top > 1:
        columns += [("main_gain", f"main {top}/1 thr", 2), ("worker_gain", f"worker {top}/1 thr", 2),
                    ("busy_gain", f"worker, 1 core busy, {top}/1 thr", 2)]
    columns.append(("other_cpu", "other processes' CPU %", 0))
    notes.insert(0, f"training steps only; median [min–max] of {repeats} alternating repeats; "
                    "the gain columns are the speed-up of the top thread count over one thread, per repeat")
    return common.table("Thread effects: plain-loop steps by thread and intra-op thread count", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "threads"])
