"""Lessons open on what they tell students to look at: readable cards, and Compare on the lesson's curve and
prior samples."""

import dataclasses

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
