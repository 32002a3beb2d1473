"""A fork through the backends the app uses: the parent's state travels to the worker process (over its pipe) or
to a Ray actor (through the object store), and the fork's run folder, checkpoints included, lands in the runs
folder the server reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from vae_core import checkpoints, forks, runs
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status

SMALL = TrainConfig(epochs=3, hidden=[32], batch_size=128)


@pytest.fixture(scope="module")
def parent(digits, tmp_path_factory) -> runs.SavedRun:
    job = TrainingJob(SMALL, digits, runs_dir=tmp_path_factory.mktemp("runs"), pool=SlotPool(1)).start()
    assert job.join(120)
    return runs.load_run(job.run_dir)


def check_fork(job, parent: runs.SavedRun, runs_dir: Path) -> None:
    assert job.join(180), job.view()
    view = job.view()
    assert view.status == Status.FINISHED, view.message
    assert [row["epoch"] for row in view.epoch_history] == [1, 2, 3, 4]
    assert view.epoch_history[0]["val_neg_elbo"] == pytest.approx(parent.epochs[0]["val_neg_elbo"])
    assert view.live_changes[0]["fork"]["epoch"] == 2 and view.live_changes[0]["beta"] == 2.0
    assert Path(view.run_dir).parent == runs_dir
    saved = runs.load_run(view.run_dir)
    assert saved.meta["fork"]["parent"] == parent.name and len(saved.epochs) == 4
    assert checkpoints.kept(saved.path, 4) == [3, 4]  # its own epochs only: the parent's stay the parent's


def test_a_fork_trains_in_the_worker_process(parent, tmp_path):
    from vae_core.jobs.process import ProcessBackend
    backend = ProcessBackend()
    try:
        config = SMALL.replace(beta=2.0, epochs=4)
        job = backend.start(config, owner="tab-1", runs_dir=tmp_path, fork=forks.prepare(parent, config, 2))
        check_fork(job, parent, tmp_path)
    finally:
        backend.close()


@pytest.mark.slow
def test_a_fork_trains_in_a_ray_actor_and_its_checkpoints_come_back(parent, ray_cluster, tmp_path):
    from vae_core.jobs.cluster import RayBackend
    backend = RayBackend()
    try:
        config = SMALL.replace(beta=2.0, epochs=4)
        job = backend.start(config, owner="alex", runs_dir=tmp_path, fork=forks.prepare(parent, config, 2))
        check_fork(job, parent, tmp_path)
    finally:
        backend.close()
