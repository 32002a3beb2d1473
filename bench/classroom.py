"""Part 4: classroom load: N students open the Train page of one real Streamlit server and press Start at once.

The server is `streamlit run app.py` on 127.0.0.1 (file watcher off, a fresh runs folder; VAE_LAB_MAX_JOBS = N
so every run trains at once, then for 30 students the app's default, where the runs queue), started through
LAUNCHER, which sends vae_core's log lines to the server log and writes the server's own figures four times a
second. Each student is one Streamlit session:

- light (the default): bench/students.py's protocol-level clients, which do over the websocket what a
  student's browser does (without rendering), all on one event loop of this process; in a classroom each
  browser runs on its student's laptop, so the students should cost the server's machine almost nothing;
- chromium (`--students chromium`, or BENCH_STUDENTS=chromium for `python -m bench`): tabs of one headless
  Chromium (loopback only) on the server's machine, which then measures a busy machine.

For each N, on a fresh server:

- one run alone: one student presses Start on the default configuration; seconds from the click to the run's
  meta.json saying "finished" (its file time), after one unmeasured warm-up run, while the visitor loads a page
  every 2 s as during the load (below). N one after another is N × the median of these (not measured directly).
- N at once: N students load the page, then each presses Start; from the first click to the last run's
  "finished"; then whether each student's page shows "Finished.", and whether it shows an error.
- page load: while they train, a fresh tab opens the page again and again; seconds from navigation to the
  Train page's title and to its Start button. The same on the idle server before the load. These tabs are
  in a real Chromium (the visitor) at normal priority, whichever the students.
- server RSS (VmRSS of the server and its trainer process) idle, after the single runs and the idle page
  loads, and at its peak during the load.
- dataset loads: the "loaded dataset" lines vae_core logs on a real load (a cache miss), per dataset.
- where the server's CPU went: its training threads (none: the runs train in the trainer process, whose CPU
  is counted apart), its main thread (the web server's event loop) and the rest (mostly script runs), and how
  late the stats thread's 0.25 s sleeps wake (waiting for the GIL or a core).

With a class (the cases "N+session" and "N+class"), the server has a teacher key (VAE_LAB_TEACHER_KEY) and a class
session is started after the single runs, so the N students join it; with "+class", a teacher (one more light
client) signs in on the Class page and keeps its Board tab open, which redraws every 5 s, from before the idle
page loads to the end of the load. The server times the Class page's redraws apart from the other fragment runs,
and the teacher's client times each from its timer's rerun to the run's end.

    python -m bench.classroom [--smoke] [--repeats N] [--students light|chromium] [--split-cores]
                              [--cases 10,30,30/2,30+class]

--cases (BENCH_CLASSROOM_CASES for `python -m bench`): which cases, in order (a case may come again): N students,
"/J" for VAE_LAB_MAX_JOBS = J (else N, all training at once), "+session" for a class session, "+class" for a class
session with the Class page open.

With --split-cores (BENCH_SPLIT_CORES=1 for `python -m bench`), the server and its trainer process run on the
first core and the visitor's Chromium on the second: the page loads are then timed as from a one-core machine
of the visitor's own, beside a server with one core.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from bench import common
from bench.students import LightStudents
from bench.browser import CHROMIUM, CHROMIUM_ARGS, launcher
from bench.server import streamlit_server
from vae_core.classroom import identity, room
from vae_core.config import TrainConfig
from vae_core.limits import DEFAULT_MAX_JOBS
from vae_core.train import ENDED

# (students, VAE_LAB_MAX_JOBS, class): all training at once, then the app's default, where the runs queue, then 30
# at once again with a class session and the teacher's Class page open (class: "" none, "session" a class session
# only, "class" a class session and the Class page). The smoke run takes the same paths on a smaller scale: 4
# students at once, then a few queued for the default's slots, with the Class page open.
CASES = ((10, 10, ""), (30, 30, ""), (30, DEFAULT_MAX_JOBS, ""), (30, 30, "class"))
SMOKE_CASES = ((4, 4, ""), (DEFAULT_MAX_JOBS + 1, DEFAULT_MAX_JOBS, "class"))
CLASS_WORDS = {"": "–", "session": "class session", "class": "class session, Class page open"}
TEACHER_KEY = "bench-teacher-key"  # the server's VAE_LAB_TEACHER_KEY in the cases with a class
CLASS_PAGE = "classroom"  # the Class page's URL path (st.Page("pages/classroom.py"))
COOKIE = "vae_lab_student"  # pages/ui/session.py's cookie: the student's token
QUERY, SMOKE_QUERY = "", "?epochs=1"  # the Train page's default configuration (smoke: one epoch of it)
IDLE_LOADS, SMOKE_IDLE_LOADS = 5, 2
# Under load, a fresh page load every 2 s, one at a time: each renders in the visitor's Chromium on this machine, and
# several at once would measure that browser's rendering on shared cores, where students' browsers have their own.
LOAD_EVERY = 2.0
# Loopback only, blocked by the browser's own resolver: a Playwright route would send every request of every tab
# (the live views' images too) through this process's one thread, which delayed page loads by tens of seconds.
LOOPBACK_ONLY = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
TIMEOUT = 60  # seconds for one sampled page load; a load that times out counts as this long
MIN_WINDOW = 1.0  # seconds the load lasts at least, for the server's figures (sampled every 0.25 s)
PATIENCE = 600  # seconds the N students' tabs may take to show Start
DEADLINE = 1200  # seconds for N runs to finish
LAUNCHER = r"""
import collections, json, logging, os, sys, threading, time
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
from streamlit.util import calc_hash
from streamlit.web.cli import main

handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
logging.getLogger("vae_core").addHandler(handler)
logging.getLogger("vae_core").setLevel(logging.INFO)
TICK = os.sysconf("SC_CLK_TCK")

def cpu(stat):  # utime + stime in seconds
    return sum(map(int, open(stat).read().rsplit(")", 1)[1].split()[11:13])) / TICK

def rss_mb(pid="self"):
    return next(int(line.split()[1]) / 1024 for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))

def children():  # the server's child processes: its trainer process (vae_core.jobs.process)
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            pids += open(f"/proc/self/task/{task}/children").read().split()
        except OSError:
            pass
    return pids

def child_figures():  # CPU seconds and RSS (MB) of the child processes
    cpu_s = rss = 0.0
    for pid in children():
        try:
            cpu_s += cpu(f"/proc/{pid}/stat")
            rss += rss_mb(pid)
        except (OSError, StopIteration):  # it has just ended
            pass
    return cpu_s, rss

def run_delay():  # seconds this thread has spent runnable, waiting for a core
    return int(open("/proc/thread-self/schedstat").read().split()[1]) / 1e9

# script runs (a whole page, or a fragment such as the live view's redraw, with any whole-page rerun it asks
# for; the Class page's fragment runs, its board's redraws, apart): how many ended, their seconds and CPU
# seconds, how many began; and the latest Class page redraws, each (time.time() at its end, seconds, CPU seconds)
scripts = {"page": [0, 0.0, 0.0, 0], "fragment": [0, 0.0, 0.0, 0], "class": [0, 0.0, 0.0, 0]}
class_runs = collections.deque(maxlen=8)
CLASS_PAGE = calc_hash("classroom")  # the page script hash of st.Page("pages/classroom.py"), as the browser sends it
run_script = ScriptRunner._run_script

def timed_run_script(self, rerun_data):
    kind = ("class" if rerun_data.page_script_hash == CLASS_PAGE else "fragment") if rerun_data.fragment_id_queue \
        else "page"
    figures = scripts[kind]
    figures[3] += 1
    wall, cpu_time = time.perf_counter(), time.thread_time()
    try:
        return run_script(self, rerun_data)
    finally:
        wall, cpu_time = time.perf_counter() - wall, time.thread_time() - cpu_time
        figures[0] += 1
        figures[1] += wall
        figures[2] += cpu_time
        if kind == "class":
            class_runs.append((time.time(), wall, cpu_time))

ScriptRunner._run_script = timed_run_script

def stats(path, every=0.25):
    from vae_core.jobs.sessions import registry
    main_stat, training, trainer_cpu = f"/proc/self/task/{threading.main_thread().native_id}/stat", {}, 0.0
    with open(path, "a", buffering=1) as out:
        while True:
            before, queued = time.perf_counter(), run_delay()
            time.sleep(every)
            late, queued = time.perf_counter() - before - every, run_delay() - queued
            for t in threading.enumerate():
                if t.name == "vae-lab-training":
                    try:
                        training[t] = cpu(f"/proc/self/task/{t.native_id}/stat")
                    except OSError:  # it has just ended: its last figure stays
                        pass
            child_cpu, child_rss = child_figures()
            trainer_cpu = max(trainer_cpu, child_cpu)  # (a restarted trainer would start from 0)
            running = sum(getattr(work.view(), "status", None) == "running" for work in registry().works())
            out.write(json.dumps({"t": time.time(), "late": late, "queued": queued, "rss": rss_mb() + child_rss,
                                  "running": running, "cpu": cpu("/proc/self/stat"), "trainer": trainer_cpu,
                                  "training": sum(training.values()), "main": cpu(main_stat), **scripts,
                                  "class_runs": list(class_runs)}) + "\n")

threading.Thread(target=stats, args=(os.environ["CLASSROOM_STATS"],), name="classroom-stats", daemon=True).start()
sys.argv = ["streamlit", "run", *sys.argv[1:]]
sys.exit(main())
"""


# --- the server ----------------------------------------------------------------------------------

@contextlib.contextmanager
def serve(folder: Path, max_jobs: int, cores: str | None = None, teacher_key: str = ""):
    """A server with its runs in folder/runs, its log in folder/server.log, its figures in folder/stats.jsonl;
    on `cores` (a taskset list) if given, its trainer process too; with `teacher_key` as VAE_LAB_TEACHER_KEY
    (else none)."""
    folder.mkdir(parents=True)
    server = type("Server", (), {"runs": folder / "runs",
                                 "log": folder / "server.log", "stats": folder / "stats.jsonl"})
    env = {**os.environ, "VAE_LAB_RUNS": str(server.runs), "VAE_LAB_MAX_JOBS": str(max_jobs),
           "CLASSROOM_STATS": str(server.stats)}
    env.pop(room.KEY_ENV, None)
    if teacher_key:
        env[room.KEY_ENV] = teacher_key
    pin = ["taskset", "-c", cores] if cores else None  # taskset execs the server: the pid is the server's
    with streamlit_server(env, server.log, launcher=["-c", LAUNCHER], timeout=120, prefix=pin) as started:
        server.url, process = started
        server.pid = process.pid
        yield server


def stats(server, start: float, end: float) -> list[dict]:
    """The server's figures (LAUNCHER) written between two time.time() moments."""
    lines = [json.loads(line) for line in server.stats.read_text().splitlines() if line.endswith("}")]
    return [s for s in lines if start <= s["t"] <= end]


def latest_rss(server) -> float:
    time.sleep(0.5)  # a fresh line
    return stats(server, 0, time.time())[-1]["rss"]


def runs_done(server, exclude=()) -> dict[str, dict]:
    """Run folders not in `exclude` whose meta.json says the run has ended, with its status, epochs and end time."""
    out = {}
    for meta in server.runs.glob("*/meta.json"):
        if meta.parent.name in exclude:
            continue
        try:
            record = json.loads(meta.read_text())
            ended = meta.stat().st_mtime  # written atomically, last, when the run ends
        except (OSError, ValueError):
            continue
        if record.get("status") in ENDED:
            out[meta.parent.name] = {"status": record["status"], "epochs": record["epochs_done"], "ended": ended}
    return out


def on_defaults(server, names, smoke: bool) -> int:
    """How many of the named runs trained the Train page's default configuration (smoke: with one epoch)."""
    wanted = {**TrainConfig().to_dict(), **({"epochs": 1} if smoke else {})}
    return sum(json.loads((server.runs / name / "config.json").read_text()) == wanted for name in names)


# --- the browser ---------------------------------------------------------------------------------

def _open(context, url: str):
    """A tab on url (a new Streamlit session), not waiting for it to load; its uncaught errors in tab.errors,
    and in tab.events its console errors, websocket closes and navigations (seconds since it opened: text)."""
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE * 1000)
    tab.errors, tab.events, opened = [], [], time.monotonic()

    def event(text: str) -> None:
        tab.events.append(f"{time.monotonic() - opened:.0f} s: {text[:200]}")
    tab.on("pageerror", lambda e: tab.errors.append(str(e)[:300]))
    tab.on("console", lambda m: m.type == "error" and event(m.text))
    tab.on("websocket", lambda ws: ws.on("close", lambda w: event("websocket closed")))
    tab.on("framenavigated", lambda f: f == tab.main_frame and event(f"navigated to {f.url}"))
    tab.goto(url, wait_until="commit")
    return tab


def _ready(tab, timeout: float = PATIENCE) -> bool:
    """Wait until the tab shows Start, idle; False if it has not within `timeout` seconds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    end = time.monotonic() + timeout
    try:
        tab.get_by_role("button", name="Start", exact=True).wait_for(timeout=timeout * 1000)
        tab.get_by_text("Ready: press Start").wait_for(timeout=max(1, end - time.monotonic()) * 1000)
        tab.locator("[data-testid=stStatusWidget]").wait_for(state="hidden",
                                                             timeout=max(1, end - time.monotonic()) * 1000)
        return True
    except PlaywrightTimeout:
        return False


def outcomes(tabs, within: float) -> list[str]:
    """What each student's tab shows at the end: "Finished." (waiting up to `within` seconds in all), else the
    text of its progress bar."""
    from playwright.sync_api import Error as PlaywrightError

    end, shown = time.monotonic() + within, []
    for tab in tabs:
        try:
            tab.get_by_text("Finished.", exact=True).wait_for(timeout=max(1, end - time.monotonic()) * 1000)
            shown.append("Finished.")
        except PlaywrightError:
            try:
                shown.append(tab.locator("[data-testid=stProgress]").first.inner_text(timeout=2000)[:150])
            except PlaywrightError:
                shown.append("no progress bar")
    return shown


class ChromiumStudents:
    """Students as tabs of one headless Chromium at nice 15 (their own laptops' work would not take the server's
    cores), with the interface of students.LightStudents."""

    kind = "chromium"

    def __init__(self, driver, folder: Path):
        before = _browsers()
        self.browser = driver.chromium.launch(executable_path=str(launcher(folder, nice=15)),
                                              args=CHROMIUM_ARGS + LOOPBACK_ONLY)
        self.pids = _browsers() - before
        self.context = None

    def open(self, url: str):
        if self.context is None:
            self.context = self.browser.new_context(viewport={"width": 1200, "height": 900})
        return _open(self.context, url)

    ready, outcomes = staticmethod(_ready), staticmethod(outcomes)

    @staticmethod
    def press(tab) -> None:
        tab.get_by_role("button", name="Start", exact=True).click()

    @staticmethod
    def wait_finished(tab, timeout: float) -> None:
        """Wait until the page shows "Finished." and Start again (not Restart), with no script running."""
        tab.get_by_text("Finished.", exact=True).wait_for(timeout=timeout * 1000)
        tab.get_by_role("button", name="Start", exact=True).wait_for(timeout=timeout * 1000)
        tab.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=timeout * 1000)

    @staticmethod
    def errors(tab) -> list[str]:
        """What the tab's page threw, and whether it shows an exception or an error alert."""
        return (tab.errors + ["shows an exception"] * (tab.locator("[data-testid=stException]").count() > 0)
                + ["shows an error"] * (tab.locator("[data-testid=stAlertContentError]").count() > 0))

    @staticmethod
    def events(tab) -> list[str]:
        return tab.events

    def close_sessions(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = None

    def cpu_seconds(self) -> float:
        return tree_cpu(self.pids)

    def close(self) -> None:
        self.browser.close()


class ServerLoads:
    """The server's part of a page load: fresh light sessions (bench/students.py) on url, one at a time, a new one
    at most every `every` seconds, the first `delay` seconds in; for each, the seconds from opening it to its page
    showing Start with its script run ended (stamped on the students' event loop). What a student's browser,
    with the frontend's files cached, waits for before it renders the page on its own cores. With `cookies`
    (the student's token): one student reloading the page, who shows on a class's board once, as the visitor's
    Chromium tabs do (they share their cookie); without, a new student each time."""

    def __init__(self, visitor: LightStudents, url: str, every: float, delay: float,
                 cookies: dict[str, str] | None = None):
        self.visitor, self.url, self.every, self.cookies = visitor, url, every, cookies
        self.loading, self.times, self.due = None, [], time.perf_counter() + delay

    def poll(self) -> None:
        if self.loading is None and time.perf_counter() >= self.due:
            self.loading = self.visitor.open(self.url, self.cookies), time.perf_counter()
            self.due = time.perf_counter() + self.every
        if self.loading is not None:
            student, t0 = self.loading
            if student.ready_at is not None or student.ended or time.perf_counter() - t0 >= TIMEOUT:
                self.times.append(min(student.ready_at - t0, TIMEOUT) if student.ready_at is not None else TIMEOUT)
                self.visitor.close_session(student)
                self.loading = None

    def finish(self) -> None:
        """Start no more (but one, if none has started)."""
        if not self.times and self.loading is None:
            self.due = 0.0
            self.poll()
        self.due = math.inf


class PageLoads:
    """Fresh tabs on url, one at a time, a new one at most every `every` seconds; for each, the
    seconds from navigation to the Train page's title and to its Start button (polled, so to about 0.1 s).
    With `server`, its light sessions are timed alongside, half a period later (with `cookies`, see ServerLoads)."""

    def __init__(self, context, url: str, every: float, server: LightStudents | None = None,
                 cookies: dict[str, str] | None = None):
        self.context, self.url, self.every = context, url, every
        self.loading, self.times, self.due = [], [], 0.0
        self.server = None if server is None else ServerLoads(server, url, every, delay=every / 2, cookies=cookies)

    def poll(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        if self.server is not None:
            self.server.poll()
        if time.perf_counter() >= self.due and not self.loading:
            tab = self.context.new_page()
            self.loading.append([tab, time.perf_counter(), None])
            tab.evaluate("url => setTimeout(() => { location.href = url })", self.url)  # no waiting: a busy
            self.due = time.perf_counter() + self.every  # server may not even send the page for a minute
        for load in list(self.loading):
            tab, t0, title = load
            elapsed = min(time.perf_counter() - t0, TIMEOUT)
            try:
                if title is None and tab.get_by_role("heading", name="Train a VAE").is_visible():
                    load[2] = title = elapsed
                loaded = elapsed >= TIMEOUT or tab.get_by_role("button", name="Start", exact=True).is_visible()
            except PlaywrightError:  # the tab crashed: as good as never loaded
                loaded, elapsed = True, TIMEOUT
            if loaded:
                self.times.append((elapsed if title is None else title, elapsed))
                self.loading.remove(load)
                tab.close()

    def until(self, done) -> None:
        """Keep loading pages until done() is true (at least one starts)."""
        while True:
            self.poll()
            if done():
                return
            time.sleep(0.1)

    def finish(self) -> None:
        """Start no more, and let the pages still loading finish."""
        self.due = math.inf
        if self.server is not None:
            self.server.finish()
        self.until(lambda: not self.loading and (self.server is None or self.server.loading is None))


def one_run(students, student, server, loads: PageLoads | None = None) -> float:
    """Press Start for a ready student; seconds from the click to the run's end (its meta.json's time), with
    `loads` going on meanwhile."""
    before = set(runs_done(server))
    clicked = time.time()
    students.press(student)
    end = time.monotonic() + DEADLINE
    while not (new := runs_done(server, before)):
        if time.monotonic() > end:
            raise RuntimeError("a single run did not finish")
        if loads is not None:
            loads.poll()
        time.sleep(0.1)
    run = next(iter(new.values()))
    if run["status"] != "finished":
        raise RuntimeError(f"a single run ended {run['status']}")
    students.wait_finished(student, PATIENCE)  # the page has caught up: Start again
    return run["ended"] - clicked


# --- CPU of this benchmark's processes -----------------------------------------------------------

def _processes() -> dict[int, tuple[int, str, int]]:
    """Every process: (parent, name, CPU ticks of it and its reaped children)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        head, fields = text.rsplit(")", 1)[0], text.rsplit(")", 1)[1].split()
        found[int(stat.parent.name)] = (int(fields[1]), head.split("(", 1)[1], sum(map(int, fields[11:15])))
    return found


def _browsers() -> set[int]:
    """Chromium browser processes (those whose parent is not a Chromium)."""
    found = _processes()
    return {pid for pid, (parent, name, _) in found.items()
            if name == "chromium" and found.get(parent, (0, ""))[1] != "chromium"}


def tree_cpu(roots=None) -> float:
    """CPU seconds of `roots` (by default this process) and their living descendants (server, browsers), with the
    children each reaped (utime, stime, cutime, cstime)."""
    children = collections.defaultdict(list)
    found = _processes()
    for pid, (parent, _, _) in found.items():
        children[parent].append(pid)
    todo, total = list(roots or [os.getpid()]), 0
    while todo:
        pid = todo.pop()
        total += found.get(pid, (0, "", 0))[2]
        todo += children[pid]
    return total / os.sysconf("SC_CLK_TCK")



# --- one classroom -------------------------------------------------------------------------------

def _percentile(values, q: float) -> float:
    return float(np.percentile(values, q))


def _script_runs(first, last, span: float) -> tuple[float, float | None, float | None, int]:
    """Script runs ended per second, each one's CPU and wall milliseconds, between two of LAUNCHER's figures;
    and how many were still going at the second."""
    runs, wall, cpu, _ = (b - a for a, b in zip(first, last))
    return (runs / span, 1000 * cpu / runs if runs else None, 1000 * wall / runs if runs else None,
            last[3] - last[0])


def open_class_page(teachers: LightStudents, url: str):
    """A teacher (a light session of `teachers`) who opens the app, goes to the Class page, signs in with the
    teacher key and waits for the Board tab's live board (a class session must be under way)."""
    teacher = teachers.open(url)
    steps = [("the Train page", lambda t: t.start_button() is not None and CLASS_PAGE in t.pages, None),
             ("the sign-in form", lambda t: "Teacher key" in {e.label for e in t.of_kind("text_input")},
              lambda: teachers.go_to(teacher, CLASS_PAGE)),
             ("the live board", lambda t: "Students" in t.metrics() and t.timers,
              lambda: teachers.submit(teacher, "Sign in", {"Teacher key": TEACHER_KEY}))]
    for what, shown, action in steps:
        if action is not None:
            action()
        teachers.wait_for(teacher, lambda t, shown=shown: shown(t) or t.shown_errors(), PATIENCE)
        if teachers.errors(teacher) or not teachers.look(teacher, shown):
            errors = teachers.errors(teacher) + teachers.events(teacher)[-10:]
            teachers.close_session(teacher)
            raise RuntimeError(f"the teacher's page did not show {what}: {errors}")
    return teacher


def board_shown(teacher) -> dict:
    """What the teacher's live board shows: its metrics (label: value), and the rate–distortion plane's charts and
    traces."""
    specs = [json.loads(chart.spec) for chart in teacher.of_kind("plotly_chart") if chart.spec]
    return {**teacher.metrics(), "charts": len(specs), "traces": sum(len(spec.get("data", [])) for spec in specs)}


def measure(students, visitor, probe: LightStudents, n: int, max_jobs: int, smoke: bool, repeats: int,
            folder: Path, server_cores: str | None = None, extra: str = "") -> dict:
    """Everything in the table for N sessions, on a fresh server: the `students` (LightStudents or
    ChromiumStudents), the timed page loads in `visitor` (a Chromium at normal priority) and, beside them, the
    server's part of a page load in `probe`; `extra` "session": a class session started after the single runs,
    "class": that and the teacher on the Class page (a light session of `probe`), from then on."""
    common.wait_for_quiet()
    url_query = SMOKE_QUERY if smoke else QUERY
    cookies = {COOKIE: identity.new_token()}  # the probe's sessions: one student reloading the page
    teacher = None
    with serve(folder, max_jobs=max_jobs, cores=server_cores, teacher_key=TEACHER_KEY if extra else "") as server:
        visits = visitor.new_context(viewport={"width": 1200, "height": 900})
        url = server.url + url_query
        student = students.open(url)
        if not students.ready(student, PATIENCE):
            raise RuntimeError(f"the Train page did not load on the idle server:\n{server.log.read_text()[-3000:]}")
        one_run(students, student, server)  # a warm-up run
        # The same background as the load's: one after another is timed beside page loads too.
        beside = PageLoads(visits, url, every=LOAD_EVERY, server=probe, cookies=cookies)
        alone = [one_run(students, student, server, beside) for _ in range(repeats)]
        beside.finish()
        students.close_sessions()
        if extra:  # the students who open the page from now on join it, and show on its board
            room.Classroom(server.runs).start_period("bench")
        if extra == "class":
            teacher = open_class_page(probe, url)
        idle = PageLoads(visits, url, every=0)
        idle.until(lambda: len(idle.times) >= (SMOKE_IDLE_LOADS if smoke else IDLE_LOADS))
        idle.finish()
        server_idle = ServerLoads(probe, url, every=0, delay=0, cookies=cookies)
        while len(server_idle.times) < len(idle.times):
            server_idle.poll()
            time.sleep(0.02)
        rss_idle = latest_rss(server)
        singles = set(runs_done(server))

        opened = time.perf_counter()
        tabs = [students.open(url) for _ in range(n)]
        ready = [tab for tab in tabs if students.ready(tab, max(1.0, PATIENCE - (time.perf_counter() - opened)))]
        all_ready = time.perf_counter() - opened
        rss_tabs = latest_rss(server)
        print(f"  classroom {n}: {len(ready)} of {n} {students.kind} students ready, pressing Start", flush=True)
        busy0, tree0, own0, t0 = common.busy_seconds(), tree_cpu(), students.cpu_seconds(), time.time()
        for tab in ready:
            students.press(tab)
        end = time.monotonic() + DEADLINE

        training_shown, board, round_trips, teacher_errors = [], {}, [], []  # the teacher's, with the Class page

        def all_ended() -> bool:  # a lost press or a stuck run leaves the deadline to end the wait
            if teacher is not None:
                training_shown.append(probe.look(teacher, lambda t: t.metrics().get("Training now")))
            return len(runs_done(server, singles)) >= len(ready) or time.monotonic() > end

        loads = PageLoads(visits, url, every=LOAD_EVERY, server=probe, cookies=cookies)
        loads.until(all_ended)
        time.sleep(max(0.0, t0 + MIN_WINDOW - time.time()))  # the server's figures need two samples at least
        busy1, tree1, own1, t1 = common.busy_seconds(), tree_cpu(), students.cpu_seconds(), time.time()
        loads.finish()
        if teacher is not None:  # the board as the runs ended: after its next redraw (smoke: its latest)
            probe.wait_for(teacher, lambda t: any(at > t1 for at, _, _ in t.round_trips), 0 if smoke else 30)
            board = probe.look(teacher, board_shown)
            round_trips = [seconds for at, _, seconds in probe.look(teacher, lambda t: list(t.round_trips))
                           if t0 <= at <= t1]
            teacher_errors = probe.errors(teacher)
            probe.close_session(teacher)
            teacher = None
        shown = students.outcomes(tabs, within=120)
        done = runs_done(server, singles)
        finished = sum(r["status"] == "finished" for r in done.values())
        defaults = on_defaults(server, done, smoke)
        errors = [students.errors(tab) for tab in tabs]
        tab_errors = sum(map(bool, errors))
        page_errors = sorted({e.splitlines()[0][:120] for shown_errors in errors for e in shown_errors if e})
        events = [students.events(tab) for tab in tabs]
        students.close_sessions()
        visits.close()
        window = stats(server, t0, t1)
        log = server.log.read_text()

    at_once = max((r["ended"] for r in done.values()), default=t1) - t0
    dataset_loads = collections.Counter(re.findall(r"loaded dataset (\S+) \(seed", log))
    tracebacks = log.count("Traceback")
    first, last, cores = window[0], window[-1], os.cpu_count() or 1
    server_cpu, trainer_cpu = last["cpu"] - first["cpu"], last["trainer"] - first["trainer"]
    span = last["t"] - first["t"]
    training, main = last["training"] - first["training"], last["main"] - first["main"]
    rss_peak = max(s["rss"] for s in window)
    sequential = n * common.stats(alone)["median"]
    title_times, start_times = [t for t, _ in loads.times], [s for _, s in loads.times]
    redraws = sorted({tuple(r) for s in window for r in s.get("class_runs", ()) if t0 <= r[0] <= t1})
    redraw_walls = [1000 * wall for _, wall, _ in redraws]
    shown_training = [int(v) for v in training_shown if v is not None and str(v).isdigit()]
    return {
        "sessions": n, "students": students.kind, "max_jobs": max_jobs, "class": CLASS_WORDS[extra],
        "peak_running": max(s["running"] for s in window),
        "epochs": max((r["epochs"] for r in done.values()), default=0),
        "finished": f"{finished} of {n}", "on_defaults": f"{defaults} of {len(done)}",
        "errors": tab_errors + max(0, n - finished) + tracebacks + bool(teacher_errors),
        "teacher_errors": teacher_errors,
        "tabs_finished": f"{shown.count('Finished.')} of {n}",
        "tabs_not_finished": collections.Counter(t for t in shown if t != "Finished."),
        "unfinished_tab_events": collections.Counter(line.split(": ", 1)[1] for lines, t in zip(events, shown)
                                                     if t != "Finished." for line in lines),
        "unfinished_tab_examples": [lines[-25:] for lines, t in zip(events, shown) if t != "Finished."][:3],
        "tabs_with_errors": tab_errors, "page_errors": page_errors, "server_tracebacks": tracebacks,
        "tabs_ready": len(ready),
        "alone": common.stats(alone), "sequential": sequential, "at_once": at_once,
        "speedup": sequential / at_once,
        "load_idle_p50": _percentile([s for _, s in idle.times], 50), "all_ready": all_ready,
        "load_p50": _percentile(start_times, 50), "load_p95": _percentile(start_times, 95),
        "title_p50": _percentile(title_times, 50), "title_p95": _percentile(title_times, 95),
        "server_load_idle_p50": _percentile(server_idle.times, 50),
        "server_load_p50": _percentile(loads.server.times, 50), "server_load_p95": _percentile(loads.server.times, 95),
        "server_load_times": [round(seconds, 3) for seconds in loads.server.times],
        "loads": len(start_times), "loads_timed_out": sum(s >= TIMEOUT for s in start_times),
        "rss_idle": rss_idle, "rss_tabs": rss_tabs, "rss_peak": rss_peak, "per_session": (rss_peak - rss_idle) / n,
        "dataset_loads": ", ".join(f"{k} {v}" for k, v in sorted(dataset_loads.items())) or "none",
        "loaded_once": bool(dataset_loads) and set(dataset_loads.values()) == {1},
        "server_cores": server_cpu / span, "trainer_cores": trainer_cpu / span,
        "cpu_split": f"{100 * training / server_cpu:.0f} / {100 * main / server_cpu:.0f} / "
                     f"{100 * (server_cpu - training - main) / server_cpu:.0f}",
        **{f"{kind}_{key}": value for kind in ("page", "fragment") for key, value in zip(
            ("runs", "cpu_ms", "wall_ms", "going"), _script_runs(first[kind], last[kind], span))},
        "class_redraws": len(redraws) if extra == "class" else None,
        "class_wall_p50": _percentile(redraw_walls, 50) if redraws else None,
        "class_wall_p95": _percentile(redraw_walls, 95) if redraws else None,
        "class_cpu_ms": 1000 * sum(cpu for _, _, cpu in redraws) / len(redraws) if redraws else None,
        "teacher_rtt_p50": 1000 * _percentile(round_trips, 50) if round_trips else None,
        "teacher_rtt_p95": 1000 * _percentile(round_trips, 95) if round_trips else None,
        "class_redraw_ms": [[round(at - t0, 1), round(1000 * wall), round(1000 * cpu)] for at, wall, cpu in redraws],
        "teacher_round_trip_ms": [round(1000 * seconds) for seconds in round_trips],
        "board_training_peak": max(shown_training, default=None),
        "board": (f"{board.get('Students')} students, {board.get('Runs finished')} runs finished, "
                  f"{board['charts']} chart(s) of {board['traces']} traces" if board else None),
        "late_p95": 1000 * _percentile([s["late"] for s in window], 95),
        "late_core": 100 * sum(s["queued"] for s in window) / max(1e-9, sum(s["late"] for s in window)),
        "browser_cores": ((tree1 - tree0) - server_cpu - trainer_cpu) / (t1 - t0),
        "student_cores": (own1 - own0) / (t1 - t0),
        "other_cpu": 100 * max(0.0, ((busy1 - busy0) - (tree1 - tree0)) / ((t1 - t0) * cores)),
    }


COLUMNS = [("sessions", "sessions", 0), ("students", "students", 0), ("epochs", "epochs per run", 0),
           ("max_jobs", "VAE_LAB_MAX_JOBS", 0), ("class", "class", 0),
           ("peak_running", "runs training at once (peak)", 0),
           ("finished", "runs finished", 0), ("on_defaults", "runs on the default configuration", 0),
           ("tabs_finished", "students' pages showing Finished.", 0),
           ("errors", "errors", 0), ("alone", "one run alone (s)", 1), ("sequential", "N one after another (s)", 0),
           ("at_once", "N at once (s)", 0), ("speedup", "one after another / at once", 2),
           ("load_idle_p50", "page load idle, p50 (s)", 2),
           ("all_ready", "N students opened at once: all ready (s)", 1),
           ("load_p50", "page load under load, p50 (s)", 2), ("load_p95", "page load under load, p95 (s)", 2),
           ("loads", "page loads sampled", 0),
           ("server_load_idle_p50", "server's part of a page load idle, p50 (s)", 2),
           ("server_load_p50", "server's part of a page load, p50 (s)", 2),
           ("server_load_p95", "server's part of a page load, p95 (s)", 2),
           ("loads_timed_out", f"page loads over {TIMEOUT} s", 0),
           ("rss_idle", "server + trainer RSS idle (MB)", 0), ("rss_peak", "server + trainer RSS peak (MB)", 0),
           ("per_session", "MB per session", 1), ("dataset_loads", "dataset loads in the server", 0),
           ("other_cpu", "other processes' CPU %", 0)]
CPU_COLUMNS = [("sessions", "sessions", 0), ("max_jobs", "VAE_LAB_MAX_JOBS", 0), ("class", "class", 0),
               ("server_cores", "server CPU (cores)", 2), ("trainer_cores", "trainer process CPU (cores)", 2),
               ("cpu_split", "training / main thread / rest (%)", 0), ("page_runs", "page runs per s", 1),
               ("page_cpu_ms", "page run CPU (ms)", 0), ("page_wall_ms", "page run wall (ms)", 0),
               ("page_going", "page runs unfinished at the end", 0),
               ("fragment_runs", "fragment runs per s", 1), ("fragment_cpu_ms", "fragment run CPU (ms)", 0),
               ("fragment_wall_ms", "fragment run wall (ms)", 0),
               ("class_redraws", "Class page redraws", 0),
               ("class_wall_p50", "Class page redraw wall, p50 (ms)", 0),
               ("class_wall_p95", "Class page redraw wall, p95 (ms)", 0),
               ("class_cpu_ms", "Class page redraw CPU (ms)", 0),
               ("teacher_rtt_p50", "teacher's timer to redrawn, p50 (ms)", 0),
               ("teacher_rtt_p95", "teacher's timer to redrawn, p95 (ms)", 0),
               ("board_training_peak", "board's Training now (peak)", 0), ("board", "board after the runs", 0),
               ("late_p95", "a 0.25 s sleep wakes late, p95 (ms)", 0),
               ("late_core", "of which waiting for a core (%)", 0),
               ("student_cores", "students' CPU (cores)", 2), ("browser_cores", "bench's own CPU (cores)", 2),
               ("other_cpu", "other processes' CPU %", 0)]

KEYS = {k for k, _, _ in COLUMNS + CPU_COLUMNS}


def parse_cases(text: str) -> list[tuple[int, int, str]]:
    """Cases from "10,30,30/2,30+class": N students, "/J" VAE_LAB_MAX_JOBS = J (else N), "+session" a class
    session, "+class" a class session with the teacher's Class page open."""
    cases = []
    for spec in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:/(\d+))?(?:\+(session|class))?", spec)
        if match is None or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
            raise ValueError(f"not a classroom case: {spec!r} (N, N/J, N+session, N+class, N/J+class)")
        cases.append((int(match[1]), int(match[2] or match[1]), match[3] or ""))
    if not cases:
        raise ValueError("no classroom case given")
    return cases


def run(smoke: bool = False, repeats: int = 3, cases=None, students: str | None = None,
        split_cores: bool | None = None) -> dict:
    """The classroom table; `cases`: (students, VAE_LAB_MAX_JOBS[, class]) (by default $BENCH_CLASSROOM_CASES,
    see parse_cases, else CASES or SMOKE_CASES); `students`: light or chromium (by default $BENCH_STUDENTS, else
    light); `split_cores` (by default $BENCH_SPLIT_CORES = 1): the server and its trainer on the first core, the
    visitor's Chromium on the second, as if the visitor browsed from a one-core machine of its own."""
    if cases is None and os.environ.get("BENCH_CLASSROOM_CASES"):
        cases = parse_cases(os.environ["BENCH_CLASSROOM_CASES"])
    cases = [(*case, "")[:3] for case in cases or (SMOKE_CASES if smoke else CASES)]
    students = students or os.environ.get("BENCH_STUDENTS", "light")
    if students not in ("light", "chromium"):
        raise ValueError(f"students must be light or chromium, not {students!r}")
    split_cores = os.environ.get("BENCH_SPLIT_CORES") == "1" if split_cores is None else split_cores
    first, second, *_ = [str(core) for core in sorted(os.sched_getaffinity(0))] + [None]
    if split_cores and second is None:
        raise ValueError("split cores needs 2 cores at least")
    title = "Classroom load: N students press Start at once on one Streamlit server"
    if not CHROMIUM.exists():
        reason = f"skipped: {CHROMIUM} is missing (apt-get install chromium)"
        return common.table(title, COLUMNS, [{**dict.fromkeys(KEYS), "sessions": reason}], [reason])
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp, sync_playwright() as driver:
        pupils = LightStudents() if students == "light" else ChromiumStudents(driver, Path(tmp))
        visitor = driver.chromium.launch(
            executable_path=str(launcher(Path(tmp), nice=0, cores=second if split_cores else None)),
            args=CHROMIUM_ARGS + LOOPBACK_ONLY)
        probe = LightStudents()
        try:
            for i, (n, max_jobs, extra) in enumerate(cases):
                try:
                    folder = Path(tmp) / f"{i}-n{n}-jobs{max_jobs}{'-' + extra if extra else ''}"
                    rows.append(measure(pupils, visitor, probe, n, max_jobs, smoke, repeats, folder,
                                        first if split_cores else None, extra))
                except Exception as exc:  # noqa: BLE001 - keep the other cases' figures; this one says why
                    traceback.print_exc()
                    rows.append({**dict.fromkeys(KEYS), "sessions": n, "students": students, "max_jobs": max_jobs,
                                 "class": CLASS_WORDS[extra], "finished": f"failed: {exc}"[:200]})
                    pupils.close_sessions()
                    continue
                r = rows[-1]
                print(f"  classroom {n}, {max_jobs} at a time{', ' + r['class'] if extra else ''}: {r['finished']} "
                      f"finished in {r['at_once']:.0f} s (one after another {r['sequential']:.0f} s), page load p95 "
                      f"{r['load_p95']:.2f} s, server's part p50 {r['server_load_p50']:.2f} s, p95 "
                      f"{r['server_load_p95']:.2f} s, {r['per_session']:.1f} MB per session"
                      + (f"; Class page redraw p50 {r['class_wall_p50'] or 0:.0f} ms, p95 "
                         f"{r['class_wall_p95'] or 0:.0f} ms ({r['class_redraws']})" if extra == "class" else ""),
                      flush=True)
        finally:
            pupils.close()
            probe.close()
            visitor.close()
    notes = [
        "each student is its own Streamlit session and runs the Train page's default configuration (digits, MLP "
        "256-128, z 2, batch 32, 30 epochs" + (f"; here the link's {SMOKE_QUERY}" if smoke else "")
        + f"); VAE_LAB_MAX_JOBS = N, so no run queues; then the app's default, {DEFAULT_MAX_JOBS}, where the runs "
          "queue for their turns",
        f"one run alone: one student on the same server, median [min–max] of {repeats} after a warm-up run, beside "
        f"the visitor's page loads (one every {LOAD_EVERY:g} s, as during the load); N one after another = N × that "
        "median (not run)",
        "N at once: from the first Start click to the last run's end; students' pages showing Finished.: after "
        "that, given 120 s in all to catch up (what the others show is in results.json); errors: students whose "
        "page shows an exception or an error alert (or, for tabs, threw), runs not finished, tracebacks in the "
        "server log; runs on the default configuration: their config.json",
        "page load: a fresh tab in a real Chromium at normal priority (the visitor, apart from the students), "
        "from navigation to the Start button; while the runs train, one every "
        f"{LOAD_EVERY:g} s (one loading at a time); the title's times are in results.json; "
        f"a load over {TIMEOUT} s counts as {TIMEOUT} s; the server's part of a page load: a fresh light session "
        "(as the light students), from opening it to its page showing Start with its script run ended, one every "
        f"{LOAD_EVERY:g} s, half a period after each tab's: what a student's browser (with the frontend's files "
        "cached) waits for, before it renders the page on its own cores; N students opened at once: from opening "
        "the first of the N students' sessions to the last showing Start, before any run",
        "MB per session: (peak − idle) / N of the VmRSS of the server and its trainer process; idle is after the "
        "single runs and idle page loads; "
        "the peak includes the closed page-load tabs' sessions, which Streamlit keeps for 120 s",
        "dataset loads: vae_core's log lines of real loads (cache misses) in the server's whole life: 1 = loaded once",
        "server CPU split: training threads / main thread (web server event loop) / the rest, mostly script runs",
        ("students: light = protocol-level clients (bench/students.py) on one event loop in the bench's process, "
         "as if each ran on its student's laptop" if students == "light" else
         "students: chromium = tabs of one headless Chromium on the server's cores")
        + "; targets: every run finishes, no error, page load p95 < 2 s, < 150 MB per session",
        "class: with a class session, the server has a teacher key and a class session starts after the single "
        "runs: the N students, the visitor and the server's-part probe join it (the visitor's tabs share a cookie, "
        "and the probe's sessions send one, so each is one student on the board); with the Class page open, a "
        "teacher (one more light session) has "
        "signed in on the Class page and keeps its Board tab open, redrawn every 5 s, from before the idle "
        "page loads on (its errors count in errors); the Class page's figures are in the next table; target: "
        "the server's part of a page load p95 < 2 s with the Class page open",
    ] + ([f"split cores: the server and its trainer process on core {first} only, the visitor's Chromium on core "
          f"{second} only (the students and this process on either)"] if split_cores else [])
    return common.table(title, COLUMNS, rows, notes)


def cpu_table(classroom: dict) -> dict:
    """Where the server's time went during the loads of the classroom table."""
    notes = ["server CPU split: its training threads / its main thread (the web server's event loop) / the rest, "
             "mostly script runs; a page run is a whole Train page (a page load, a click), a fragment run the live "
             "view's redraw or the sidebar's status line, with any whole-page rerun it asks for; wall − CPU of a "
             "run is time spent waiting for the GIL or a core; unfinished: page runs begun and not ended when the "
             "runs ended",
             "a thread in the server sleeps 0.25 s again and again: how late it wakes is how long a thread waits to "
             "run Python there; the share spent runnable without a core is from /proc (schedstat), the rest is "
             "waiting for the GIL",
             "Class page: the teacher's Board tab redrawn every 5 s during the load (its fragment runs, not among "
             "the fragment runs before them): on the server, each redraw's wall and CPU time; on the teacher's "
             "client, from sending the timer's rerun to the run's end; the board's Training now, the highest the "
             "teacher's page showed; after the runs, what the board showed: students, runs finished, the "
             "rate–distortion plane's charts and traces (a path and a star per run)",
             "students' CPU: light, the students' event-loop thread in the bench's process; chromium, their "
             "Chromium's processes; bench's own CPU: the bench's processes but the server and its trainer process "
             "(the students, the visitor Chromium, Playwright's driver, this process), during the load"]
    return common.table("Classroom load: where the server's time went", CPU_COLUMNS, classroom["rows"], notes)


if __name__ == "__main__":
    from bench.__main__ import main

    args = sys.argv[1:]
    if "--students" in args:  # ours, not bench's: passed on as BENCH_STUDENTS
        at = args.index("--students")
        os.environ["BENCH_STUDENTS"] = args[at + 1]
        del args[at:at + 2]
    if "--split-cores" in args:  # likewise, as BENCH_SPLIT_CORES
        args.remove("--split-cores")
        os.environ["BENCH_SPLIT_CORES"] = "1"
    if "--cases" in args:  # likewise, as BENCH_CLASSROOM_CASES
        at = args.index("--cases")
        parse_cases(args[at + 1])  # a mistake shows now, not after the first cases
        os.environ["BENCH_CLASSROOM_CASES"] = args[at + 1]
        del args[at:at + 2]
    main(["--only", "classroom", *args])
