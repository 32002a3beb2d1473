"""Explore, Compare and Learn in AppTest: they render, and their widgets drive what they show."""

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image
from polling import wait_until

from vae_core.config import TrainConfig
from vae_core.train import Status
from vae_core.views.lessons import LESSONS
from vae_core.runs import list_runs, load_run


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def _chart(at, key):
    """The figure an st.plotly_chart with that key was given."""
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


def test_explore_without_runs_says_what_to_do(app):
    app.run()
    app.switch_page("pages/explore.py").run()
    _ok(app)
    assert any("No trained model yet" in i.value for i in app.info)


def test_explore_a_saved_run(app, train_run):
    train_run()
    app.run()
    app.switch_page("pages/explore.py").run()
    _ok(app)
    assert [s.value for s in app.subheader][:3] == [
        "Interpolation from A to B", "Traversal: one latent dimension at a time", "The latent plane, decoded"]
    images = len(app.image)
    assert images >= 4  # picked samples, interpolation, traversal, latent plane
    scatter = json.loads(next(c for c in app.get("bidi_component") if c.key == "explore_latent").proto.json)
    points = sum(len(trace["customdata"]) for trace in json.loads(scatter["figure"])["data"] if "customdata" in trace)
    assert points == len(scatter["images"]) == 270 and scatter["pick"]  # an image per point; clicks pick
    assert all(uri.startswith("data:image/png;base64,") for uri in scatter["images"])
    app.number_input(key="explore_b").set_value(7).run()
    app.slider(key="interp_steps").set_value(5).run()
    app.radio(key="interp_method").set_value("spherical").run()
    app.slider(key="trav_span").set_value(1.5).run()
    _ok(app)
    captions = " ".join(c.value for c in app.caption)
    assert "spherical path" in captions and "from −1.5 to +1.5" in captions
    app.number_input(key="iwae_k").set_value(5)
    next(b for b in app.button if b.label.startswith("Compute")).click().run()
    _ok(app)
    metrics = {m.label: m.value for m in app.metric}
    assert "IWAE (k = 5)" in metrics and float(metrics["ELBO (k = 1)"].split()[0]) < 0


def test_explore_waits_for_the_sessions_run_to_pause_then_shows_it(any_backend, app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(200).run()
    app.button(key="start").click().run()
    job = session_work(app)
    assert wait_until(lambda: job.view().step > 0)
    app.switch_page("pages/explore.py").run()
    app.selectbox(key="explore_run").set_value("This session's run").run()
    assert any("still training" in i.value for i in app.info)
    job.pause()
    assert wait_until(lambda: job.view().status == "paused")
    app.run()
    _ok(app)
    assert not any("still training" in i.value for i in app.info) and len(app.image) >= 4  # the model so far
    job.stop()
    assert job.join(30)


def test_explore_the_sessions_own_finished_run(any_backend, app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    app.button(key="start").click().run()
    assert session_work(app).join(60)
    app.switch_page("pages/explore.py").run()
    _ok(app)
    assert app.selectbox(key="explore_run").value == "This session's run"
    assert len(app.image) >= 4


def test_a_diverged_run_says_so_in_explore_and_in_every_list(app, train_run):
    """LR 10 blows up within the first epoch: its run list entries, Explore's banner and Compare's table say
    so, and Explore warns that its pictures are of a barely trained model."""
    run = train_run(TrainConfig(epochs=1, hidden=[32], lr=10.0))
    app.run()
    app.switch_page("pages/explore.py").run()
    assert not app.exception
    (label,) = app.selectbox(key="explore_run").options  # as labelled
    assert " · diverged before epoch 1 · " in label
    assert any(e.value.startswith("**This run diverged** after 0 epochs. The loss") for e in app.error)
    assert any("never finished an epoch" in w.value for w in app.warning)
    app.switch_page("pages/compare.py").run()
    _ok(app)
    (row,) = app.dataframe[0].value.to_dict("records")
    assert row["status"] == "diverged" and row["run"].endswith("diverged before epoch 1")
    assert load_run(run).meta["status"] == "diverged"


def test_compare_two_saved_runs(app, train_run, runs_dir):
    first, second = train_run(), train_run(TrainConfig(epochs=1, hidden=[32], beta=4.0))
    app.run()
    app.switch_page("pages/compare.py").run()
    _ok(app)
    assert sorted(app.multiselect(key="compare_runs").value) == sorted([first.name, second.name])
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) == 2
    assert len(app.image) == 4  # each run's reconstructions and its prior samples
    curves = _chart(app, "compare_curves")
    assert curves["layout"]["yaxis"]["title"]["text"] == "validation −ELBO"
    assert curves["layout"]["yaxis"]["type"] == "linear" and len(curves["data"]) == 2
    app.selectbox(key="compare_metric").set_value("val_kl").run()
    _ok(app)
    curves = _chart(app, "compare_curves")
    assert curves["layout"]["yaxis"]["title"]["text"] == "validation KL"
    assert sorted(t["y"] for t in curves["data"]) == sorted([run.epochs[-1]["val_kl"]] for run in list_runs(runs_dir))
    app.toggle(key="compare_log").set_value(True).run()
    _ok(app)
    curves = _chart(app, "compare_curves")
    assert curves["layout"]["yaxis"]["type"] == "log" and curves["layout"]["yaxis"]["title"]["text"] == "validation KL"
    app.multiselect(key="compare_runs").unselect(first.name).run()
    _ok(app)
    assert len(app.dataframe[0].value) == 1 and len(_chart(app, "compare_curves")["data"]) == 1


def test_compare_opens_on_one_dataset_and_never_draws_two_on_one_axis(app, train_run):
    digits_run = train_run()
    moons_run = train_run(TrainConfig(dataset="moons", recon_loss="mse", mse_sigma=0.1, hidden=[32, 32], latent_dim=2,
                                      epochs=5))
    app.run()
    app.switch_page("pages/compare.py").run()
    _ok(app)
    assert app.multiselect(key="compare_runs").value == [moons_run.name]  # the newest run's dataset only
    app.multiselect(key="compare_runs").set_value([moons_run.name, digits_run.name]).run()
    _ok(app)
    assert [m.value for m in app.markdown if m.value.startswith("#####")] == ["##### moons", "##### digits"]
    assert [len(_chart(app, key)["data"]) for key in ("compare_curves", "compare_curves_1")] == [1, 1]
    # moons' Gaussian reconstruction (σ = 0.1) is below zero: no log scale for it, and the reason says so
    assert load_run(moons_run).epochs[-1]["val_recon"] < 0
    assert not app.toggle(key="compare_log").disabled
    app.selectbox(key="compare_metric").set_value("val_recon").run()
    assert app.toggle(key="compare_log").disabled and "zero or below" in app.toggle(key="compare_log").help


def test_compare_runs_a_beta_sweep_in_the_background(app, session_work):
    app.run()
    app.sidebar.text_input(key="cfg_hidden").set_value("32").run()
    app.switch_page("pages/compare.py").run()
    app.text_input(key="sweep_betas").set_value("0.5, 4")
    app.number_input(key="sweep_epochs").set_value(1)
    next(b for b in app.button if b.label == "Run the β sweep").click().run()
    _ok(app)
    series = session_work(app)
    assert series.join(60) and series.view().status == Status.FINISHED
    app.run()
    _ok(app)
    assert len(app.multiselect(key="compare_runs").value) == 2
    assert any("Trained 2 of 2 runs" in s.value for s in app.success)
    assert [run.config.beta for run in series.jobs] == [0.5, 4.0]
    assert all(run.config.hidden == [32] and run.config.epochs == 1 for run in series.jobs)


def test_learn_renders_and_a_lesson_fills_the_train_page(app):
    app.run()
    app.switch_page("pages/learn.py").run()
    _ok(app)
    assert len(app.latex) >= 3
    lesson = LESSONS[0]
    app.button(key=f"lesson_{lesson.key}_preset").click().run()
    _ok(app)
    assert app.session_state["draft"] == lesson.preset.to_dict()
    assert app.title[0].value == "Train a VAE"
    assert any(lesson.claim in i.value for i in app.info)


def test_a_three_way_lesson_loads_its_third_run(app):
    """The β lesson claims something of β = 0, 1 and 8: each has its button, and the banner names the run."""
    lesson = next(item for item in LESSONS if item.extra)
    app.run()
    app.switch_page("pages/learn.py").run()
    app.button(key=f"lesson_{lesson.key}_extra0").click().run()
    _ok(app)
    assert app.session_state["draft"] == lesson.extra[0].to_dict()
    assert any(f"({lesson.extra_labels[0]})" in i.value for i in app.info)


def _png(side: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.arange(side * side).reshape(side, side) % 256).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_explore_encodes_an_uploaded_image(app, train_run):
    train_run()
    app.run()
    app.switch_page("pages/explore.py").run()
    app.file_uploader(key="explore_upload").set_value(("mine.png", _png(), "image/png")).run()
    _ok(app)
    assert any("Your image and its reconstruction" in c.value for c in app.caption)
    table = app.dataframe[0].value
    assert list(table.columns) == ["dimension", "μ", "σ"] and len(table) == 2
    app.file_uploader(key="explore_upload").set_value(("fake.png", b"no image here", "image/png")).run()
    assert not app.exception
    assert any("Could not read fake.png as an image" in e.value for e in app.error)


def test_compare_runs_all_of_a_lessons_runs(app, session_work, monkeypatch):
    lesson = dataclasses.replace(LESSONS[0], preset=TrainConfig(epochs=1, hidden=[32], beta=8.0),
                                 contrast=TrainConfig(epochs=1, hidden=[32], beta=1.0),
                                 extra=(TrainConfig(epochs=1, hidden=[32], beta=0.0),))
    monkeypatch.setattr("vae_core.views.lessons.LESSONS", [lesson, *LESSONS[1:]])  # real presets train 30 epochs
    app.run()
    app.switch_page("pages/compare.py").run()
    assert app.selectbox(key="pair_lesson").value == lesson.key
    next(b for b in app.button if b.label == "Run these 3 runs").click().run()
    _ok(app)
    series = session_work(app)
    assert series.join(90) and series.labels == [lesson.preset_label, lesson.contrast_label, *lesson.extra_labels]
    app.run()
    _ok(app)
    chosen = app.multiselect(key="compare_runs").value
    assert len(chosen) == 3 and len(app.dataframe[0].value) == 3
    assert sorted(app.dataframe[0].value["β"]) == [0.0, 1.0, 8.0]


def test_explore_and_compare_show_mig_on_a_shapes_run(app, train_run):
    shapes = train_run(TrainConfig(dataset="shapes", epochs=1, hidden=[32], latent_dim=3))
    digits = train_run()
    app.run()
    app.switch_page("pages/explore.py").run()
    app.selectbox(key="explore_run").set_value(shapes.name).run()
    _ok(app)
    assert "Disentanglement: which factor does each dimension capture?" in [s.value for s in app.subheader]
    mig = float(next(m.value for m in app.metric if m.label == "MIG (mutual information gap)"))
    assert 0 <= mig <= 1
    table = app.dataframe[0].value
    assert list(table["dimension"]) == ["z1", "z2", "z3"]
    assert set(table["factor captured most"]) <= {"shape", "scale", "rotation", "x", "y"}
    app.selectbox(key="explore_run").set_value(digits.name).run()  # no known factors: no section
    assert not any(s.value.startswith("Disentanglement") for s in app.subheader)
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="compare_runs").set_value([shapes.name, digits.name]).run()
    _ok(app)
    rows = app.dataframe[0].value.set_index("dataset")
    assert rows.loc["shapes", "MIG"] == pytest.approx(mig, abs=0.005) and np.isnan(rows.loc["digits", "MIG"])
    assert 0 < rows.loc["digits", "sharpness × real"] and 0 < rows.loc["digits", "diversity × real"]
    assert 0 < rows.loc["shapes", "nearest training"] < 1
