"""vae_core.classroom: student identity, run cards and who may change them, the class state, what a
student may set, quotas and the teacher's board."""

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest

from vae_core import runs
from vae_core.classroom import board, cards, identity, policy, quotas
from vae_core.classroom.cards import Actor, NotAllowed
from vae_core.classroom.room import KEY_ENV, Backoff, Classroom
from vae_core.config import ConfigError, TrainConfig
from vae_core.views.lessons import LESSONS

ALEX_1 = identity.owner_of("a" * 32)
ALEX_2 = identity.owner_of("b" * 32)
TEACHER = identity.owner_of("t" * 32)


def make_run(runs_dir: Path, owner: str = "", title: str = "", period: str = "", beta: float = 1.0,
             epochs: int = 3, card: bool = True) -> Path:
    """A saved run folder as a job leaves it, without training: config, card, metrics and meta."""
    config = TrainConfig(epochs=epochs, beta=beta, latent_dim=2)
    run_dir = runs.new_run_dir(runs_dir, config)
    runs.save_config(run_dir, config)
    if card:
        cards.write_card(run_dir, cards.new_card(owner, title, period))
    rows = [{"epoch": e, "val_kl": 5.0 / e, "val_recon": 50.0 + 10 / e, "val_neg_elbo": 55.0 + 15 / e}
            for e in range(1, epochs + 1)]
    meta = {"status": "finished", "message": "Finished.", "dataset": "digits", "sample_shape": [1, 8, 8],
            "parameters": 0, "epochs_done": epochs, "steps_done": 10 * epochs, "best_epoch": None,
            "live_changes": [{"step": 15, "beta": 4.0}], "saved_at": "now"}
    runs.save_progress(run_dir, meta, rows, [], None)
    return run_dir


# --- identity ---------------------------------------------------------------------------------------
def test_tokens_are_random_and_owner_ids_do_not_give_them_away():
    a, b = identity.new_token(), identity.new_token()
    assert a != b and identity.valid_token(a) and len(a) == 32
    owner = identity.owner_of(a)
    assert len(owner) == 24 and a not in owner and identity.owner_of(a) == owner
    for forged in ("", "x" * 31, "../" + "a" * 29, "a" * 33, None, 12):
        assert not identity.valid_token(forged)
    with pytest.raises(ValueError):
        identity.owner_of("../etc/passwd")


@pytest.mark.parametrize("hostile, shown", [
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # kept as text: pages escape it
    ("Alex\x00\x1b[31m\u202eevil", "Alex [31m evil"),
    ("  many    spaces  ", "many spaces"),
    ("x" * 500, "x" * identity.NAME_MAX),
    (None, ""),
])
def test_names_are_plain_capped_text(hostile, shown):
    assert identity.plain_text(hostile, identity.NAME_MAX) == shown


# --- cards ------------------------------------------------------------------------------------------
def test_a_student_changes_their_own_runs_only_and_the_teacher_any(tmp_path):
    mine, theirs = make_run(tmp_path, ALEX_1, "first try"), make_run(tmp_path, ALEX_2, "second")
    alex1 = Actor(ALEX_1)
    cards.rename(mine, alex1, "  β = 4, *bold*  ")
    cards.annotate(mine, alex1, "KL went up\n\n\n\nthen down")
    assert cards.card(mine)["title"] == "β = 4, *bold*" and cards.card(mine)["note"] == "KL went up\n\nthen down"
    for action, args in ((cards.rename, ("mine now",)), (cards.annotate, ("hi",)), (cards.hand_in, ("",))):
        with pytest.raises(NotAllowed, match="not yours"):
            action(theirs, alex1, *args)
    with pytest.raises(NotAllowed):
        cards.trash(tmp_path, theirs.name, alex1)
    with pytest.raises(NotAllowed, match="Only the teacher"):
        cards.give_feedback(mine, alex1, "well done, me")
    assert cards.card(theirs)["title"] == "second" and theirs.is_dir()
    teacher = Actor(TEACHER, teacher=True)
    cards.give_feedback(theirs, teacher, "Good: now try β = 8.")
    cards.rename(theirs, teacher, "renamed by the teacher")
    assert cards.card(theirs)["feedback"] == "Good: now try β = 8." and cards.card(theirs)["owner"] == ALEX_2


def test_unowned_runs_are_the_teachers_to_change(tmp_path):
    old = make_run(tmp_path, card=False)  # saved before cards, or by the CLI
    assert cards.card(old)["owner"] == "" and not cards.owned_by(runs.load_run(old), "")
    with pytest.raises(NotAllowed, match="belongs to nobody"):
        cards.rename(old, Actor(ALEX_1), "mine")
    cards.rename(old, Actor(TEACHER, teacher=True), "kept from last year")
    assert cards.title(runs.load_run(old)) == "kept from last year"


def test_titles_default_to_the_settings_and_labels_add_live_changes(tmp_path):
    run = runs.load_run(make_run(tmp_path, ALEX_1, ""))
    assert cards.title(run) == "digits · VAE · z2 · β 1"
    assert cards.label(run) == "digits · VAE · z2 · β 1 · β → 4 at epoch 2"  # a run saved before "β_was"


def test_a_run_handed_in_is_found_in_the_class_session_it_was_handed_in(tmp_path):
    yesterdays = make_run(tmp_path, ALEX_1, "trained yesterday", period="monday")
    cards.hand_in(yesterdays, Actor(ALEX_1), "Homework 1", period="tuesday")
    assert cards.card(yesterdays)["handed_in"]["assignment"] == "Homework 1"
    assert [item.name for item in board.hand_ins(tmp_path, "tuesday")] == [yesterdays.name]
    assert board.hand_ins(tmp_path, "monday") == []
    cards.withdraw(yesterdays, Actor(ALEX_1))
    assert cards.card(yesterdays)["handed_in"] is None and board.hand_ins(tmp_path, "tuesday") == []


def test_delete_moves_the_whole_folder_to_the_trash_and_names_never_become_paths(tmp_path):
    run = make_run(tmp_path, ALEX_1, "mine")
    long_ago = time.time() - 100 * 86400
    os.utime(run, (long_ago, long_ago))  # a run from last term, deleted today
    target = cards.trash(tmp_path, run.name, Actor(ALEX_1))
    assert not run.exists() and (target / "meta.json").is_file() and target.parent.name == cards.TRASH
    assert target.stat().st_mtime > time.time() - 600  # its days in the trash count from today
    assert runs.list_runs(tmp_path) == []
    for name in ("../outside", "/etc", ".trash", ".class"):
        with pytest.raises((runs.RunError, FileNotFoundError)):
            cards.trash(tmp_path, name, Actor(TEACHER, teacher=True))
    with pytest.raises(FileNotFoundError):
        cards.rename(tmp_path / "20990101-000000-digits-abcdef", Actor(ALEX_1), "x")
    assert not (tmp_path / "20990101-000000-digits-abcdef").exists()  # the lock made no folder


def test_a_malformed_card_leaves_the_run_unowned(tmp_path):
    run = make_run(tmp_path, ALEX_1, "mine")
    (run / cards.CARD).write_text(json.dumps({"owner": "../../x", "title": ["not", "text"], "handed_in": 3}))
    assert cards.card(run) == {"owner": "", "title": "", "period": "", "data": "", "lesson": "", "note": "",
                               "handed_in": None, "feedback": ""}
    (run / cards.CARD).write_text("{not json")
    assert cards.card(run)["owner"] == ""


# --- the room ---------------------------------------------------------------------------------------
def test_class_sessions_archive_the_one_before(tmp_path):
    room = Classroom(tmp_path, clock=lambda: 1000.0)
    assert room.room().period == ""
    first = room.start_period("Monday")
    second = room.start_period("")
    assert first.period != second.period and second.period_name  # a name from the date when none is given
    assert [p["id"] for p in second.archived] == [first.period] and second.archived[0]["name"] == "Monday"


def test_students_join_periods_and_keep_one_name_each(tmp_path):
    room = Classroom(tmp_path)
    room.set_name(ALEX_1, "Alex")
    room.set_name(ALEX_2, "Alex")  # two students, one name: still two owners
    room.join(ALEX_1, "p1")
    room.join(ALEX_1, "p1")
    students = room.students()
    assert set(students) == {ALEX_1, ALEX_2} and students[ALEX_1]["periods"] == ["p1"]
    assert students[ALEX_2]["name"] == "Alex" and students[ALEX_2]["periods"] == []
    assert room.set_name(ALEX_1, "   ") == identity.default_name(ALEX_1)
    with pytest.raises(ValueError):
        room.set_name("../../etc", "x")


def test_the_teacher_key_is_checked_and_remembered_per_owner(tmp_path, monkeypatch):
    room = Classroom(tmp_path)
    assert not room.sign_in(TEACHER, "anything")  # no key set: nobody is the teacher
    monkeypatch.setenv(KEY_ENV, "correct horse")
    monkeypatch.setattr("vae_core.classroom.room._failures", Backoff(sleep=lambda s: None))
    assert not room.sign_in(TEACHER, "wrong") and not room.is_teacher(TEACHER)
    assert room.sign_in(TEACHER, "correct horse") and room.is_teacher(TEACHER)
    assert not room.is_teacher(ALEX_1)
    assert "correct horse" not in (tmp_path / ".class" / "room.json").read_text()
    monkeypatch.setenv(KEY_ENV, "a new key")  # a changed key signs every teacher out
    assert not room.is_teacher(TEACHER)


def test_wrong_keys_wait_longer_each_time():
    waits = []
    backoff = Backoff(sleep=waits.append)
    for _ in range(6):
        backoff.wait()
        backoff.failed()
    backoff.wait()
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    backoff.reset()
    backoff.wait()
    assert len(waits) == 6


def test_a_hand_edited_room_file_is_not_trusted(tmp_path):
    (tmp_path / ".class").mkdir()
    (tmp_path / ".class" / "room.json").write_text(json.dumps(
        {"locks": ["beta", "__class__"], "max_epochs": "lots", "pushed": {"id": 1}, "teachers": [1],
         "period_started": "yesterday", "archived": "all of them"}))
    room = Classroom(tmp_path).room()
    assert room.locks == ("beta",) and room.max_epochs is None and room.pushed is None and room.teachers == {}
    assert room.period_started == 0.0 and room.archived == ()


# --- what a student may set ----------------------------------------------------------------------------
def test_locks_allow_the_values_of_the_lesson_sent_and_caps_bound_epochs(tmp_path):
    room = Classroom(tmp_path)
    lesson = next(item for item in LESSONS if item.key == "beta")
    room.push(lesson.title, lesson="beta")
    state = room.set_rules(["beta", "latent_dim"], max_epochs=20)
    allowed = policy.allowed_values(state)
    assert sorted(allowed["beta"]) == [0.0, 1.0, 8.0] and allowed["latent_dim"] == [lesson.preset.latent_dim]
    ok = lesson.preset.replace(epochs=20)
    policy.check(ok, state)
    with pytest.raises(ConfigError, match="beta: locked by your teacher"):
        policy.check(ok.replace(beta=3.0), state)
    with pytest.raises(ConfigError, match="capped runs at 20 epochs"):
        policy.check(lesson.preset.replace(epochs=30), state)
    policy.check(lesson.preset.replace(beta=3.0, epochs=30), state, teacher=True)
    fitted = policy.fit_to(TrainConfig(beta=3.0, epochs=50), state)
    assert fitted.beta == lesson.preset.beta and fitted.epochs == 20
    policy.check(fitted.replace(latent_dim=lesson.preset.latent_dim), state)


def test_locks_without_a_lesson_sent_keep_the_defaults(tmp_path):
    state = Classroom(tmp_path).set_rules(["optimizer"], None)
    assert policy.allowed_values(state) == {"optimizer": [TrainConfig().optimizer]}
    with pytest.raises(ConfigError, match="optimizer"):
        policy.check(TrainConfig(optimizer="sgd"), state)
    with pytest.raises(ValueError, match="not a setting"):
        Classroom(tmp_path).set_rules(["rm -rf"], None)


# --- quotas and retention -------------------------------------------------------------------------------
def test_a_student_over_quota_is_told_what_to_delete(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_STUDENT_RUNS", "2")
    make_run(tmp_path, ALEX_1, "the first")
    make_run(tmp_path, ALEX_1)
    make_run(tmp_path, ALEX_2)
    quotas.check_room_for_runs(tmp_path, ALEX_2)
    with pytest.raises(quotas.QuotaError, match="no room for 3 more"):  # a series larger than the quota
        quotas.check_room_for_runs(tmp_path, identity.owner_of("n" * 32), new_runs=3)
    with pytest.raises(quotas.QuotaError, match="You have 2 saved runs.*Delete.*your oldest is “the first”"):
        quotas.check_room_for_runs(tmp_path, ALEX_1)
    monkeypatch.setenv("VAE_LAB_MAX_STUDENT_RUNS", "10")
    monkeypatch.setenv("VAE_LAB_MAX_STUDENT_MB", "1")
    with pytest.raises(quotas.QuotaError, match="1 MB"):
        quotas.check_room_for_runs(tmp_path, ALEX_1, new_bytes=2**20)


def test_retention_empties_old_trash_and_retires_old_archived_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_KEEP_DAYS", "10")
    old_class = make_run(tmp_path, ALEX_1, period="old")
    current = make_run(tmp_path, ALEX_1, period="now")
    deleted = cards.trash(tmp_path, make_run(tmp_path, ALEX_2).name, Actor(ALEX_2))
    half_import = tmp_path / ".import-0123456789ab"
    half_import.mkdir()
    long_ago = time.time() - 11 * 86400
    for path in (old_class / "meta.json", current / "meta.json", deleted, half_import):
        os.utime(path, (long_ago, long_ago))
    assert quotas.apply_retention(tmp_path, {"old"}) == {"emptied": 1, "archived_to_trash": 1}
    assert not deleted.exists() and not old_class.exists() and current.exists() and not half_import.exists()
    assert (tmp_path / cards.TRASH / old_class.name / "meta.json").is_file()  # recoverable for another 10 days
    assert quotas.empty_trash(tmp_path) == 1 and not any((tmp_path / cards.TRASH).iterdir())


# --- the board ------------------------------------------------------------------------------------------
def test_the_board_shows_each_student_of_the_session_with_their_latest_run(tmp_path):
    room = Classroom(tmp_path)
    period = room.start_period("Monday").period
    room.set_name(ALEX_1, "Alex")
    room.set_name(ALEX_2, "Sam")
    room.join(ALEX_1, period)
    room.join(ALEX_2, period)
    make_run(tmp_path, ALEX_1, "old session", period="earlier")
    make_run(tmp_path, ALEX_1, "try 1", period=period, beta=1.0)
    make_run(tmp_path, ALEX_1, "try 2", period=period, beta=4.0)
    starting = runs.new_run_dir(tmp_path, TrainConfig())  # started, no epoch yet
    runs.save_config(starting, TrainConfig())
    cards.write_card(starting, cards.new_card(TEACHER, "demo", period))
    class_runs = board.class_runs(tmp_path, period)
    assert [item.card["title"] for item in class_runs] == ["try 1", "try 2", "demo"]
    rows = board.board(class_runs, room.students(), period, {ALEX_2: TrainConfig(beta=2.0)})
    assert [(r.name, r.title, r.status, r.beta, r.runs) for r in rows] == [
        ("Alex", "try 2", "finished", 4.0, 2),
        ("Sam", cards.describe(TrainConfig(beta=2.0)), "waiting for a training slot", 2.0, 0),
        (identity.default_name(TEACHER), "demo", "starting", None, 1)]
    assert rows[0].epoch == rows[0].epochs == 3 and rows[0].val_neg_elbo == pytest.approx(60.0)
    assert board.colour_value(class_runs[1], "beta") == 4.0


def test_the_class_summary_names_students_never_their_ids_and_defuses_formulas(tmp_path):
    room = Classroom(tmp_path)
    room.set_name(ALEX_1, "=HYPERLINK(\"http://x\")")
    run = make_run(tmp_path, ALEX_1, "@SUM(A1)", period="p")
    cards.hand_in(run, Actor(ALEX_1), "HW", "p")
    text = board.summary_csv(board.class_runs(tmp_path, "p"), room.students())
    assert ALEX_1 not in text
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["student"].startswith("'=") and row["title"].startswith("'@") and row["handed_in"] == "HW"
    assert float(row["val_neg_elbo"]) == pytest.approx(60.0) and row["beta"] == "1.0"
