""""Show the code": the generated plain-PyTorch script reproduces the engine's validation −ELBO per epoch, for every
lesson's runs and for settings that reach every TrainConfig option, and never imports vae_core."""

import ast
import io
import re
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vae_core.config import TrainConfig
from vae_core.data import Dataset, idx, load_dataset
from vae_core.data.idx import IDX_DATASETS
from vae_core.script import SCRIPT, download, download_name, training_script
from vae_core.script.data import NPZ
from vae_core.train import Status, Trainer, fit
from vae_core.views.lessons import LESSONS

MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist-t10k"
# Epochs of each lesson run: enough for the schedules, the optimiser state and batch norm to matter; one on larger
# sets (shapes: 6,000 images), where each epoch has many steps already.
LESSON_EPOCHS = {"digits": 2}


def _unique(configs):
    seen = {}
    for config in configs:
        seen.setdefault(config.to_json(), config)
    return list(seen.values())


LESSON_RUNS = _unique(config for lesson in LESSONS for _, config in lesson.runs)
_SMALL = dict(dataset="digits", hidden=[32, 16], latent_dim=3, epochs=2)
# Settings no lesson uses, so that every option's template runs at least once (every field but device, which
# the script leaves on the CPU).
OPTIONS = [
    TrainConfig(architecture="conv", hidden=[8, 16], batch_norm=True, dropout=0.2, activation="leaky_relu",
                latent_dim=3, epochs=2),
    TrainConfig(**{**_SMALL, "mode": "ae"}, recon_loss="mixed", mixed_weight=0.3, normalize_inputs=True,
                activation="elu"),
    TrainConfig(**_SMALL, recon_loss="mse", mse_sigma=0.3, activation="gelu", free_bits=0.1, beta=1.5,
                beta_schedule="cyclical", beta_cycles=2, beta_cycle_ratio=0.7),
    TrainConfig(**_SMALL, capacity=True, capacity_max=4.0, capacity_gamma=5.0, capacity_ramp_epochs=0.5,
                activation="tanh"),
    TrainConfig(**_SMALL, optimizer="sgd", lr=0.05, momentum=0.8, nesterov=True, lr_schedule="step",
                lr_step_epochs=1, lr_gamma=0.3, grad_clip=1.0, l1=1e-4, batch_size=50),
    TrainConfig(**_SMALL, optimizer="rmsprop", lr=1e-3, weight_decay=1e-3, lr_schedule="exponential", lr_gamma=0.7),
    TrainConfig(**_SMALL, optimizer="adamw", weight_decay=0.1, lr_schedule="cosine", lr_warmup_epochs=0.5),
    # the plateau halves the learning rate after epoch 3, and early stopping ends the run at epoch 5 (of 5)
    TrainConfig(**{**_SMALL, "epochs": 5}, lr_schedule="plateau", lr_patience=0, lr_gamma=0.5, lr_warmup_epochs=0.5,
                early_stopping=True, patience=2, min_delta=0.2, lr=0.02),
    TrainConfig(**_SMALL, lr_warmup_epochs=1.0, augment=True, aug_flip=True, aug_rotation=20.0, aug_zoom=0.2,
                aug_shift=0.15, adv_weight=1.0, beta_schedule="warmup", beta_warmup_epochs=1.5, seed=7),
    TrainConfig(dataset="moons", recon_loss="mse", hidden=[32], latent_dim=2, epochs=2, batch_size=64),
    TrainConfig(dataset="mnist", architecture="conv", hidden=[4, 8, 8], latent_dim=4, epochs=1, batch_size=256),
]


def _data(config):
    """The dataset of a run: MNIST from the real test files here; no other IDX set (which would download)."""
    if config.dataset in IDX_DATASETS and (config.dataset != "mnist" or not MNIST_DIR.is_dir()):
        pytest.skip(f"{config.dataset} is not here (only MNIST's test files, at {MNIST_DIR})")
    return load_dataset(config.dataset, data_dir=MNIST_DIR if config.dataset in IDX_DATASETS else None)


def engine_history(config, epochs):
    """The validation −ELBO of the engine's first `epochs` epochs (fewer when the run ends before), and the step
    its loss diverged at (None when it did not)."""
    rows = []
    outcome = fit(Trainer(config, _data(config)), on_epoch=lambda epoch: rows.append(epoch.row["val_neg_elbo"]),
                  should_stop=lambda: len(rows) >= epochs)
    diverged = re.search(r"at step (\d+)", outcome.message) if outcome.status == Status.DIVERGED else None
    return rows, diverged and int(diverged[1])


def _files(config, folder: Path) -> Path:
    """The download unpacked into `folder`; the script's path."""
    data = _data(config)
    (name, _), blob = download_name(data), download(config, data)
    if name.endswith(".zip"):
        zipfile.ZipFile(io.BytesIO(blob)).extractall(folder)
    else:
        (folder / name).write_bytes(blob)
    return folder / SCRIPT


def script_history(config, epochs, folder, monkeypatch):
    """The generated script run in this process (a fresh namespace) for `epochs` epochs: its validation −ELBOs, and
    the step its loss diverged at."""
    path = _files(config, folder)
    argv = [str(path), "--epochs", str(epochs)]
    if config.dataset in IDX_DATASETS:
        argv += ["--data", str(MNIST_DIR)]
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", argv)
    namespace = runpy.run_path(str(path), run_name="__main__")
    return namespace["history"], namespace["diverged_at"]


def _matches(script, engine):
    (ours, our_divergence), (theirs, their_divergence) = script, engine
    assert our_divergence == their_divergence  # the lesson with too high a learning rate diverges in its first epoch
    assert len(ours) == len(theirs)
    assert ours == pytest.approx(theirs, rel=0.01)


def _label(config):
    return ",".join(f"{k}={v}" for k, v in config.to_dict().items() if v != getattr(TrainConfig(), k)) or "default"


@pytest.mark.parametrize("config", LESSON_RUNS, ids=map(_label, LESSON_RUNS))
def test_each_lesson_run_gives_the_engines_losses(config, tmp_path, monkeypatch):
    epochs = LESSON_EPOCHS.get(config.dataset, 1)
    _matches(script_history(config, epochs, tmp_path, monkeypatch), engine_history(config, epochs))


@pytest.mark.parametrize("config", OPTIONS, ids=map(_label, OPTIONS))
def test_every_option_gives_the_engines_losses(config, tmp_path, monkeypatch):
    engine = engine_history(config, config.epochs)
    assert engine[0] and engine[1] is None
    _matches(script_history(config, config.epochs, tmp_path, monkeypatch), engine)


def test_the_option_table_reaches_every_setting():
    defaults = TrainConfig()
    changed = {name for config in [*OPTIONS, *LESSON_RUNS] for name, value in config.to_dict().items()
               if value != getattr(defaults, name)}
    assert set(defaults.to_dict()) - changed == {"device"}


def test_the_script_runs_alone_without_vae_core(tmp_path):
    """In a fresh `python3 -I` (no vae_core importable) from a folder of its own, on the unpacked download."""
    config = OPTIONS[-2]  # moons: the script and its .npz
    _files(config, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SCRIPT, NPZ])
    done = subprocess.run([sys.executable, "-I", SCRIPT, "--epochs", "1"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("epoch   1")
    assert float(line.split("validation −ELBO")[1].split()[0]) == pytest.approx(engine_history(config, 1)[0][0],
                                                                                  rel=0.01)


@pytest.mark.parametrize("config", [*OPTIONS, *LESSON_RUNS], ids=map(_label, [*OPTIONS, *LESSON_RUNS]))
def test_the_script_imports_only_torch_numpy_and_data_readers(config):
    text = training_script(config, _data(config))
    modules = {alias.name.split(".")[0] for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ImportFrom)}
    assert modules <= {"argparse", "math", "copy", "gzip", "os", "numpy", "torch", "sklearn"}
    assert "vae_core" not in text
    assert max(len(line) for line in text.splitlines()) <= 120


def test_a_default_script_is_short_and_holds_only_what_its_settings_need(digits):
    text = training_script(TrainConfig(), digits)
    assert len(text.splitlines()) < 150
    for absent in ("scheduler", "augment", "Dropout", "critic", "BatchNorm", "clip_grad", "early", "beta_at",
                   "capacity", "clamp_min(0", "input_mean", "--data", "gzip"):
        assert absent not in text, absent
    warm = training_script(TrainConfig(beta_schedule="warmup", lr_schedule="cosine", batch_norm=True), digits)
    for present in ("KL warm-up", "Cosine annealing", "nn.BatchNorm1d(256)", "Batch norm"):
        assert present in warm, present
    # a learning-rate warm-up shorter than half a step is no warm-up, in the engine as in the script
    assert "LinearLR" in training_script(TrainConfig(lr_warmup_epochs=0.02), digits)  # 0.8 steps: 1
    assert "lr_scheduler" not in training_script(TrainConfig(lr_warmup_epochs=0.01), digits)  # 0.4 steps: 0


def test_an_upload_travels_as_npz_and_its_name_stays_a_comment(digits, tmp_path, monkeypatch):
    name = 'upload:x"""\nimport os; os.system("echo hi")  # ../../evil.zip'
    data = Dataset(name, "image", digits.train[:300], digits.val[:100], digits.test[:10], None, None, None, None)
    config = TrainConfig(dataset=name, hidden=[16], latent_dim=2, epochs=2, batch_size=64)
    assert download_name(data) == ("train_vae.zip", "application/zip")
    with zipfile.ZipFile(io.BytesIO(download(config, data))) as archive:
        assert archive.namelist() == [SCRIPT, NPZ]  # fixed names: the upload's never becomes a path
        archive.extractall(tmp_path)
    text = (tmp_path / SCRIPT).read_text()
    assert not [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Attribute) and node.attr == "system"]
    assert "os.system(_echo hi_)" in ast.get_docstring(ast.parse(text)).splitlines()[0]  # a title, not code
    rows = []
    fit(Trainer(config, data), on_epoch=lambda epoch: rows.append(epoch.row["val_neg_elbo"]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [SCRIPT])
    assert runpy.run_path(SCRIPT, run_name="__main__")["history"] == pytest.approx(rows, rel=0.01)


def test_mnist_with_its_train_files_splits_as_the_engine(tmp_path, monkeypatch):
    """The train pair's seeded 10 % validation (the t10k-only split runs in OPTIONS), from raw (not gzip) files."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f"the real MNIST test set is not at {MNIST_DIR}")
    folder = tmp_path / "mnist"
    folder.mkdir()
    for part, magic in (("images", 0x803), ("labels", 0x801)):
        stem = idx.FILES[("t10k", part)]
        array = idx.read_idx(MNIST_DIR / f"{stem}.gz", part)
        (folder / stem).write_bytes(_idx_bytes(magic, array[:1000]))
        (folder / idx.FILES[("train", part)]).write_bytes(_idx_bytes(magic, array[1000:4000]))
    config = TrainConfig(dataset="mnist", hidden=[32], latent_dim=2, epochs=1, batch_size=256)
    data = load_dataset("mnist", data_dir=folder)
    assert (len(data.train), len(data.val)) == (2700, 300)
    rows = []
    fit(Trainer(config, data), on_epoch=lambda epoch: rows.append(epoch.row["val_neg_elbo"]))
    (tmp_path / SCRIPT).write_text(training_script(config, data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [SCRIPT])  # --data defaults to ./mnist
    assert runpy.run_path(SCRIPT, run_name="__main__")["history"] == pytest.approx(rows, rel=0.01)


def _idx_bytes(magic: int, array) -> bytes:
    return b"".join(n.to_bytes(4, "big") for n in (magic, *array.shape)) + array.tobytes()
