import json
import zipfile
import io

import pytest
import torch

from vae_core import bundles, runs
from vae_core.__main__ import main
from vae_core.config import TrainConfig
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status, Trainer


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, digits):
    runs_dir = tmp_path_factory.mktemp("runs")
    job = TrainingJob(TrainConfig(epochs=3, latent_dim=3), digits, runs_dir=runs_dir, pool=SlotPool(1)).start()
    assert job.join(30) and job.view().status == Status.FINISHED, job.view().message
    return job


def test_a_run_folder_holds_every_file_and_loads_back_without_pickle(saved_run, digits):
    run = runs.load_run(saved_run.view().run_dir)
    assert run.config == saved_run.config and run.meta["status"] == "finished"
    assert run.meta["message"] == "Finished." and run.meta["epochs_done"] == 3
    assert run.meta["steps_done"] == saved_run.view().step and run.meta["best_epoch"] == saved_run.best_epoch
    assert [int(r["epoch"]) for r in run.epochs] == [1, 2, 3]
    assert run.epochs[-1]["val_neg_elbo"] == pytest.approx(saved_run.view().epoch_history[-1]["val_neg_elbo"])
    model = run.load_model()
    x = digits.val[:8]
    with torch.no_grad():
        assert torch.allclose(model.encode(x)[0], saved_run.trainer.model.eval().encode(x)[0])


def test_bundle_zips_the_run_files(saved_run):
    names = zipfile.ZipFile(io.BytesIO(bundles.bundle(saved_run.view().run_dir))).namelist()
    assert {n.split("/")[1] for n in names} == {*runs.FILES, "card.json", "replay.safetensors"}


def test_a_pickle_payload_in_the_weights_never_runs(saved_run, tmp_path):
    import pickle
    import shutil
    from pathlib import Path

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "bad-run"
    shutil.copytree(saved_run.view().run_dir, bad)
    (bad / "weights.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(runs.RunError, match="weights.safetensors"):
        runs.load_run(bad).load_model()
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["missing config", "corrupt config", "truncated weights", "bad meta"])
def test_damaged_runs_are_refused_by_file_name(saved_run, tmp_path, damage):
    import shutil
    bad = tmp_path / "run"
    shutil.copytree(saved_run.view().run_dir, bad)
    if damage == "missing config":
        (bad / "config.json").unlink()
    elif damage == "corrupt config":
        (bad / "config.json").write_text('{"beta": "lots"}')
    elif damage == "truncated weights":
        data = (bad / "weights.safetensors").read_bytes()
        (bad / "weights.safetensors").write_bytes(data[: len(data) // 2])
    else:
        (bad / "meta.json").write_text("[]")
    with pytest.raises(runs.RunError):
        runs.load_run(bad).load_model()


def test_run_names_from_users_cannot_leave_the_runs_folder(tmp_path):
    for name in ("../etc", "/abs", "a/b", "..", ".hidden", ""):
        with pytest.raises(runs.RunError):
            runs.run_path(tmp_path, name)
    assert runs.run_path(tmp_path, "20260101-000000-digits-abc123") == tmp_path / "20260101-000000-digits-abc123"


def test_cli_trains_saves_and_lists(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--beta", "4", "--hidden", "64", "32",
                 "--batch-norm", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/2" in out and "epoch   2/2" in out and "finished: Finished." in out
    (run_dir,) = list(tmp_path.iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["beta"] == 4.0 and config["hidden"] == [64, 32] and config["batch_norm"] is True
    assert main(["list", "--runs-dir", str(tmp_path)]) == 0
    assert run_dir.name in capsys.readouterr().out


def test_cli_ctrl_c_stops_the_run_and_saves_it_as_stopped(tmp_path, capsys, monkeypatch):
    import os
    import signal

    train_step = Trainer.train_step

    def interrupted_at_step_5(self, x):
        if self.step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C on the terminal: the CLI trains on this (the main) thread
        return train_step(self, x)
    monkeypatch.setattr(Trainer, "train_step", interrupted_at_step_5)
    handler = signal.getsignal(signal.SIGINT)
    assert main(["train", "--epochs", "3", "--hidden", "16", "--runs-dir", str(tmp_path)]) == 1
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    out = capsys.readouterr().out
    assert "stopped: Stopped by Ctrl-C." in out
    (run_dir,) = list(tmp_path.iterdir())
    run = runs.load_run(run_dir)
    assert run.meta["status"] == "stopped" and run.meta["message"] == "Stopped by Ctrl-C."
    assert 6 <= run.meta["steps_done"] <= 7 and run.meta["epochs_done"] == 0
    assert run.load_model() is not None  # the weights it had are saved


def test_cli_reports_bad_settings_plainly(capsys):
    assert main(["train", "--beta", "-3"]) == 2
    assert "beta" in capsys.readouterr().err
