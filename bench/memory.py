"""Part 5: memory of one training session, and how it grows with epochs.

Every epoch end (wrapping the job's History.add_epoch, on the training thread) records the process's
RSS (/proc/self/status) and the bytes of Python objects traced by tracemalloc. Tensor storage is not
a Python allocation: it shows in RSS only. Growth per epoch is the slope of a straight-line fit over
the second half of the run, where only unbounded growth would remain.

    python -m bench.memory [--smoke]
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np

from bench import common
from bench.engine import MODELS, SMOKE_MODELS
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status

MB = 2**20


def session(config: TrainConfig, data) -> dict:
    gc.collect()
    tracemalloc.start()
    rss0, py0 = common.rss_bytes(), tracemalloc.get_traced_memory()[0]
    samples: list[tuple[int, int, int]] = []  # (epoch, rss, traced) after each epoch
    job = TrainingJob(config, data, pool=SlotPool(1))
    add_epoch = job.history.add_epoch

    def sampled_add_epoch(row):
        add_epoch(row)
        samples.append((row["epoch"], common.rss_bytes(), tracemalloc.get_traced_memory()[0]))

    job.history.add_epoch = sampled_add_epoch
    t0 = time.perf_counter()
    job.start()
    job.join()
    seconds = time.perf_counter() - t0
    view = job.view()
    if view.status != Status.FINISHED:
        raise RuntimeError(f"the job did not finish: {view.status}: {view.message}")
    steps_kept, epochs_kept, steps_done = len(view.step_history), len(view.epoch_history), view.step
    peak = tracemalloc.get_traced_memory()[1]
    del job, view
    gc.collect()
    rss_after, py_after = common.rss_bytes(), tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    epochs = np.array([s[0] for s in samples], dtype=float)
    rss = np.array([s[1] - rss0 for s in samples], dtype=float)
    py = np.array([s[2] - py0 for s in samples], dtype=float)
    half = len(samples) // 2

    def slope(values):  # bytes per epoch over the second half
        if len(samples) - half < 2:
            return float("nan")
        return float(np.polyfit(epochs[half:], values[half:], 1)[0])

    return {"epochs": config.epochs, "steps": steps_done, "seconds": seconds, "rss_start_mb": rss0 / MB,
            "rss_epoch1_mb": rss[0] / MB, "rss_end_mb": rss[-1] / MB, "rss_slope_kb": slope(rss) / 1024,
            "py_epoch1_kb": py[0] / 1024, "py_end_kb": py[-1] / 1024, "py_slope_kb": slope(py) / 1024,
            "py_peak_mb": (peak - py0) / MB, "rss_released_mb": (rss_after - rss0) / MB,
            "py_released_kb": (py_after - py0) / 1024, "steps_kept": steps_kept, "epochs_kept": epochs_kept,
            "trace": [(int(e), round(r / MB, 2), round(p / 1024, 1)) for e, r, p in zip(epochs, rss, py)]}


def cases(smoke: bool):
    if smoke:
        return [("digits", "mlp 32-4", SMOKE_MODELS["mlp 32-4"].replace(batch_size=64, epochs=4))]
    mlp, conv = MODELS["mlp 400-20"], MODELS["conv 32-64-20"]
    return [("digits", "mlp 400-20", mlp.replace(batch_size=32, epochs=150)),
            ("digits", "app default (mlp 256-128-2)", TrainConfig(epochs=150)),
            ("mnist", "mlp 400-20", mlp.replace(dataset="mnist", batch_size=64, epochs=6)),
            ("mnist", "conv 32-64-20", conv.replace(dataset="mnist", batch_size=128, epochs=2))]


def run(smoke: bool = False, repeats: int = 1) -> dict:
    rows, notes, loaded = [], [], {}
    for name, model, config in cases(smoke):
        if name not in loaded:
            loaded[name] = common.load(name, smoke)
        if isinstance(loaded[name], str):
            notes.append(f"{name} skipped: {loaded[name]}")
            continue
        common.wait_for_quiet()
        row = {"dataset": name, "model": model, "batch": config.batch_size, **session(config, loaded[name])}
        rows.append(row)
        print(f"  memory {name} {model}: RSS +{row['rss_end_mb']:.1f} MB after {row['epochs']} epochs", flush=True)
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("batch", "batch", 0), ("epochs", "epochs", 0),
               ("steps", "steps", 0), ("rss_epoch1_mb", "RSS +MB after epoch 1", 1),
               ("rss_end_mb", "RSS +MB at the end", 1), ("rss_slope_kb", "RSS KB/epoch (2nd half)", 1),
               ("py_epoch1_kb", "Python +KB after epoch 1", 0), ("py_end_kb", "Python +KB at the end", 0),
               ("py_slope_kb", "Python KB/epoch (2nd half)", 2), ("py_peak_mb", "Python peak +MB", 1),
               ("rss_released_mb", "RSS +MB after the job is dropped", 1), ("steps_kept", "history points kept", 0),
               ("epochs_kept", "epoch rows", 0)]
    notes.insert(0, "growth is measured from just before the job is created; Python = tracemalloc (objects, not "
                    "tensor storage); one session per row, run one after another in one process")
    return common.table("Memory of one training session", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "memory"])
