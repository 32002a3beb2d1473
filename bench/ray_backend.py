"""Part 9: the Ray backend against the process backend, on a local Ray of 2 CPUs on this machine.

For a short run of the default model (`TrainConfig(epochs=5)`), `repeats` times each: the seconds from
`backend.start` to the first history point, with a cold actor (started for the run) and a warm one (started
ahead by the backend), and from `start` to the end of the run (its folder copied back); the process backend's
worker beside the server is the reference. The ratio is Ray's whole run over the process backend's.

    python -m bench.ray_backend [--smoke] [--repeats N]
"""

from __future__ import annotations

import tempfile
import time

from bench import common
from vae_core.config import TrainConfig

CONFIG = TrainConfig(epochs=5)


def _timed(backend, config: TrainConfig, runs_dir: str) -> tuple[float, float]:
    started = time.perf_counter()
    job = backend.start(config, runs_dir=runs_dir)
    while not job.view().step_history:
        time.sleep(0.01)
    first = time.perf_counter() - started
    assert job.join(300), "the run did not end"
    return first, time.perf_counter() - started


def run(smoke: bool = False, repeats: int = 3) -> dict:
    import ray

    from vae_core.jobs import cluster
    from vae_core.jobs.process import ProcessBackend

    config = CONFIG.replace(epochs=1) if smoke else CONFIG
    runs_dir = tempfile.mkdtemp()
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=cluster.NAMESPACE,
             log_to_driver=False, _node_ip_address="127.0.0.1", runtime_env=cluster.RUNTIME_ENV)
    try:
        rows = []
        for label, warm in (("Ray, cold actor", 0), ("Ray, warm actor", 1)):
            cluster.WARM = warm
            backend = cluster.RayBackend()
            firsts, wholes = [], []
            for _ in range(repeats):
                time.sleep(10 if warm and not smoke else 0)  # the warm actor, started by the last run, is ready
                common.wait_for_quiet()
                first, whole = _timed(backend, config, runs_dir)
                firsts.append(first)
                wholes.append(whole)
            backend.close()
            rows.append({"backend": label, "first": common.stats(firsts), "whole": common.stats(wholes)})
        backend = ProcessBackend()
        _timed(backend, config, runs_dir)  # the worker's first run pays its imports
        firsts, wholes = [], []
        for _ in range(repeats):
            common.wait_for_quiet()
            first, whole = _timed(backend, config, runs_dir)
            firsts.append(first)
            wholes.append(whole)
        backend.close()
        rows.append({"backend": "process (reference)", "first": common.stats(firsts), "whole": common.stats(wholes)})
    finally:
        ray.shutdown()
    reference = rows[-1]["whole"]["median"]
    for row in rows:
        row["ratio"] = row["whole"]["median"] / reference
    columns = [("backend", "backend", 0), ("first", "to the first point (s)", 2), ("whole", "whole run (s)", 2),
               ("ratio", "whole run / process backend", 2)]
    notes = [f"{config.epochs} epochs of the default model on digits; a local Ray of 2 CPUs on 127.0.0.1 "
             "(vae_core/jobs/cluster.py keeps VAE_LAB_RAY_WARM actors started ahead while a CPU is free)."]
    return common.table("The Ray backend", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "ray"])
