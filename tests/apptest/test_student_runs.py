"""A student's runs in AppTest: the card on Explore (rename, note, hand in, delete, import), a classmate's
runs read-only, and what the teacher sent and locked on the Train page."""

import io
import zipfile
from pathlib import Path

from pages.ui import text
from polling import wait_until

from streamlit.testing.v1 import AppTest

from students import TOKEN, student
from vae_core import bundles
from vae_core.classroom import cards, identity
from vae_core.classroom.room import Classroom
from vae_core.jobs import sessions
from vae_core.jobs.backends import backend
from vae_core.runs import list_runs
from vae_core.views.lessons import LESSONS

from conftest import APP, TINY


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def _explore(app, scope="mine"):
    app.session_state["explore_scope"] = scope
    app.switch_page("pages/explore.py").run()
    _ok(app)
    return app


def test_a_student_renames_annotates_hands_in_and_deletes_their_own_run(app, train_run, runs_dir):
    Classroom(runs_dir).open_assignment("Homework 1")
    app.run()
    run = train_run()
    _explore(app)
    app.text_input(key=f"card_title-{run.name}").set_value("β = 1, *my* best")
    app.text_area(key=f"card_note-{run.name}").set_value("KL rose, then fell")
    next(b for b in app.button if b.label == "Save").click().run()
    _ok(app)
    assert (cards.card(run)["title"], cards.card(run)["note"]) == ("β = 1, *my* best", "KL rose, then fell")
    assert "β = 1, *my* best · you" in app.selectbox(key="explore_run").options[0]
    app.button(key="hand_in").click().run()
    _ok(app)
    assert cards.card(run)["handed_in"]["assignment"] == "Homework 1"
    assert any("Handed in for Homework 1" in s.value for s in app.success)
    assert app.button(key="delete").disabled  # asks first
    app.checkbox(key=f"delete-{run.name}").check().run()
    app.button(key="delete").click().run()
    _ok(app)
    assert not run.exists() and (runs_dir / cards.TRASH / run.name / "meta.json").is_file()
    assert any("No trained model yet" in i.value for i in app.info)


def test_a_classmates_run_is_shown_but_never_editable(app, runs_dir):
    other = identity.owner_of(identity.new_token())
    Classroom(runs_dir).set_name(other, "Sam")
    job = backend().start(TINY, owner=other, card={**cards.new_card(other, "Sam's run"), "note": "private thoughts",
                                                   "feedback": "for Sam only"}, runs_dir=runs_dir)
    assert job.join(60)
    app.run()
    _explore(app)
    assert any("No trained model yet" in i.value for i in app.info)  # not in "My runs"
    _explore(app, "class")
    assert app.selectbox(key="explore_run").options == [f"Sam's run · Sam · {Path(job.view().run_dir).name[:15]}"]
    keys = {w.key for w in [*app.text_input, *app.text_area, *app.button, *app.checkbox]}
    assert not {k for k in keys if k and (k.startswith("card_") or k in ("delete", "hand_in"))}
    shown = " ".join(m.value for m in [*app.markdown, *app.info, *app.caption])
    assert "private thoughts" not in shown and "for Sam only" not in shown


def test_a_bundle_imports_as_a_new_run_of_the_student_and_a_forged_one_leaves_nothing(app, train_run, runs_dir):
    app.run()
    run = train_run()
    _explore(app)
    app.get("expander")  # the import section is on the page
    app.file_uploader(key="import_file").set_value((f"{run.name}.zip", bundles.bundle(run), "application/zip")).run()
    app.button(key="import").click().run()
    _ok(app)
    mine = [r for r in list_runs(runs_dir) if cards.owned_by(r, student(app))]
    assert len(mine) == 2 and app.session_state["explore_run"] != run.name
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as zf:
        zf.writestr("../../evil/config.json", "{}")
    app.file_uploader(key="import_file").set_value(("evil.zip", forged.getvalue(), "application/zip")).run()
    app.button(key="import").click().run()
    assert any(e.value.startswith("Not imported") for e in app.error)
    assert len(list_runs(runs_dir)) == 2 and not [p for p in runs_dir.iterdir() if p.name.startswith(".import")]


def test_the_train_page_offers_what_the_teacher_sent_and_keeps_locked_settings(app, runs_dir):
    lesson = next(item for item in LESSONS if item.key == "beta")
    room = Classroom(runs_dir)
    room.push(lesson.title, lesson=lesson.key)
    room.set_rules(["beta"], max_epochs=5)
    app.query_params["beta"] = "3"  # a hand-edited link: β is locked to the lesson's values
    app.run()
    _ok(app)
    assert any(text.plain(lesson.title) in i.value and "Your teacher sent a lesson" in i.value for i in app.info)
    beta = app.sidebar.number_input(key="cfg_beta")
    assert beta.disabled and beta.value in (0.0, 1.0, 8.0) and "Locked by your teacher" in beta.help
    app.button(key="load_push").click().run()
    _ok(app)
    assert not any("Your teacher sent" in i.value for i in app.info)  # loaded: the offer goes
    assert app.sidebar.number_input(key="cfg_beta").value == lesson.preset.beta
    assert app.sidebar.number_input(key="cfg_epochs").value == 5  # the class's cap, below the lesson's 30
    app.button(key="start").click().run()
    _ok(app)
    job = sessions.registry().get(student(app))
    assert job is not None and (job.config.beta, job.config.epochs) == (lesson.preset.beta, 5)
    assert wait_until(lambda: job.view().run_dir) and cards.card(Path(job.view().run_dir))["lesson"] == "beta"
    job.stop()


def test_a_reloaded_tab_finds_the_students_run_as_it_is(app):
    """A reload (or a second tab) is a new browser session with the same cookie: it shows the run training,
    paused as it was, with Resume on offer."""
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(300).run()
    app.button(key="start").click().run()
    job = sessions.registry().get(student(app))
    assert wait_until(lambda: job.view().step > 0)
    app.button(key="pause").click().run()
    assert wait_until(lambda: job.view().status == "paused")
    reloaded = AppTest.from_file(str(APP), default_timeout=30)
    reloaded.session_state[TOKEN] = app.session_state[TOKEN]
    reloaded.run()
    _ok(reloaded)
    assert reloaded.button(key="pause").disabled and not reloaded.button(key="resume").disabled
    assert "paused" in reloaded.get("progress")[0].proto.text
    reloaded.button(key="resume").click().run()
    assert wait_until(lambda: job.view().status == "running")
    app.run()
    assert not app.button(key="pause").disabled  # the first tab, which paused it, follows at its next run
    job.stop()


def test_class_rules_hold_for_live_changes_and_for_a_lessons_runs(app, runs_dir):
    lesson = next(item for item in LESSONS if item.key == "beta")
    Classroom(runs_dir).set_rules(["beta"], max_epochs=4)
    app.run()
    app.button(key="start").click().run()
    _ok(app)
    job = sessions.registry().get(student(app))
    assert app.number_input(key="live_beta").disabled and "Locked" in app.number_input(key="live_beta").help
    job.stop()
    app.switch_page("pages/compare.py").run()
    app.selectbox(key="pair_lesson").set_value(lesson.key).run()
    Classroom(runs_dir).set_rules([], max_epochs=4)  # a cap only: the lesson's runs are cut to it
    next(b for b in app.button if b.label.startswith("Run these")).click().run()
    _ok(app)
    series = sessions.registry().get(student(app))
    assert [config.epochs for config in series.configs] == [4, 4, 4]
    assert [config.beta for config in series.configs] == [run.beta for _, run in lesson.runs]
    series.stop()
