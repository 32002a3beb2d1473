"""The teacher's Class page in AppTest: signing in, the board, steering the class, hand-ins, the summary."""

import csv
import io
import json
import math
import time

import plotly.graph_objects as go

import pytest
from polling import wait_until
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from vae_core import runs
from vae_core.classroom import cards, identity, room
from vae_core.classroom.room import Classroom
from vae_core.config import TrainConfig
from vae_core.jobs.backends import backend
from vae_core.train import Status
from vae_core.views import class_plane
from vae_core.views.lessons import LESSONS

KEY = "correct horse battery staple"
PAGE = "pages/classroom.py"


@pytest.fixture
def teacher_key(monkeypatch):
    """The teacher key set, and wrong keys not slowed down (the back-off sleeps between tries)."""
    monkeypatch.setenv(room.KEY_ENV, KEY)
    monkeypatch.setattr(room, "_failures", room.Backoff(sleep=lambda seconds: None))
    return KEY


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def _open(at):
    at.run()
    at.switch_page(PAGE).run()
    return at


def _owner(at) -> str:
    return identity.owner_of(at.session_state["student_token"])


def _sign_in(at, key=KEY):
    at.text_input(key="teacher_key").input(key)
    next(b for b in at.button if b.label == "Sign in").click().run()
    return at


def _teacher(at, runs_dir):
    """The app open on the Class page, signed in as the teacher, with a class session under way."""
    _sign_in(_open(at))
    _ok(at)
    Classroom(runs_dir).start_period("Tuesday")
    return at.run()


def _tab(at, label):
    at.session_state["class_tab"] = label
    return at.run()


def _run(runs_dir, owner, title, period, *, beta=1.0, epochs=3, hand_in=None, lesson=""):
    """A saved run folder with its card, as a job leaves it (no weights: the page does not load the model)."""
    config = TrainConfig(beta=beta, epochs=epochs, hidden=[32])
    run_dir = runs.new_run_dir(runs_dir, config)
    runs.save_config(run_dir, config)
    rows = [{"epoch": e, "step": 10 * e, "train_loss": 40.0 - e, "val_loss": 41.0 - e, "val_recon": 30.0 - e,
             "val_kl": 2.0 + e, "val_neg_elbo": 32.0 - 0.5 * e} for e in range(1, epochs + 1)]
    meta = {"status": "finished", "message": "Finished.", "dataset": "digits", "sample_shape": [1, 8, 8],
            "parameters": 1, "epochs_done": epochs, "steps_done": 10 * epochs, "best_epoch": None,
            "live_changes": [], "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    runs.save_progress(run_dir, meta, rows, [], None)
    card = cards.new_card(owner, title, period, lesson=lesson)
    if hand_in is not None:
        card["handed_in"] = {"assignment": hand_in, "at": "2026-12-06 10:00", "period": period}
    cards.write_card(run_dir, card)
    return run_dir


def _student(runs_dir, name, period) -> str:
    owner = identity.owner_of(identity.new_token())
    classroom = Classroom(runs_dir)
    classroom.set_name(owner, name)
    classroom.join(owner, period)
    return owner


def test_without_a_key_the_page_only_says_how_to_switch_it_on(app, monkeypatch):
    monkeypatch.delenv(room.KEY_ENV, raising=False)
    _open(app)
    _ok(app)
    assert [t.value for t in app.title] == ["Class"]
    assert len(app.main.info) == 1 and room.KEY_ENV in app.main.info[0].value
    assert not app.main.button and not app.main.text_input and not app.main.get("tabs")


def test_a_wrong_key_is_refused_and_the_right_one_shows_the_board(app, teacher_key, runs_dir):
    _sign_in(_open(app), "not the key")
    assert [e.value for e in app.error] == ["That is not the teacher key."]
    assert not Classroom(runs_dir).is_teacher(_owner(app)) and not app.get("tab")
    _sign_in(app)
    _ok(app)
    assert Classroom(runs_dir).is_teacher(_owner(app))
    assert [tab.label for tab in app.get("tab")] == ["Board", "Hand-ins", "Steer the class", "Data"]
    assert any("needs a class session" in i.value for i in app.info)
    app.run()  # remembered per owner: a new run (a reload keeps the cookie's token) still shows the board
    assert app.get("tab") and not [b for b in app.button if b.label == "Sign in"]
    next(b for b in app.button if b.label == "Sign out").click().run()
    _ok(app)
    assert not Classroom(runs_dir).is_teacher(_owner(app)) and app.text_input(key="teacher_key")


def test_the_teacher_sees_the_sessions_students_and_runs(app, teacher_key, runs_dir):
    _teacher(app, runs_dir)
    period = Classroom(runs_dir).room().period
    ann, bob = _student(runs_dir, "Ann **bold**", period), _student(runs_dir, "Bob", period)
    _run(runs_dir, ann, "β sweep: β = 4", period, beta=4.0, lesson=LESSONS[0].key)
    _run(runs_dir, bob, "mine", period, beta=0.5, epochs=5)
    _run(runs_dir, bob, "last week's", "old-period")
    _student(runs_dir, "Cleo", period)  # joined, trained nothing yet
    app.run()
    _ok(app)
    table = app.main.dataframe[0].value
    assert list(table["student"]) == ["Ann **bold**", "Bob", "Cleo"]  # as typed: a dataframe shows text
    assert list(table["latest run"]) == ["β sweep: β = 4", "mine", "no run yet"]
    assert list(table["epoch"]) == ["3 / 3", "5 / 5", "–"] and list(table["runs"]) == [1, 1, 0]
    chart = json.loads(next(c for c in app.get("plotly_chart") if c.key == "class_plane_digits").proto.spec)
    paths, (stars,) = _paths(app), [t for t in chart["data"] if t["marker"].get("symbol") == "star"]
    assert sorted(len(t["x"]) for t in paths) == [3, 5]
    assert sorted(zip(stars["x"], stars["y"])) == sorted((t["x"][-1], t["y"][-1]) for t in paths)  # the last epochs
    bar = next(t for t in chart["data"] if t.get("x") == [None])["marker"]
    assert bar["showscale"] and bar["colorbar"]["ticktext"] == ["0.5", "4"]  # β on a log scale
    app.session_state["class_colour_by"] = "lesson"
    app.run()
    _ok(app)
    chart = json.loads(next(c for c in app.get("plotly_chart") if c.key == "class_plane_digits").proto.spec)
    assert sorted(t["name"] for t in chart["data"] if t["showlegend"]) == sorted(["no lesson", LESSONS[0].title])

    app.toggle(key="class_plane_live").set_value(False).run()  # held still: a new run waits
    _run(runs_dir, ann, "later", period, beta=2.0)
    app.run()
    _ok(app)
    assert list(app.main.dataframe[0].value["latest run"])[0] == "later"  # the board stays live
    assert len(_paths(app)) == 2 and any("Held still" in c.value for c in app.caption)
    app.toggle(key="class_plane_live").set_value(True).run()
    assert len(_paths(app)) == 3


def _paths(at) -> list[dict]:
    chart = json.loads(next(c for c in at.get("plotly_chart") if c.key == "class_plane_digits").proto.spec)
    return [t for t in chart["data"] if t["mode"] == "lines+markers"]


def test_starting_a_class_session_archives_the_one_before(app, teacher_key, runs_dir):
    _sign_in(_open(app))
    assert any("No class session yet" in m.value for m in app.markdown)
    app.text_input(key="period_name").input("Monday *A*")
    next(b for b in app.button if b.label == "Start it").click().run()
    _ok(app)
    first = Classroom(runs_dir).room()
    assert first.period_name == "Monday *A*" and any("Monday \\*A\\*" in m.value for m in app.markdown)
    app.text_input(key="period_name").input("Tuesday")
    next(b for b in app.button if b.label == "Start it").click().run()
    now = Classroom(runs_dir).room()
    assert now.period_name == "Tuesday" and [p["id"] for p in now.archived] == [first.period]
    _ok(app)
    ann = _student(runs_dir, "Ann", first.period)
    _run(runs_dir, ann, "Monday's run", first.period)
    app.run()
    assert not any("Monday's run" in df.value.to_string() for df in app.main.dataframe)  # not mixed in
    assert app.selectbox(key="class_period").value == now.period
    app.selectbox(key="class_period").set_value(first.period).run()  # the archive, on demand
    _ok(app)
    table = app.main.dataframe[0].value
    assert list(table["student"]) == ["Ann"] and list(table["latest run"]) == ["Monday's run"]


def test_the_class_plane_is_coloured_safely_alike_in_every_chart():
    epochs = [{"epoch": 1, "val_kl": 1.0, "val_recon": 9.0}, {"epoch": 2, "val_kl": 2.0, "val_recon": 7.0}]
    runs = [{"label": "<img src=x onerror=alert(1)>", "dataset": "digits", "epochs": epochs, "colour": 0.5},
            {"label": "b", "dataset": "digits", "epochs": epochs, "colour": 0.0},
            {"label": "c", "dataset": "moons", "epochs": epochs, "colour": 8.0},
            {"label": "d", "dataset": "moons", "epochs": epochs, "colour": None},
            {"label": "not drawn", "dataset": "moons", "epochs": [], "colour": 2.0}]
    charts = class_plane.class_rate_distortion_figures(runs, "β", log_colour=True)
    assert list(charts) == ["digits", "moons"]
    for chart in charts.values():
        go.Figure(chart)  # valid for plotly.js
        bar = chart["data"][-1]["marker"]
        assert (bar["cmin"], bar["cmax"]) == (math.log10(0.5), math.log10(8.0))  # one scale for every chart
        assert "0.5" in bar["colorbar"]["ticktext"] and "8" in bar["colorbar"]["ticktext"]
    digits, moons = (charts[name]["data"] for name in ("digits", "moons"))
    assert digits[0]["meta"][0] == "&lt;img src=x onerror=alert(1)&gt;"  # shown as typed, never as markup
    assert digits[0]["line"]["color"] == class_plane.VIRIDIS[0]
    stars = [t for t in digits if t["marker"].get("symbol") == "star"]
    assert [(t["x"], t["marker"]["color"]) for t in stars] == [([2.0], [class_plane.VIRIDIS[0]]), ([2.0], ["#000000"])]
    assert (digits[1]["name"], digits[1]["line"]["color"]) == ("β = 0", class_plane.ZERO_COLOUR)
    assert (moons[1]["name"], moons[1]["line"]["color"]) == ("no β", class_plane.NO_VALUE_COLOUR)
    lessons = class_plane.class_rate_distortion_figures(
        [{**run, "colour": colour} for run, colour in zip(runs, ["b", "a", "a", "b", "c"])], "lesson")
    colours = {t["name"]: t["line"]["color"] for chart in lessons.values() for t in chart["data"] if "line" in t}
    assert colours == {"a": class_plane.OKABE_ITO[0], "b": class_plane.OKABE_ITO[1]}  # alike in both charts


def test_sending_a_lesson_and_taking_it_back(app, teacher_key, runs_dir):
    _tab(_teacher(app, runs_dir), "Steer the class")
    _ok(app)
    lesson = LESSONS[1]
    app.selectbox(key="push_lesson").set_value(lesson.key).run()
    next(b for b in app.button if b.label == "Send to every student").click().run()
    _ok(app)
    pushed = json.loads((runs_dir / ".class" / "room.json").read_text())["pushed"]
    assert (pushed["lesson"], pushed["label"], pushed["config"]) == (lesson.key, lesson.title, None)
    app.radio(key="push_what").set_value("settings").run()
    next(b for b in app.button if b.label == "Send to every student").click().run()
    pushed = Classroom(runs_dir).room().pushed
    assert pushed.config == TrainConfig.from_dict(app.session_state["draft"], strict=False).to_dict()
    next(b for b in app.button if b.label == "Take it back").click().run()
    _ok(app)
    assert Classroom(runs_dir).room().pushed is None


def test_locks_and_the_epoch_cap_are_saved(app, teacher_key, runs_dir):
    _tab(_teacher(app, runs_dir), "Steer the class")
    app.multiselect(key="rule_locks").select("beta").select("latent_dim")
    app.checkbox(key="rule_capped").check()
    app.number_input(key="rule_cap").set_value(12)
    next(b for b in app.button if b.label == "Save the rules").click().run()
    _ok(app)
    now = Classroom(runs_dir).room()
    assert (now.locks, now.max_epochs) == (("beta", "latent_dim"), 12)
    assert any("Epochs capped at 12" in c.value for c in app.caption)
    app.checkbox(key="rule_capped").uncheck()
    next(b for b in app.button if b.label == "Save the rules").click().run()
    assert Classroom(runs_dir).room().max_epochs is None


def test_feedback_on_a_handed_in_run_is_saved(app, teacher_key, runs_dir):
    _teacher(app, runs_dir)
    classroom = Classroom(runs_dir)
    classroom.open_assignment("Find the collapse")
    period = classroom.room().period
    ann = _student(runs_dir, "Ann", period)
    handed = _run(runs_dir, ann, "β = 8", period, beta=8.0, hand_in="Find the collapse")
    _run(runs_dir, ann, "not handed in", period)
    _tab(app, "Hand-ins")
    _ok(app)
    assert [t.value for t in app.main.text][:1] == ["Find the collapse"]  # the open assignments, as text
    assert len(app.text_area) == 1
    app.text_area(key=f"feedback_text_{handed.name}").input("Look at the KL: it is zero.")
    next(b for b in app.button if b.label == "Save feedback").click().run()
    _ok(app)
    assert cards.card(handed)["feedback"] == "Look at the KL: it is zero."
    next(b for b in app.button if b.label == "Open in Explore").click().run()
    assert not app.exception  # Explore, on the run (which it cannot load: these test runs have no weights)
    assert app.selectbox(key="explore_run").value == handed.name and app.session_state["explore_scope"] == "class"


def test_the_summary_csv_names_students_but_holds_no_owner_ids(app, teacher_key, runs_dir, monkeypatch):
    saved = []
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        saved.append((filename, path_or_data))
        return original(self, path_or_data, mimetype, kind, filename)
    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    _teacher(app, runs_dir)
    period = Classroom(runs_dir).room().period
    owners = [_student(runs_dir, name, period) for name in ("Ann", "=cmd|' /C calc'!A0")]
    for owner in owners:
        _run(runs_dir, owner, "a run", period)
    _tab(app, "Data")
    _ok(app)
    filename, data = next((f, d) for f, d in saved if f and f.endswith(".csv"))
    text = data.decode() if isinstance(data, bytes) else data
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["student"] for r in rows) == ["'=cmd|' /C calc'!A0", "Ann"]
    tokens = [app.session_state["student_token"]]
    assert not any(secret in text for secret in owners + tokens)


def test_stop_every_running_job_asks_first_then_stops_them(app, teacher_key, runs_dir):
    job = backend().start(TrainConfig(epochs=500, hidden=[32]), owner=identity.owner_of(identity.new_token()),
                          runs_dir=runs_dir)
    try:
        assert wait_until(lambda: job.state().status == Status.RUNNING)
        _tab(_teacher(app, runs_dir), "Steer the class")
        next(b for b in app.button if b.label.startswith("Stop every running job (")).click().run()
        _ok(app)
        assert job.alive and any(w.value.startswith("Stop ") for w in app.warning)  # asks first
        next(b for b in app.button if b.label == "Yes, stop them all").click().run()
        _ok(app)
        assert job.join(30) and job.state().message == "Stopped by the teacher."
        assert any("to stop" in s.value for s in app.success)
    finally:
        job.stop()
        job.join(30)


def test_the_trash_is_emptied_after_asking_and_the_retention_rule_reports(app, teacher_key, runs_dir):
    _teacher(app, runs_dir)
    owner = _student(runs_dir, "Ann", Classroom(runs_dir).room().period)
    gone = _run(runs_dir, owner, "a run", Classroom(runs_dir).room().period)
    cards.trash(runs_dir, gone.name, cards.Actor(owner))
    _tab(app, "Data")
    next(b for b in app.button if b.label == "Apply the retention rule").click().run()
    _ok(app)
    assert [s.value for s in app.success] == ["Deleted 0 run(s) from the trash and moved 0 run(s) of archived "
                                              "sessions to the trash."]
    assert (runs_dir / cards.TRASH / gone.name).is_dir()  # deleted today: kept
    next(b for b in app.button if b.label == "Empty the trash").click().run()
    assert (runs_dir / cards.TRASH / gone.name).is_dir()  # not before the teacher confirms
    next(b for b in app.button if b.label == "Yes, empty it").click().run()
    _ok(app)
    assert [s.value for s in app.success] == ["Deleted 1 run(s) from the trash."]
    assert not (runs_dir / cards.TRASH / gone.name).exists()
