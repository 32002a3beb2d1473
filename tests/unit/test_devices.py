"""Where a run trains (vae_core.devices): the setting, its resolution, and what comes back to the CPU. Without a
GPU the device code runs on the CPU; the `gpu` class trains on one and skips where torch sees none."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import devices, runs
from vae_core.__main__ import _parser, main
from vae_core.config import ConfigError, TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status, Trainer, fit

GPUS = [name for name in ("cuda", "mps") if name in devices.available()]
# The first five step losses of TrainConfig(epochs=1, hidden=[32], seed=3) on digits with one torch thread,
# recorded before devices existed: a deliberate change of the maths or of the data updates them.
BEFORE_DEVICES = [44.16646957397461, 44.49431228637695, 43.717586517333984, 43.202301025390625, 42.816070556640625]
SNAPSHOT_ARRAYS = ("originals", "reconstructions", "samples", "latent_mu", "latent_logvar", "kl_per_dim")


def _trained(config: TrainConfig, data) -> tuple[Trainer, list[float]]:
    trainer, losses = Trainer(config, data), []
    fit(trainer, on_step=lambda row: losses.append(row["loss"]))
    return trainer, losses


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name].cpu(), b[name].cpu()) for name in a)


@pytest.mark.skipif(bool(GPUS), reason="auto picks a GPU here")
def test_cpu_and_auto_train_as_before_devices_existed(digits):
    config = TrainConfig(epochs=1, hidden=[32], seed=3)
    auto, auto_losses = _trained(config, digits)
    cpu, cpu_losses = _trained(config.replace(device="cpu"), digits)
    assert auto.device == cpu.device == torch.device("cpu")
    assert cpu.val_split is digits.val and cpu.train_split is digits.train  # on the CPU nothing is copied
    assert auto_losses == cpu_losses and auto_losses[:5] == pytest.approx(BEFORE_DEVICES, rel=1e-5)
    assert _same_weights(auto.weights(), cpu.weights())


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_a_device_that_is_not_here_is_refused_in_plain_words(name, digits):
    if name in GPUS:
        pytest.skip(f"{name} is here")
    with pytest.raises(ConfigError, match=rf"^device: {name} was asked for, but this (machine|torch build) has no "
                                          r".+; choose auto or cpu$"):
        devices.resolve(name)
    with pytest.raises(ConfigError, match=f"device: {name} was asked for"):
        Trainer(TrainConfig(hidden=[8], device=name), digits)


@pytest.mark.parametrize("present,picked", [({"cuda", "mps"}, "cuda"), ({"mps"}, "mps"), (set(), "cpu")])
def test_auto_picks_cuda_then_mps_then_the_cpu(present, picked, monkeypatch):
    monkeypatch.setattr(devices, "_present", lambda name: name in present)
    assert devices.resolve("auto") == torch.device(picked)
    assert devices.available() == ["cpu", *(name for name in ("cuda", "mps") if name in present)]
    assert devices.resolve("cpu") == torch.device("cpu")


def test_devices_in_words_and_which_runs_ask_a_cluster_for_a_gpu():
    assert devices.describe(torch.device("cpu")) == "the CPU"
    assert devices.describe(torch.device("mps")) == "Apple's MPS"
    assert [devices.wants_gpu(TrainConfig(device=name)) for name in ("auto", "cpu", "cuda", "mps")] == \
        [False, False, True, False]


def test_the_device_setting_round_trips_through_json_and_the_cli(tmp_path, capsys):
    config = TrainConfig(device="cpu")
    assert TrainConfig.from_json(config.to_json()) == config and TrainConfig().device == "auto"
    assert TrainConfig.from_dict({"beta": 2.0}).device == "auto"  # runs saved before the setting existed
    with pytest.raises(ConfigError, match="^device: must be one of auto, cpu, cuda, mps; got 'tpu'$"):
        TrainConfig(device="tpu")
    assert _parser().parse_args(["train", "--device", "mps"]).device == "mps"
    assert main(["train", "--device", "cpu", "--epochs", "1", "--hidden", "16", "--runs-dir", str(tmp_path)]) == 0
    assert "training on the CPU (--device cpu)" in capsys.readouterr().out
    (run_dir,) = tmp_path.iterdir()
    assert runs.load_run(run_dir).config.device == "cpu"


@pytest.mark.skipif("cuda" in GPUS, reason="CUDA is here")
def test_the_cli_refuses_cuda_without_one_plainly(tmp_path, capsys):
    assert main(["train", "--device", "cuda", "--runs-dir", str(tmp_path)]) == 2
    assert "error: device: cuda was asked for, but" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before a run folder was made


def test_snapshots_checkpoints_and_saved_weights_are_on_the_cpu_and_load_on_it(digits, tmp_path):
    job = TrainingJob(TrainConfig(epochs=1, hidden=[16], device="cpu"), digits, pool=SlotPool(1), runs_dir=tmp_path)
    job.run()
    assert job.status == Status.FINISHED and job.state().device == "the CPU"
    assert all(isinstance(getattr(job.snapshot, name), np.ndarray) for name in SNAPSHOT_ARRAYS)
    assert all(t.device.type == "cpu" for t in job.trainer.weights().values())
    run_dir = Path(job.view().run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "device": "cuda"}))  # as a GPU machine saves it
    run = runs.load_run(run_dir)  # opens on this CPU-only machine all the same
    assert run.config.device == "cuda" and devices.of(run.load_model()).type == "cpu"


def test_a_job_on_a_gpu_leaves_the_cpu_threads_alone_and_gives_pages_a_cpu_copy(digits, monkeypatch):
    """The paths a GPU run takes in a job, run here on the CPU: its trainer says "cuda", its model stays put."""
    job = TrainingJob(TrainConfig(epochs=1, hidden=[8]), digits, pool=SlotPool(1))
    job.trainer = Trainer(job.config, digits)
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    job._fit_threads()
    assert set_to  # on the CPU: its share of the cores
    assert job.model() is job.trainer.model
    set_to.clear()
    job._threads, job.trainer.device = 0, torch.device("cuda")
    job._fit_threads()
    assert set_to == []
    copy = job.model()
    assert copy is not job.trainer.model and not copy.training
    assert _same_weights(copy.state_dict(), job.trainer.model.state_dict())


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cuda", "mps"])
class TestOnAGpu:
    @pytest.fixture(autouse=True)
    def _here(self, name):
        if name not in GPUS:
            pytest.skip(f"no {name} device here")

    def test_a_short_run_trains_scores_and_comes_back_to_the_cpu(self, name, digits, tmp_path):
        config = TrainConfig(epochs=2, hidden=[64], device=name, dropout=0.1, augment=True, adv_weight=0.1)
        job = TrainingJob(config, digits, pool=SlotPool(1), runs_dir=tmp_path)
        job.run()
        assert job.status == Status.FINISHED, job.message
        assert job.trainer.device.type == name and devices.of(job.trainer.model).type == name
        assert job.trainer.val_split.device.type == name and job.trainer.generator.device.type == name
        assert job.state().device == devices.describe(job.trainer.device) != "the CPU"
        epochs = job.history.epochs()
        assert math.isfinite(epochs[-1]["val_neg_elbo"]) and epochs[-1]["val_neg_elbo"] < epochs[0]["train_loss"]
        assert job.score and math.isfinite(job.score["neg_iwae"]) and job.snapshot.quality is not None
        assert all(isinstance(getattr(job.snapshot, field), np.ndarray) for field in SNAPSHOT_ARRAYS)
        assert devices.of(job.model()).type == "cpu"
        model = runs.load_run(Path(job.view().run_dir)).load_model()
        assert _same_weights(model.state_dict(), job.trainer.weights())

    def test_a_gpu_run_starts_from_the_cpu_runs_weights(self, name, digits):
        config = TrainConfig(hidden=[32], seed=5)
        cpu, gpu = Trainer(config.replace(device="cpu"), digits), Trainer(config.replace(device=name), digits)
        assert _same_weights(cpu.weights(), gpu.weights())
        row = gpu.train_step(next(gpu.batches()))
        assert math.isfinite(row["loss"])
