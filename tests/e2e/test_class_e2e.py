"""A class in a real browser (issue #13): a teacher and three students, each a browser context of their own
(their own cookies, so their own student token).

The teacher signs in on the Class page and starts a class session; each student names themselves, trains a
short run; the teacher's board shows the three runs appear and finish. The teacher sends a lesson, which each
student's Train page offers, after a reload too; a reload keeps the student (their run is still theirs in
Explore). One student deletes their run: it goes to the store's trash, the others' run folders stay as they
were.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from polling import wait_until
from vae_core.classroom.identity import owner_of
from vae_core.views.lessons import LESSONS

pytestmark = pytest.mark.e2e

NAMES = ("Ada L.", "Alan T.", "Grace H.")  # the board lists students by name
EPOCHS = 3
CLASS = "E2E class"
LESSON = LESSONS[0]  # the lesson the Steer tab offers first
FIRST_LOAD = 90_000  # ms: a fresh server's first pages (three students' at once) on a busy 2-core machine
BOARD_WAIT = 90_000  # ms: three short runs (two training slots) on a busy 2-core machine, with room to spare

# The board's rows as {column: text}, read from the accessible table that Streamlit's data grid keeps beside its
# canvas (it follows the canvas within a redraw). Null while no board is on the page.
BOARD = """() => { const t = document.querySelector('[data-testid=stDataFrame] table[role=grid]');
  if (!t) return null;
  const head = {}; t.querySelectorAll('thead th').forEach(th => head[th.getAttribute('aria-colindex')] = th.innerText.trim());
  return [...t.querySelectorAll('tbody tr')].map(tr => Object.fromEntries([...tr.querySelectorAll('td')]
    .map(td => [head[td.getAttribute('aria-colindex')], td.innerText.trim()]))); }"""
# The run paths drawn on the class's rate–distortion plane (digits), by their hover label ("name · title").
PLANE = """() => { const g = document.querySelector('.st-key-class_plane_digits .js-plotly-plot');
  return g && g._fullData ? g._fullData.filter(t => t.mode === 'lines+markers' && t.x && t.x.length)
    .map(t => String(t.meta && t.meta[0])) : []; }"""
POINTS = """key => { const g = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  return g && g._fullData ? g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : -1; }"""


def idle(page) -> None:
    """Wait for the page's rerun to end, so that a click is not lost in it."""
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")


def new_page(browser):
    page = browser.new_context(viewport={"width": 1400, "height": 1700}).new_page()
    page.set_default_timeout(30_000)
    return page


def token(page) -> str | None:
    """The student token this browser keeps (None until the page's script has set the cookie)."""
    return next((c["value"] for c in page.context.cookies() if c["name"] == "vae_lab_student"), None)


def board(page) -> list[dict]:
    return page.evaluate(BOARD) or []


def wait_board(page, condition: str, names: tuple[str, ...]) -> None:
    """Wait until every student of `names` has a board row for which the JS expression `condition` (of `r`,
    the row) holds; fails with the rows as the board showed them last."""
    try:
        page.wait_for_function(f"""names => {{ const rows = ({BOARD})() || [];
            return names.every(n => rows.some(r => r.student === n && ({condition}))); }}""",
                               arg=list(names), polling=250, timeout=BOARD_WAIT)
    except Exception as exc:
        raise AssertionError(f"the board never showed {condition} for {names}: {board(page)}") from exc


def folders(runs) -> dict[str, dict]:
    """The store's run folders (those with a card): name -> {"owner", "files": {file: (size, mtime_ns)}}."""
    out = {}
    for card in sorted(runs.glob("*/card.json")):
        files = {f.name: (f.stat().st_size, f.stat().st_mtime_ns) for f in card.parent.iterdir() if f.is_file()}
        out[card.parent.name] = {"owner": json.loads(card.read_text())["owner"], "files": files}
    return out


def sign_in_and_start_class(teacher, server) -> None:
    teacher.goto(server.url + "/classroom")
    key = teacher.get_by_label("Teacher key")
    key.wait_for(timeout=FIRST_LOAD)
    key.fill(server.key)
    teacher.get_by_role("button", name="Sign in").click()
    teacher.get_by_role("button", name="Start a new class session").click()
    teacher.get_by_label("Name", exact=True).fill(CLASS)
    teacher.get_by_role("button", name="Start it").click()
    teacher.get_by_text(f"Class session: {CLASS}").wait_for()
    teacher.keyboard.press("Escape")  # the popover stays open after the session started
    expect(teacher.get_by_test_id("stPopoverBody")).to_be_hidden()
    expect(teacher.get_by_test_id("stMetric").first).to_contain_text("Students")


def name_and_start(student, name: str) -> None:
    """Name this student in the sidebar's name box, set a short run and press Start."""
    sidebar = student.get_by_test_id("stSidebar")
    student.get_by_role("button", name="Start", exact=True).wait_for(timeout=FIRST_LOAD)
    assert wait_until(lambda: token(student) is not None, timeout=30, every=0.1), "no student cookie was set"
    box = sidebar.get_by_test_id("stPopoverButton").first
    expect(box).to_contain_text(re.compile(r"Student [0-9a-f]{4}"))  # the default name, before one is typed
    idle(student)
    box.click()
    student.get_by_label("Your name").fill(name)
    student.get_by_role("button", name="Save", exact=True).click()
    expect(box).to_contain_text(name)
    student.keyboard.press("Escape")
    expect(student.get_by_test_id("stPopoverBody")).to_be_hidden()
    sidebar.get_by_text("Training", exact=True).click()  # the settings' expander with the epochs
    epochs = student.locator(".st-key-cfg_epochs input")
    epochs.fill(str(EPOCHS))
    epochs.press("Enter")
    student.wait_for_url(re.compile(rf"[?&]epochs={EPOCHS}(&|$)"))  # set by the rerun the new value started
    # Start's callback is given the settings of the run that last drew the button: wait for the rerun the new
    # value started to draw it again, or the click trains the old settings (30 epochs).
    expect(student.locator(".st-key-start")).to_have_attribute("data-stale", "false", timeout=30_000)
    idle(student)
    student.get_by_role("button", name="Start", exact=True).click()
    expect(student.get_by_text("Ready: press Start to train")).to_be_hidden(timeout=30_000)  # the click took


def offer(student):
    """The Train page's offer of the lesson the teacher sent, once shown (its Load it button)."""
    student.get_by_text(f"Your teacher sent a lesson: {LESSON.title}").wait_for()
    button = student.get_by_role("button", name="Load it")
    expect(button).to_be_enabled(timeout=30_000)
    return button


def my_runs(student) -> list[str]:
    """The runs Explore lists under "My runs" (the select's options, as labelled)."""
    student.get_by_text("Explore a trained model").wait_for()
    expect(student.get_by_role("radio", name="My runs")).to_be_checked()
    idle(student)
    student.locator(".st-key-explore_run").click()
    options = student.get_by_role("option")
    options.first.wait_for()
    labels = options.all_inner_texts()
    student.keyboard.press("Escape")
    expect(options).to_have_count(0)
    return labels


def test_a_class_of_three_students(browser, class_server, shoot):
    teacher = new_page(browser)
    students = [new_page(browser) for _ in NAMES]
    try:
        sign_in_and_start_class(teacher, class_server)

        # The students open the app (their pages load together), name themselves and start a short run.
        for student in students:
            student.goto(class_server.url + "/", wait_until="commit")
        for student, name in zip(students, NAMES):
            name_and_start(student, name)
        owners = {name: owner_of(token(student)) for student, name in zip(students, NAMES)}
        assert len(set(owners.values())) == 3, "two browser contexts shared a student token"

        # The teacher's board shows each student's run, then each finished (the teacher is not a student).
        wait_board(teacher, "r['latest run'] !== 'no run yet'", NAMES)
        # (the grid leaves out of its table the columns scrolled out of view: those right of "status" may be)
        wait_board(teacher, f"r.status === 'finished' && [undefined, '{EPOCHS} / {EPOCHS}'].includes(r.epoch)", NAMES)
        rows = board(teacher)
        assert [r["student"] for r in rows] == sorted(NAMES, key=str.lower), rows
        assert all(r["latest run"] == "digits · VAE · z2 · β 1" for r in rows), rows
        metrics = teacher.get_by_test_id("stMetric")
        expect(metrics.nth(0)).to_contain_text(re.compile(r"Students\s*3$"))
        expect(metrics.nth(3)).to_contain_text(re.compile(r"Runs finished\s*3 of 3$"))
        teacher.wait_for_function(f"names => names.every(n => ({PLANE})().some(label => label.startsWith(n + ' · ')))",
                                  arg=list(NAMES), polling=100)
        shoot(teacher, "class-01-board-three-runs")
        for student in students:
            student.get_by_text("Finished.").wait_for()  # each student's own page saw their run end

        runs = folders(class_server.runs)
        assert sorted(item["owner"] for item in runs.values()) == sorted(owners.values()), runs
        for run in runs:  # each trained the epochs its student set
            assert json.loads((class_server.runs / run / "config.json").read_text())["epochs"] == EPOCHS, run
            assert json.loads((class_server.runs / run / "meta.json").read_text())["epochs_done"] == EPOCHS, run

        # The teacher sends a lesson; each student's Train page offers it, after a reload too, and the reload
        # keeps the student: their name, and their run in Explore's "My runs".
        teacher.get_by_role("tab", name="Steer the class").click()
        teacher.get_by_role("button", name="Send to every student").click()
        teacher.get_by_text(f"Sent now: {LESSON.title}").wait_for()
        for student in students:  # the three reload together
            student.reload(wait_until="commit")
        for student, name in zip(students, NAMES):
            offer(student)
            expect(student.get_by_test_id("stSidebar").get_by_test_id("stPopoverButton").first).to_contain_text(name)
            assert token(student) and owner_of(token(student)) == owners[name]
        students[0].wait_for_function(f"() => ({POINTS})('loss_chart') > 0 && ({POINTS})('latent') > 0", polling=100)
        shoot(students[0], "class-02-student-lesson-offer")
        for student in students:
            idle(student)
            student.get_by_role("link", name="Explore").click()
        for student, name in zip(students, NAMES):
            mine = [run for run, item in runs.items() if item["owner"] == owners[name]]
            labels = my_runs(student)
            assert any(label.endswith(f" · you · {mine[0][:15]}") for label in labels), (name, labels)
        for student in students:
            idle(student)
            student.get_by_role("link", name="Train").click()
        for student in students:
            offer(student)  # shown again by a page of the app, without a reload

        # One student loads the lesson: its first run's settings, and its banner in place of the offer.
        idle(students[1])
        students[1].get_by_role("button", name="Load it").click()
        students[1].get_by_text(re.compile(rf"^Lesson: {re.escape(LESSON.title)}$")).wait_for()
        expect(students[1].get_by_text("Your teacher sent a lesson")).to_be_hidden()
        expect(students[1].locator(".st-key-cfg_beta input")).to_have_value(f"{LESSON.runs[0][1].beta:g}")

        # The first student deletes their run in Explore: it moves to the trash, the others' stay untouched.
        deleter, gone = students[0], next(run for run, item in runs.items() if item["owner"] == owners[NAMES[0]])
        deleter.get_by_role("link", name="Explore").click()
        my_runs(deleter)
        deleter.locator(".st-key-explore_run").click()
        deleter.get_by_role("option", name=re.compile(rf" · you · {gone[:15]}$")).click()
        # the page shows the chosen run before its card is opened (a slow rerun would redraw the card and undo
        # a tick given to the one before)
        expect(deleter.get_by_role("combobox", name="Run")).to_have_value(re.compile(rf"{gone[:15]}$"))
        idle(deleter)
        deleter.get_by_text("About this run · you · finished").click()
        delete = deleter.get_by_role("button", name="Delete", exact=True)
        expect(delete).to_be_disabled()  # until the student ticks the box
        deleter.get_by_text("I want to delete this run").click()
        expect(deleter.get_by_role("checkbox", name="I want to delete this run")).to_be_checked()
        expect(delete).to_be_enabled(timeout=30_000)  # after the rerun the tick starts
        delete.click()
        expect(deleter.get_by_text("About this run")).to_have_count(0, timeout=30_000)  # the page redrawn
        trashed = class_server.runs / ".trash" / gone
        assert wait_until(lambda: (trashed / "card.json").is_file(), timeout=30), "the run did not reach the trash"
        assert json.loads((trashed / "card.json").read_text())["owner"] == owners[NAMES[0]]
        after = folders(class_server.runs)
        assert after == {run: item for run, item in runs.items() if run != gone}, (runs, after)
        assert [p.name for p in (class_server.runs / ".trash").iterdir()] == [gone]
        deleter.get_by_text("No trained model yet").wait_for()  # it was their only run: "My runs" is empty

        # The board no longer counts it.
        teacher.get_by_role("tab", name="Board").click()
        expect(teacher.get_by_test_id("stMetric").nth(3)).to_contain_text(re.compile(r"Runs finished\s*2 of 2$"),
                                                                          timeout=BOARD_WAIT)
    finally:
        for page in (teacher, *students):
            page.context.close()
