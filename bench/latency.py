"""Part 3: time from job.start() to the first history point and to the first UI snapshot.

The moments are stamped where they happen, on the training thread (History.add_step of the job's
history, SnapshotMaker.take), not by polling. "data loaded by the job" passes no data, as the app
does, so the job loads the dataset itself (from load_dataset's cache after the first time). The
"fresh process" row is the first job of a new Python process, with vae_core already imported.

    python -m bench.latency [--smoke] [--repeats N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

from bench import common
from bench.engine import DATASETS, MODELS, SMOKE_MODELS
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.process import ProcessBackend
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.snapshots import SnapshotMaker

APP_DEFAULT = "app default (mlp 256-128-2, batch 32)"


def first_times(config: TrainConfig, data, data_dir=None) -> dict:
    """Seconds from start() to the first history point and to the first snapshot of one job."""
    stamps: dict[str, float] = {}
    job = TrainingJob(config, data, data_dir=data_dir, pool=SlotPool(1))
    add_step = job.history.add_step

    def stamped_add_step(row):
        add_step(row)
        stamps.setdefault("point", time.perf_counter())

    job.history.add_step = stamped_add_step
    take = SnapshotMaker.take

    def stamped_take(maker, *args, **kwargs):
        snap = take(maker, *args, **kwargs)
        stamps.setdefault("snapshot", time.perf_counter())
        return snap

    SnapshotMaker.take = stamped_take
    try:
        t0 = time.perf_counter()
        job.start()
        while "point" not in stamps and job.alive:
            time.sleep(0.002)
        job.stop()
        job.join()
    finally:
        SnapshotMaker.take = take
    if "point" not in stamps:
        raise RuntimeError(f"the job ended without a history point: {job.view().message}")
    return {"point": stamps["point"] - t0, "snapshot": stamps["snapshot"] - t0}


def first_remote_point(backend: ProcessBackend) -> float:
    """Seconds from starting a run on the process backend (app default on digits, as the app starts it) to
    its first history point in the server's handle (a RemoteJob): what the Train page can draw."""
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as runs_dir:
        t0 = time.perf_counter()
        job = backend.start(TrainConfig(), runs_dir=runs_dir)
        while not job.view().step_history and job.alive:
            time.sleep(0.002)
        seen = time.perf_counter() - t0
        job.stop()
        job.join()
        view = job.view()
    if not view.step_history:
        raise RuntimeError(f"the job ended without a history point: {view.message}")
    return seen


def cases(smoke: bool):
    """(dataset name, model label, config, data is passed) to time."""
    if smoke:  # the same kinds of rows, on a tiny model
        tiny = SMOKE_MODELS["mlp 32-4"].replace(batch_size=64)
        return [("digits", "mlp 32-4", tiny, False), ("digits", "mlp 32-4", tiny, True)]
    out = [("digits", APP_DEFAULT, TrainConfig(), False), ("digits", APP_DEFAULT, TrainConfig(), True)]
    for name in DATASETS:
        for model, base in MODELS.items():
            out.append((name, model, base.replace(dataset=name, batch_size=128), True))
    return out


def fresh_process() -> dict:
    """first_times of the first job in a new process, app default on digits, the job loading the data."""
    code = ("import json; from bench.latency import first_times; from vae_core.config import TrainConfig; "
            "print(json.dumps(first_times(TrainConfig(), None)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=common.REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(smoke: bool = False, repeats: int = 3) -> dict:
    rows, notes, loaded = [], [], {}
    fresh = [fresh_process() for _ in range(repeats)]
    rows.append({"dataset": "digits", "model": APP_DEFAULT, "how": "fresh process, data loaded by the job",
                 "point": common.stats([f["point"] for f in fresh]),
                 "snapshot": common.stats([f["snapshot"] for f in fresh])})
    backend = ProcessBackend()  # a server starts its worker with itself: up and warm by the first Start
    time.sleep(2 if smoke else 10)
    try:
        seen = [first_remote_point(backend) for _ in range(repeats)]
    finally:
        backend.close()
    rows.append({"dataset": "digits", "model": APP_DEFAULT, "point": common.stats(seen), "snapshot": None,
                 "how": "worker process, as the app: seen by the server (the first of these is the worker's "
                        f"first job, {2 if smoke else 10} s after it started)"})
    for name, model, config, pass_data in cases(smoke):
        if name not in loaded:
            loaded[name] = common.load(name, smoke)
            if isinstance(loaded[name], str):
                notes.append(f"{name} skipped: {loaded[name]}")
        data = loaded[name]
        if isinstance(data, str):
            continue
        common.wait_for_quiet()
        times = [first_times(config, data if pass_data else None) for _ in range(repeats)]
        rows.append({"dataset": name, "model": model, "how": "data passed" if pass_data else "data loaded by the job",
                     "point": common.stats([t["point"] for t in times]),
                     "snapshot": common.stats([t["snapshot"] for t in times])})
        print(f"  latency {name} {model}: first point {rows[-1]['point']['median']:.3f} s", flush=True)
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("how", "how", 0),
               ("snapshot", "first snapshot (s)", 3), ("point", "first history point (s)", 3)]
    notes.insert(0, f"target: first history point within 1 s on digits; median [min–max] of {repeats} jobs; "
                    "model rows use batch 128")
    return common.table("Time from job.start() to the first snapshot and the first history point",
                        columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "latency"])
