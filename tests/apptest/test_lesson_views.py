"""Lessons open on what they tell students to look at: readable cards, and Compare on the lesson's curve and
prior samples."""

import dataclasses
import json

from vae_core.config import TrainConfig
from vae_core.jobs.series import JobSeries
from vae_core.train import Status
from vae_core.views.lessons import LESSONS


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def test_lesson_cards_say_what_to_look_at_and_name_each_run_in_full(app):
    app.run()
    app.switch_page("pages/learn.py").run()
    _ok(app)
    looks = [i.value for i in app.info]
    text = " ".join(m.value for m in app.markdown)
    for item in LESSONS:
        assert f"**Look at:** {item.look_for}" in looks, item.key  # a box of its own, not a faint caption
        assert item.claim in text, item.key
        names = ["preset", "contrast", *(f"extra{i}" for i in range(len(item.extra)))]
        for name, (label, _) in zip(names, item.runs):
            assert f"**{label}**" in text, (item.key, label)  # the setting in full, as text
            button = app.button(key=f"lesson_{item.key}_{name}")
            assert button.label == "Open in Train" and button.proto.type != "primary", (item.key, name)
        assert app.button(key=f"lesson_{item.key}_pair").proto.type != "primary"


def test_every_lesson_names_a_curve_compare_draws():
    curves = {"val_neg_elbo", "val_recon", "val_kl", "train_loss", "val_active_units"}  # pages/compare.py METRICS
    assert {item.curve for item in LESSONS} <= curves
    beta = next(item for item in LESSONS if item.key == "beta")
    assert (beta.curve, beta.samples) == ("val_kl", True)  # "look at the KL curve ... and the samples from the prior"


def test_run_side_by_side_opens_compare_on_the_lessons_curve_with_prior_samples(app, session_work, monkeypatch):
    """The β lesson (with tiny stand-ins for its runs) lands on the KL curve, and each run's prior samples show."""
    tiny = dict(epochs=1, hidden=[32])
    lesson = next(item for item in LESSONS if item.key == "beta")
    lesson = dataclasses.replace(lesson, preset=TrainConfig(**tiny, beta=8.0), contrast=TrainConfig(**tiny, beta=1.0),
                                 extra=(TrainConfig(**tiny, beta=0.0),))
    monkeypatch.setattr("vae_core.views.lessons.LESSONS", [item if item.key != "beta" else lesson for item in LESSONS])
    app.run()
    app.switch_page("pages/learn.py").run()
    app.button(key="lesson_beta_pair").click().run()
    _ok(app)
    series = session_work(app)
    assert isinstance(series, JobSeries) and series.join(90) and series.view().status == Status.FINISHED
    app.switch_page("pages/compare.py").run()  # AppTest reruns Learn; a browser stays on Compare
    _ok(app)
    assert app.selectbox(key="compare_metric").value == "val_kl"
    assert len(app.multiselect(key="compare_runs").value) == 3
    assert any("Samples from the prior" in m.value for m in app.markdown)
    assert len(app.image) == 6  # three runs' reconstructions and three runs' prior samples
    for curve in {item.curve for item in LESSONS}:  # every lesson's curve is one Compare offers
        app.selectbox(key="compare_metric").set_value(curve).run()
        _ok(app)


def test_compares_own_lesson_button_also_opens_the_lessons_curve(app, train_run, monkeypatch):
    """Compare's "Run this pair" picks the curve as Learn's button does (the series itself is not trained here)."""
    started = []
    monkeypatch.setattr("pages.ui.session.start_series", lambda *args: started.append(args))
    train_run()
    app.run()
    app.switch_page("pages/compare.py").run()
    assert app.selectbox(key="compare_metric").value == "val_neg_elbo"
    app.selectbox(key="pair_lesson").set_value("free-bits").run()
    next(b for b in app.button if b.label.startswith("Run this pair")).click().run()
    _ok(app)
    assert started and app.selectbox(key="compare_metric").value == "val_active_units"


def _chart(at, key):
    """The figure an st.plotly_chart with that key was given."""
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


def test_compare_sweeps_the_latent_size_and_shows_one_point_per_run(app, session_work):
    app.run()
    app.sidebar.text_input(key="cfg_hidden").set_value("32").run()
    app.switch_page("pages/compare.py").run()
    app.radio(key="sweep_param").set_value("latent_dim").run()
    _ok(app)
    app.text_input(key="sweep_latents").set_value("2, 5")
    app.number_input(key="sweep_epochs").set_value(1)
    next(b for b in app.button if b.label == "Run the latent-size sweep").click().run()
    _ok(app)
    series = session_work(app)
    assert series.join(90) and series.view().status == Status.FINISHED
    assert [run.config.latent_dim for run in series.jobs] == [2, 5] and series.labels == ["latent 2", "latent 5"]
    app.run()
    _ok(app)
    assert app.radio(key="compare_plane").value == "points"  # a sweep opens on its runs' end points
    line, *points = _chart(app, "rate_distortion_points")["data"]
    assert len(points) == 2 and len(line["x"]) == 2
    assert sorted(p["text"][0].rsplit(": ", 1)[-1] for p in points) == ["latent 2", "latent 5"]
    app.text_input(key="sweep_latents").set_value("2, 500")
    next(b for b in app.button if b.label == "Run the latent-size sweep").click().run()
    assert any("latent_dim" in e.value for e in app.error)  # refused in plain words, nothing started
    app.radio(key="compare_plane").set_value("paths").run()
    _ok(app)
    assert _chart(app, "rate_distortion")["data"]


def test_a_lessons_view_opens_with_its_runs_on_compare(app, session_work, monkeypatch):
    """The L1 lesson (tiny stand-ins) opens on the weight histograms, the latent-size lesson on the plane's points."""
    tiny = dict(epochs=1, hidden=[32], latent_dim=2)
    stand_ins = {"l1-vs-l2": (dict(l1=1e-3), dict(optimizer="adamw", weight_decay=0.1), dict()),
                 "latent-size": (dict(latent_dim=4), dict(latent_dim=2), dict(latent_dim=3))}
    replaced = [dataclasses.replace(item, preset=TrainConfig(**(tiny | stand_ins[item.key][0])),
                                    contrast=TrainConfig(**(tiny | stand_ins[item.key][1])),
                                    extra=(TrainConfig(**(tiny | stand_ins[item.key][2])),))
                if item.key in stand_ins else item for item in LESSONS]
    monkeypatch.setattr("vae_core.views.lessons.LESSONS", replaced)
    app.run()
    app.switch_page("pages/compare.py").run()
    for key in ("l1-vs-l2", "latent-size"):
        app.selectbox(key="pair_lesson").set_value(key).run()
        next(b for b in app.button if b.label == "Run these 3 runs").click().run()
        _ok(app)
        assert session_work(app).join(90)
        app.run()
        _ok(app)
        assert len(app.multiselect(key="compare_runs").value) == 3
        if key == "l1-vs-l2":
            assert app.toggle(key="compare_weights").value and app.radio(key="compare_plane").value == "paths"
            histograms = _chart(app, "compare_weight_histograms")["data"]
            assert len(histograms) == 3 and all("near 0" in trace["name"] for trace in histograms)
        else:
            assert not app.toggle(key="compare_weights").value and app.radio(key="compare_plane").value == "points"
            assert len(_chart(app, "rate_distortion_points")["data"]) == 4  # the line and three labelled points
