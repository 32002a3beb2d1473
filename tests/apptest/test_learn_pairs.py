"""Learn → "Run side by side": one click trains a lesson's runs as a series and shows it on the Compare page."""

import dataclasses

from vae_core.config import TrainConfig
from vae_core.train import Status
from vae_core.views.lessons import LESSONS
from vae_core.jobs.series import JobSeries


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def _open_learn(app):
    app.run()
    app.switch_page("pages/learn.py").run()
    _ok(app)
    assert app.title[0].value == "Learn"


def test_every_lesson_card_has_a_run_side_by_side_button(app):
    _open_learn(app)
    for item in LESSONS:
        assert app.button(key=f"lesson_{item.key}_pair").label == "Run side by side", item.key


def test_run_side_by_side_starts_the_lessons_own_pair_and_switches_to_compare(app, session_work):
    """The real preset and contrast (30 epochs each) are what the series trains; it is stopped at once."""
    lesson = next(item for item in LESSONS if len(item.runs) == 2)
    _open_learn(app)
    assert not isinstance(session_work(app), JobSeries)
    app.button(key=f"lesson_{lesson.key}_pair").click().run()
    _ok(app)
    series = session_work(app)
    try:
        assert isinstance(series, JobSeries)
        assert series.configs == [lesson.preset, lesson.contrast]
        assert series.labels == [lesson.preset_label, lesson.contrast_label]
        assert series.alive or series.jobs  # started, not merely built
        # the page switched: the Compare page shows the series, with this lesson in its picker
        assert app.title[0].value == "Compare runs"
        assert app.selectbox(key="pair_lesson").value == lesson.key
        assert any(f"Run 1 of 2: {lesson.preset_label}" in p.proto.text for p in app.get("progress"))
    finally:
        series.stop()
        assert series.join(30)


def test_a_finished_side_by_side_series_is_selected_on_compare(app, session_work, monkeypatch):
    """With tiny stand-ins for the lesson's configurations the series finishes, and Compare selects its runs;
    a three-way lesson trains all three."""
    tiny = dict(epochs=1, hidden=[32])
    lesson = next(item for item in LESSONS if item.extra)
    lesson = dataclasses.replace(lesson, preset=TrainConfig(**tiny, beta=8.0), contrast=TrainConfig(**tiny, beta=1.0),
                                 extra=(TrainConfig(**tiny, beta=0.0),))
    monkeypatch.setattr("vae_core.views.lessons.LESSONS", [item if item.key != lesson.key else lesson for item in LESSONS])
    _open_learn(app)
    app.button(key=f"lesson_{lesson.key}_pair").click().run()
    _ok(app)
    assert app.title[0].value == "Compare runs"
    series = session_work(app)
    assert isinstance(series, JobSeries) and series.configs == [config for _, config in lesson.runs]
    assert series.join(90) and series.view().status == Status.FINISHED
    # AppTest reruns the page it was last sent to with switch_page (Learn); a browser stays on Compare
    app.switch_page("pages/compare.py").run()
    _ok(app)
    assert app.selectbox(key="pair_lesson").value == lesson.key
    assert any("Trained 3 of 3 runs" in s.value for s in app.success)
    chosen = app.multiselect(key="compare_runs").value
    assert len(chosen) == 3 and sorted(app.dataframe[0].value["β"]) == [0.0, 1.0, 8.0]
