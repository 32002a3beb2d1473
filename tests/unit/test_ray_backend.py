"""The Ray backend on a local Ray cluster of two nodes of one CPU: everything the page does through a Job
works, runs spread over the nodes, Ray's queue shows as waiting, and the run folder comes back to the runs
folder (the actor writes its own, on its node)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from polling import wait_until

from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data.dataset import from_splits, random_split
from vae_core.jobs import replay
from vae_core.train import Status

pytestmark = pytest.mark.slow

SHORT = TrainConfig(epochs=2, hidden=[32])
LONG = TrainConfig(epochs=200, hidden=[32])


@pytest.fixture(scope="module")
def backend(ray_cluster):
    from vae_core.jobs.cluster import RayBackend
    made = RayBackend()
    yield made
    made.close()


def test_a_run_trains_in_an_actor_and_comes_back_to_the_runs_folder(backend, tmp_path):
    job = backend.start(SHORT, owner="alex", card={"owner": "alex", "title": "in the cluster"}, runs_dir=tmp_path)
    assert job.join(180), job.view()
    view = job.view()
    assert view.status == Status.FINISHED and len(view.epoch_history) == 2 and view.snapshot is not None
    assert Path(view.run_dir).parent == tmp_path  # the server's folder, not the actor's
    saved = runs.load_run(view.run_dir)
    assert saved.meta["status"] == "finished" and len(saved.epochs) == 2 and saved.config == SHORT
    assert saved.meta["score"]["neg_elbo"] > 0
    assert (Path(view.run_dir) / "card.json").read_text().count("in the cluster") == 1
    assert [f.epoch for f in replay.load(view.run_dir).frames] == [0, 1, 2]  # the replay came back too
    model = job.model()
    assert model is not None and all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())
    assert backend.find(job.id) is job


def test_pause_resume_live_changes_weights_and_stop(backend, tmp_path):
    job = backend.start(LONG, runs_dir=tmp_path)
    assert wait_until(lambda: job.view().step > 20, timeout=120)
    job.pause()
    assert wait_until(lambda: job.view().status == Status.PAUSED, timeout=30)
    paused = job.model()  # asked of the actor while paused
    assert paused is not None
    job.set_lr(0.0123)
    job.set_beta(3.0)
    job.resume()
    assert wait_until(lambda: job.view().lr == pytest.approx(0.0123) and job.view().beta_now == 3.0, timeout=30)
    assert job.view().live_changes[0]["beta_was"] == 1.0
    job.stop()
    assert job.join(60)
    view = job.view()
    assert view.status == Status.STOPPED
    saved = runs.load_run(view.run_dir)  # the stopped run's folder came back too
    assert saved.meta["status"] == "stopped" and saved.meta["live_changes"][0]["beta"] == 3.0


def test_a_full_cluster_queues_the_job_and_the_page_says_so(backend, tmp_path):
    running = []
    for _ in range(2):  # the cluster's two CPUs, one per node; a paused run keeps its actor, so its CPU
        job = backend.start(LONG, runs_dir=tmp_path)
        assert wait_until(lambda: job.view().step > 0, timeout=120)  # noqa: B023 (waited for at once)
        job.pause()
        running.append(job)
    assert wait_until(lambda: all(job.view().status == Status.PAUSED for job in running), timeout=30)
    waiting = backend.start(SHORT, runs_dir=tmp_path)
    view = waiting.view()
    assert view.status == Status.QUEUED and view.queue_position >= 1  # Ray's queue, as the page shows it
    waiting.stop()  # never placed: it ends at once and leaves no run folder
    assert waiting.join(10) and waiting.view().status == Status.STOPPED
    assert [job.view().status for job in running] == [Status.PAUSED] * 2, [job.view().message for job in running]
    for job in running:
        job.stop()
    assert all(job.join(60) for job in running)
    assert len(list(tmp_path.iterdir())) == 2


def test_an_upload_reaches_the_actor_through_the_object_store(backend, tmp_path):
    x = np.random.default_rng(0).random((60, 1, 6, 6)).astype(np.float32)
    upload = from_splits("upload:tiny.npz", "image", torch.from_numpy(x), None, None, random_split(60, 0.2, 0.2, 0))
    config = TrainConfig(dataset="upload:tiny.npz", epochs=1, hidden=[16], batch_size=16)
    job = backend.start(config, upload, runs_dir=tmp_path)
    assert job.join(120) and job.view().status == Status.FINISHED, job.view().message
    assert math.isfinite(job.view().epoch_history[0]["val_neg_elbo"])


def test_a_lost_actor_fails_the_run_with_a_message(backend, ray_cluster, tmp_path):
    job = backend.start(LONG, runs_dir=tmp_path)
    assert wait_until(lambda: job.view().step > 0, timeout=120)
    ray_cluster.kill(job.actor)
    assert job.join(60)
    assert job.view().status == Status.FAILED and "the cluster lost the run" in job.view().message

