"""A run's replay: a frame per epoch, thinned and capped, saved with the run, carried by bundles, checked on load."""

import io
import zipfile

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from safetensors.numpy import save as save_arrays

from vae_core import bundles, runs
from vae_core.__main__ import main
from vae_core.config import TrainConfig
from vae_core.jobs import replay
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.jobs.snapshots import SnapshotMaker
from vae_core.maths.models import build_model
from vae_core.views.replay import replay_figure

EPOCHS = 3


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """One short digits run saved with its replay, shared by the tests below."""
    job = TrainingJob(TrainConfig(epochs=EPOCHS, batch_size=128, hidden=[32]), digits, pool=SlotPool(1),
                      runs_dir=tmp_path_factory.mktemp("runs"))
    job.run()
    assert job.status.completed, job.message
    return job.run_dir


def test_a_run_saves_a_frame_at_every_epoch_end_and_at_its_start(trained, digits):
    kept = replay.load(trained, EPOCHS)
    assert [f.epoch for f in kept.frames] == list(range(EPOCHS + 1))
    assert kept.is_image and kept.originals.dtype == np.uint8 and kept.originals.shape == (8, 1, 8, 8)
    assert kept.labels.tolist() == digits.val_labels[:replay.N_POINTS].tolist()
    first, last = kept.frames[0], kept.frames[-1]
    assert first.latent.dtype == np.float16 and first.latent.shape == (len(kept.labels), 2)
    assert first.reconstructions.shape == first.samples.shape == (8, 1, 8, 8)
    assert first.samples.dtype == np.uint8
    assert np.abs(first.latent.astype(float) - last.latent.astype(float)).mean() > 0.01  # the points moved
    assert not np.array_equal(first.reconstructions, last.reconstructions)
    # the originals are the first validation images, at the saved precision
    assert np.abs(kept.originals / 255 - digits.val[:8].numpy()).max() <= 0.5 / 255 + 1e-6


def test_the_replay_reloads_as_saved_and_stops_at_the_epochs_meta_json_records(trained):
    kept = replay.load(trained)
    again = replay.load(trained, EPOCHS)
    for a, b in zip(kept.frames, again.frames):
        assert a.epoch == b.epoch and np.array_equal(a.latent, b.latent)
        assert np.array_equal(a.reconstructions, b.reconstructions) and np.array_equal(a.samples, b.samples)
    # written before meta.json: a process killed between the two leaves a frame meta.json does not count yet
    assert [f.epoch for f in replay.load(trained, EPOCHS - 1).frames] == list(range(EPOCHS))


def test_thinning_keeps_evenly_spaced_epochs_the_first_and_the_latest():
    kept = replay.Replay(np.zeros((1, 2), np.float16), None, cap=10)
    point = np.zeros((1, 2), np.float16)
    for epoch in range(101):
        kept.add(replay.Frame(epoch, point, point, point))
        assert len(kept.frames) <= 10
        assert kept.frames[0].epoch == 0 and kept.frames[-1].epoch == epoch
    epochs = [f.epoch for f in kept.frames]
    assert epochs[:-1] == list(range(0, 100, kept.stride))  # every stride-th epoch, then the latest
    assert epochs[-1] == 100 and kept.stride == 16


@pytest.mark.parametrize("shape, epochs, frames", [((1, 8, 8), 200, 51), ((3, 100, 100), 40, 11)])
def test_a_long_run_or_large_images_stay_under_the_cap(tmp_path, shape, epochs, frames):
    """200 epochs of digits keep every 4th; 100×100 RGB images are halved, and fewer frames kept."""
    torch.manual_seed(0)
    val = torch.rand(300, *shape)
    config = TrainConfig(hidden=[8], latent_dim=4)
    model = build_model(config, shape)
    recorder = replay.Recorder(val, torch.arange(300) % 10, config.latent_dim, seed=0)
    for epoch in range(epochs + 1):
        recorder.record(model, epoch)
    recorder.save(tmp_path)
    size = (tmp_path / replay.REPLAY).stat().st_size
    assert size <= replay.MAX_FILE_BYTES
    kept = replay.load(tmp_path)
    assert len(kept.frames) == frames and kept.frames[-1].epoch == epochs
    assert max(kept.originals.shape[2:]) <= replay.MAX_SIDE


def test_a_digits_replay_of_30_epochs_is_about_70_kb(digits, tmp_path):
    """The README's figure: 31 frames of 270 points and 16 images of 8×8."""
    config = TrainConfig(hidden=[32])
    recorder = replay.Recorder(digits.val, digits.val_labels, config.latent_dim, seed=0)
    model = build_model(config, digits.sample_shape)
    for epoch in range(31):
        recorder.record(model, epoch)
    recorder.save(tmp_path)
    assert 60_000 < (tmp_path / replay.REPLAY).stat().st_size < 80_000


def test_a_bundle_carries_the_replay_and_the_import_shows_it(trained, tmp_path):
    raw = bundles.bundle(trained)
    assert f"{trained.name}/{replay.REPLAY}" in zipfile.ZipFile(io.BytesIO(raw)).namelist()
    imported = bundles.import_bundle(raw, tmp_path, owner="")
    a, b = replay.load(trained), replay.load(imported, EPOCHS)
    assert [f.epoch for f in a.frames] == [f.epoch for f in b.frames]
    assert all(np.array_equal(x.latent, y.latent) for x, y in zip(a.frames, b.frames))


def test_a_run_without_a_replay_still_loads_and_imports(trained, tmp_path):
    """Runs saved before replays."""
    raw = bundles.bundle(trained)
    files = {n: zipfile.ZipFile(io.BytesIO(raw)).read(n) for n in zipfile.ZipFile(io.BytesIO(raw)).namelist()}
    old = bundles.import_bundle(zip_of({n: b for n, b in files.items() if not n.endswith(replay.REPLAY)}),
                                tmp_path, owner="")
    assert replay.load(old) is None
    runs.load_run(old).load_model()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def arrays_of(run_dir) -> dict[str, np.ndarray]:
    return dict(replay.load(run_dir).arrays())


def forged(trained, **changes) -> bytes:
    arrays = {**arrays_of(trained), **changes}
    return save_arrays({k: v for k, v in arrays.items() if v is not None})


@pytest.mark.parametrize("forge, says", [
    (lambda t: b"\x00" * 64, "not a valid safetensors file"),
    (lambda t: b"\xff" * 8 + b"{}", "not a valid safetensors file"),
    (lambda t: b"\x00" * (replay.MAX_FILE_BYTES + 1), "larger than a replay may be"),
    (lambda t: forged(t, latent=arrays_of(t)["latent"].astype(np.float32)), "latent is float32, not float16"),
    (lambda t: forged(t, epochs=np.array([0, 2, 1, 3], np.int32)), "epochs are not increasing"),
    (lambda t: forged(t, labels=np.full(270, 5000, np.int32)), "labels must be one per latent point"),
    (lambda t: forged(t, samples=np.zeros((4, 9, 1, 8, 8), np.uint8)), "samples must be"),
    (lambda t: forged(t, originals=np.zeros((8, 1, 65, 65), np.uint8)), "originals must be at most 8"),
    (lambda t: forged(t, latent=np.zeros((4, 301, 2), np.float16)), "latent must be"),
    (lambda t: forged(t, extra=np.zeros(3, np.uint8)), "a replay holds"),
    (lambda t: forged(t, reconstructions=None), "a replay holds"),
])
def test_a_damaged_or_oversized_replay_is_refused_plainly_on_load_and_on_import(trained, tmp_path, forge, says):
    raw = forge(trained)
    run = tmp_path / "run"
    run.mkdir()
    (run / replay.REPLAY).write_bytes(raw)
    with pytest.raises(runs.RunError, match=says) as refused:
        replay.load(run)
    assert str(refused.value).startswith(f"run/{replay.REPLAY}")
    files = {n: zipfile.ZipFile(io.BytesIO(b)).read(n) for b in [bundles.bundle(trained)]
             for n in zipfile.ZipFile(io.BytesIO(b)).namelist()}
    files[f"{trained.name}/{replay.REPLAY}"] = raw
    store = tmp_path / "store"
    with pytest.raises(bundles.BundleError, match=says):
        bundles.import_bundle(zip_of(files), store, owner="")
    assert not any(store.iterdir())  # nothing left behind


def test_the_figure_animates_every_frame_on_fixed_axes(trained, digits):
    kept = replay.load(trained)
    figure = replay_figure(kept, digits.class_names, prior=True)
    go.Figure(figure)  # valid for Plotly
    frames = figure["frames"]
    assert [f["name"] for f in frames] == [str(f.epoch) for f in kept.frames]
    assert [s["label"] for s in figure["layout"]["sliders"][0]["steps"]] == [f["name"] for f in frames]
    groups = [t for t in figure["data"] if t.get("customdata") is not None]
    assert len(groups) == 10  # one per digit
    every = np.concatenate([f.latent for f in kept.frames]).astype(float)
    (x0, x1), (y0, y1) = figure["layout"]["xaxis"]["range"], figure["layout"]["yaxis"]["range"]
    assert x0 <= every[:, 0].min() and x1 >= every[:, 0].max() and y0 <= every[:, 1].min() and y1 >= every[:, 1].max()
    assert x0 <= -3 and x1 >= 3  # the prior's ±3 as well
    for frame in frames:  # each frame moves the same traces: the label groups, then the two image panels
        moved = [figure["data"][i] for i in frame["traces"]]
        assert moved[:10] == groups and [t["type"] for t in moved[10:]] == ["image", "image"]
        assert [len(d["x"]) for d in frame["data"][:10]] == [len(t["x"]) for t in groups]
    assert [d["x"] for d in frames[0]["data"][:10]] == [t["x"] for t in groups]  # the first frame as drawn
    assert frames[0]["data"][0]["x"] != frames[-1]["data"][0]["x"]
    assert frames[0]["data"][10]["source"] != frames[-1]["data"][10]["source"]


def test_the_figure_of_2d_points_draws_the_data_under_its_reconstructions(tmp_path):
    torch.manual_seed(0)
    val = torch.randn(400, 2)
    config = TrainConfig(dataset="moons", hidden=[8], latent_dim=2)
    recorder = replay.Recorder(val, None, config.latent_dim, seed=0)
    model = build_model(config, (2,))
    for epoch in range(3):
        recorder.record(model, epoch)
    recorder.save(tmp_path)
    kept = replay.load(tmp_path)
    assert kept.originals.shape == (300, 2) and kept.frames[0].samples.shape == (300, 2)
    figure = replay_figure(kept)
    go.Figure(figure)
    assert figure["data"][0]["marker"]["color"] == figure["data"][1]["marker"]["color"] == "#c7c7c7"
    assert figure["frames"][0]["traces"] == [2, 3, 4]  # the latent points, reconstructions, samples


def test_the_prior_draws_are_the_first_of_the_live_views(digits):
    """So the replay's last samples are those the Train page showed last."""
    recorder = replay.Recorder(digits.val, digits.val_labels, 4, seed=3)
    live = SnapshotMaker(digits.val, digits.val_labels, 4, seed=3)
    assert torch.equal(recorder.prior_z, live.prior_z[:replay.N_IMAGES])


def test_a_run_trained_by_the_cli_has_its_replay_too(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--hidden", "16", "--runs-dir", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    assert [f.epoch for f in replay.load(run, 1).frames] == [0, 1]
