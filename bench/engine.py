"""Part 1 (and 2): training throughput of vae_core against a plain PyTorch loop.

For every dataset × model × batch size, in one process, alternating, `repeats` times:
  fit           vae_core.train.fit on a Trainer, on the main thread with torch's default thread count, as the
                CLI runs it: the engine's loop with no host (no job, no threads, no slots, no snapshots),
                its step rows kept in a History as the CLI keeps them (no run folder);
  job           TrainingJob(config, data, pool=SlotPool(1)) run on the main thread, as the worker process
                runs a job started while it has none: the thread count it picks (`_thread_count`), live
                history, throttled UI snapshots, a validation pass and a weights copy per epoch;
  plain         bench/plain.py's loop on the main thread with torch's default thread count and torch's
                default Adam (what a user's script gets);
  plain fused   the same loop with fused Adam, the optimiser kernel the engine uses, so fit / plain fused
                is the loop's own overhead and job / plain fused the engine's with its host;
  worker        the same job as the app runs it: a RemoteJob in a worker process (vae_core.jobs.process,
                started once per row, as a server starts one), timed on the worker's clock from the job's
                start to its end (the data's trip through the pipe before, and the last update's after,
                excluded).
Every side trains the same epochs on the same in-memory tensors and includes building the model; none
saves a run folder. The time the job spends in SnapshotMaker.take is recorded too (part 2: the snapshots'
share).

    python -m bench.engine [--smoke] [--repeats N] [--out FILE]
"""

from __future__ import annotations

import time

import torch

from bench import common, plain
from vae_core.config import TrainConfig
from vae_core.jobs.history import History
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.process import ProcessBackend, RemoteJob
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.snapshots import SnapshotMaker
from vae_core.train import Status, Trainer, fit

MODELS = {
    "mlp 400-20": TrainConfig(hidden=[400], latent_dim=20),
    "conv 32-64-20": TrainConfig(architecture="conv", hidden=[32, 64], latent_dim=20),
}
SMOKE_MODELS = {
    "mlp 32-4": TrainConfig(hidden=[32], latent_dim=4),
    "conv 4-8-4": TrainConfig(architecture="conv", hidden=[4, 8], latent_dim=4),
}
DATASETS = ("digits", "mnist", "fashion-mnist")
BATCHES = (64, 128, 256)
RUN_SECONDS = 1.2  # target length of one run; at least one whole epoch


class SnapshotTimer:
    """Adds up the time spent in SnapshotMaker.take while active (the job calls it on its thread)."""

    def __enter__(self):
        self.seconds, self.count = 0.0, 0
        self._original = original = SnapshotMaker.take

        def timed(maker, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(maker, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.count += 1

        SnapshotMaker.take = timed
        return self

    def __exit__(self, *exc):
        SnapshotMaker.take = self._original


def run_fit(config: TrainConfig, data) -> dict:
    """Wall-clock seconds of `fit` on this (the main) thread with torch's default threads, as the CLI runs it."""
    torch.set_num_threads(common.DEFAULT_THREADS)  # a job before may have set fewer
    history = History()
    t0 = time.perf_counter()
    outcome = fit(Trainer(config, data), on_step=history.add_step,
                  on_epoch=lambda epoch: history.add_epoch(epoch.row))
    seconds = time.perf_counter() - t0
    if outcome.status != Status.FINISHED:
        raise RuntimeError(f"fit did not finish: {outcome.status}: {outcome.message}")
    return {"seconds": seconds}


def run_job(config: TrainConfig, data) -> dict:
    """Wall-clock seconds of the job run on this (the main) thread, and the time it spent on snapshots."""
    job = TrainingJob(config, data, pool=SlotPool(1))
    with SnapshotTimer() as snaps:
        t0 = time.perf_counter()
        job.run()
        seconds = time.perf_counter() - t0
    state = job.state()
    if state.status != Status.FINISHED:
        raise RuntimeError(f"the job did not finish: {state.status}: {state.message}")
    return {"seconds": seconds, "snapshot_seconds": snaps.seconds, "snapshots": snaps.count}


def start_remote(backend: ProcessBackend, config: TrainConfig, data) -> RemoteJob:
    """A run of `config` on `data` in the backend's worker process, as ProcessBackend.start makes one, but
    with no run folder (as the other sides save none)."""
    worker = backend.worker()
    job = RemoteJob(config, data, owner="bench", worker=worker)
    worker.submit(job, data, None)
    return job


def run_remote(config: TrainConfig, data, backend: ProcessBackend) -> dict:
    """Seconds the job took in the worker process, by the worker's clock."""
    job = start_remote(backend, config, data)
    job.join()
    view = job.view()
    if view.status != Status.FINISHED:
        raise RuntimeError(f"the worker's job did not finish: {view.status}: {view.message}")
    return {"seconds": view.elapsed}


def epochs_for(config: TrainConfig, data, smoke: bool) -> int:
    """Whole epochs that take about RUN_SECONDS, from a short timed run of the plain loop."""
    n = 3 if smoke else 8
    rate = n * config.batch_size / plain.steps(config, data, common.DEFAULT_THREADS, n)
    return 1 if smoke else max(1, min(50, round(RUN_SECONDS * rate / len(data.train))))


def measure(name: str, data, model: str, base: TrainConfig, batch: int, repeats: int, smoke: bool) -> dict:
    config = base.replace(dataset=name, batch_size=batch)
    common_params = plain.check_same_architecture(config, data.sample_shape)
    config = config.replace(epochs=epochs_for(config, data, smoke))
    common.wait_for_quiet()
    with common.OtherLoad() as load:
        backend = ProcessBackend()  # inside: its worker's CPU time counts as this benchmark's once it has ended
        try:
            variants = {
                "fit": lambda: run_fit(config, data),
                "job": lambda: run_job(config, data),
                "main": lambda: plain.train(config, data, common.DEFAULT_THREADS),
                "fused": lambda: plain.train(config, data, common.DEFAULT_THREADS, fused=True),
                "trainer": lambda: run_remote(config, data, backend),
            }
            names = list(variants)
            runs: dict[str, list[dict]] = {k: [] for k in names}
            run_remote(config.replace(epochs=1), data, backend)  # the worker's first job warms it up
            for r in range(repeats):
                for k in names[r % len(names):] + names[:r % len(names)]:  # rotate the order so none is always first
                    runs[k].append(variants[k]())
        finally:
            backend.close()
    samples = config.epochs * len(data.train)

    def rate(k):
        return [samples / run["seconds"] for run in runs[k]]

    def ratio(a, b):
        return [rb["seconds"] / ra["seconds"] for ra, rb in zip(runs[a], runs[b])]

    return {"dataset": name, "model": model, "params": common_params, "batch": batch, "epochs": config.epochs,
            "fit": common.stats(rate("fit")), "job": common.stats(rate("job")), "main": common.stats(rate("main")),
            "fused": common.stats(rate("fused")), "trainer": common.stats(rate("trainer")),
            "ratio_trainer": common.stats(ratio("trainer", "main")), "ratio_main": common.stats(ratio("job", "main")),
            "ratio_fused": common.stats(ratio("job", "fused")), "ratio_fit": common.stats(ratio("fit", "fused")),
            "snapshot_share": common.stats([100 * r["snapshot_seconds"] / r["seconds"] for r in runs["job"]]),
            "snapshots": common.stats([r["snapshots"] for r in runs["job"]]), "other_cpu": 100 * load.share}


def run(smoke: bool = False, repeats: int = 3, datasets=DATASETS) -> dict:
    models = SMOKE_MODELS if smoke else MODELS
    batches = (64,) if smoke else BATCHES
    rows, notes = [], []
    for name in (("digits",) if smoke else datasets):
        data = common.load(name, smoke)
        if isinstance(data, str):
            notes.append(f"{name} skipped: {data}")
            continue
        for model, base in models.items():
            for batch in batches:
                rows.append(measure(name, data, model, base, batch, repeats, smoke))
                print(f"  throughput {name} {model} batch {batch}: job/plain {rows[-1]['ratio_main']['median']:.2f}",
                      flush=True)
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("batch", "batch", 0), ("epochs", "epochs", 0),
               ("fit", "fit samples/s", 0), ("job", "job samples/s", 0),
               ("main", f"plain ({common.DEFAULT_THREADS} thr) samples/s", 0),
               ("fused", "plain fused Adam samples/s", 0), ("trainer", "worker process job samples/s", 0),
               ("ratio_main", "job / plain", 2), ("ratio_trainer", "worker job / plain", 2),
               ("ratio_fused", "job / plain fused Adam", 2), ("ratio_fit", "fit / plain fused Adam", 2),
               ("snapshot_share", "snapshots % of job", 1),
               ("other_cpu", "other processes' CPU %", 0)]
    notes += [f"median [min–max] of {repeats} alternating repeats; ratios are per repeat; each run trains whole "
              "epochs (about a second of work) and includes building the model and a validation pass per epoch",
              "fit: vae_core.train.fit on the main thread with torch's default threads, as the CLI runs it: the "
              "engine's loop with no host (no job, threads, slots or snapshots), its rows kept in a History",
              "job: TrainingJob.run on the main thread (as the worker process runs a job started while it has none), "
              "with the thread count it picks, live history and UI snapshots",
              "plain: hand-built nn.Sequential model, same architecture (parameter counts checked), Adam, "
              "randperm batches, BCE+KL, loss.item() every step, on the main thread with torch's default threads",
              "plain fused Adam: the same loop with Adam(fused=True), as the engine builds it: fit / plain fused Adam "
              "is the loop's own overhead, job / plain fused Adam the engine's with its host, job / plain adds what "
              "the fused kernel saves",
              "worker process job: the job as the app runs it, a RemoteJob in the process backend's worker (the same "
              "TrainingJob, on the worker's main thread), on the worker's clock; the worker's first job is an "
              "unmeasured warm-up; no side saves a run folder"]
    title = "Training throughput: fit and TrainingJob (history + snapshots live) vs a plain PyTorch loop"
    return common.table(title, columns, rows, notes)


def snapshot_table(throughput: dict) -> dict:
    """Part 2, from the job runs above: the share of the job's time spent taking UI snapshots."""
    rows = [{k: r[k] for k in ("dataset", "model", "batch", "epochs", "snapshots", "snapshot_share")}
            for r in throughput["rows"]]
    columns = [("dataset", "dataset", 0), ("model", "model", 0), ("batch", "batch", 0), ("epochs", "epochs", 0),
               ("snapshots", "snapshots per run", 0), ("snapshot_share", "% of job time in SnapshotMaker.take", 1)]
    notes = ["target: at most 5 % whatever the dataset; measured by wrapping SnapshotMaker.take in the job runs "
             "of the throughput table (one forced snapshot at the start, one per epoch end, one at the end, and "
             "throttled ones in between)"]
    return common.table("Share of training time spent on UI snapshots", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "engine"])
