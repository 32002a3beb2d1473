"""Light students for the classroom benchmark: Streamlit sessions that speak the browser's websocket protocol
without rendering anything, all on one asyncio event loop in a background thread of this process.

What a student does, as Streamlit 1.67's frontend does it (static/js/index.*.js; server side web/server/starlette/
starlette_websocket.py and runtime/app_session.py):

- connects to /_stcore/stream with the subprotocols ["streamlit", <XSRF token>] (a placeholder token, as the
  frontend sends without a cookie) and its page's Origin, then asks for a run: a rerun_script BackMsg with the
  URL's query string, no page script hash (the server then runs the main script, app.py, whose st.navigation
  picks the default page, Train), its widgets' values (none yet) and its browser context;
- keeps the page as the deltas draw it: the latest element at each delta path, dropping at the end of a run
  the elements that run (or fragment run) did not draw again, and the whole page when another page shows;
- keeps every widget's value as the server last drew it (its default, or the value the server set) and sends
  them all on every rerun, a button's trigger once; widgets in a form only go with their form's submit;
- reruns a fragment every `auto_rerun` interval (is_auto_rerun), until a whole-page run or stop_auto_rerun
  ends it; whole-page reruns the server starts itself (st.rerun in a fragment) just arrive as a new run;
- caches the cacheable messages by hash, tells the server their hashes on every rerun and resolves the
  ref_hash messages the server sends instead of them, dropping messages not used for max_cached_message_age
  runs, as the frontend's ForwardMsgCache does;
- fetches each new image URL (st.image's media files) once, as a browser's <img> does;
- optionally sends a cookie with its connection (as a browser that has been here before), goes to another page
  of the app's navigation (as its link does), and submits a form with values typed into its text inputs
  (the teacher of the classroom benchmark signs in on the Class page so).

Not done (a browser does): loading index.html and the frontend's scripts, the health and host-config checks,
the components' and Plotly's scripts, reconnecting after a dropped connection, rendering.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from urllib.parse import urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect
from websockets.protocol import State

FINISHED_EARLY = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
MAX_MESSAGE = 200 * 2**20  # bytes: the server's own limit on a message is about this size
TEXT = {"alert": "body", "markdown": "body", "heading": "body", "text": "body", "progress": "text"}
LOGGED = ("new_session", "script_finished", "auto_rerun", "stop_auto_rerun")  # kept in Student.protocol
PROTOCOL_LINES = 20


def _describe(kind: str, msg: ForwardMsg) -> str:
    """The run (and its fragments) or the timer a logged message is about."""
    run = msg.metadata.run
    if kind == "auto_rerun":
        return f"{msg.auto_rerun.fragment_id[:8]} every {msg.auto_rerun.interval:g} s"
    if kind == "stop_auto_rerun":
        return " ".join(f[:8] for f in msg.stop_auto_rerun.fragment_ids)
    status = f" {ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)}" if kind == "script_finished" else ""
    return f"run {run.script_run_id[:8]} " + (" ".join(f[:8] for f in run.fragment_ids) or "page") + status


def widget_value(kind: str, element, known: WidgetState | None) -> WidgetState | None:
    """The value the frontend keeps for a widget the server drew: the server's value when it set one, else the
    value it already had, else the widget's default; None for widgets without a value (buttons)."""
    if kind not in ("checkbox", "number_input", "selectbox", "radio", "text_input") or element.form_id:
        return None
    if known is not None and not element.set_value:
        return known
    state = WidgetState(id=element.id)
    if kind == "checkbox":
        state.bool_value = element.value if element.set_value else element.default
    elif kind == "number_input":
        value = element.value if element.set_value else element.default
        if element.data_type == NumberInput.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind in ("selectbox", "radio"):
        if element.set_value:
            state.string_value = element.raw_value
        elif 0 <= element.default < len(element.options):
            state.string_value = element.options[element.default]
        else:
            return None
    else:
        state.string_value = element.value if element.set_value else element.default
    return state


class Student:
    """One student's Streamlit session (see the module's docstring); its state is changed on the event loop
    only and read from other threads."""

    def __init__(self, url: str, cookies: dict[str, str] | None = None):
        parts = urlsplit(url)
        self.url, self.origin, self.query = url, f"{parts.scheme}://{parts.netloc}", parts.query
        self.cookies = dict(cookies or {})
        self.pages: dict[str, str] = {}  # the navigation's pages: URL path ("" for the default): page script hash
        self.page_hash, self.run_id, self.new_session_seen = "", "", False
        self.page: dict[tuple, tuple] = {}  # delta path: (kind, element or block, run id, fragment id)
        self.widgets: dict[str, WidgetState] = {}
        self.cache: dict[str, list] = {}  # hash: [message, run count when last used, fragment id]
        self.cache_runs, self.max_age = 0, 2
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id: (interval, its rerun loop)
        self.fetched: set[str] = set()
        self.fetches: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        self.running, self.closed, self.ended = True, False, False
        self.ready_at: float | None = None  # time.perf_counter() when its page was first ready()
        self.timer_sent: dict[str, float] = {}  # fragment id: time.perf_counter() of its pending timed rerun
        self.round_trips: list[tuple[float, str, float]] = []  # timed fragment reruns that ran to their end:
        # (time.time() at the end, fragment id, seconds from sending the rerun to the run's script_finished)
        self.errors: list[str] = []  # what the page showed as errors, and protocol trouble
        self.events: list[str] = []  # (seconds since opening: text), as the Chromium tabs' events
        self.protocol = collections.deque(maxlen=PROTOCOL_LINES)  # the latest runs and timers, the same way
        self.opened = time.monotonic()
        self.socket = None

    # --- what the page shows ---
    def elements(self):
        return [(kind, element) for kind, element, _, _ in self.page.values()]

    def texts(self) -> list[str]:
        return [getattr(element, TEXT[kind]) for kind, element in self.elements() if kind in TEXT]

    def of_kind(self, kind: str) -> list:
        return [element for k, element in self.elements() if k == kind]

    def metrics(self) -> dict[str, str]:
        """The st.metric values shown: label: value."""
        return {m.label: m.body for m in self.of_kind("metric")}

    def start_button(self):
        return next((e for kind, e in self.elements() if kind == "button" and e.label == "Start"), None)

    def ready(self) -> bool:
        """Shows Start, enabled, and "Ready: press Start", no script running."""
        start = self.start_button()
        return (start is not None and not start.disabled and not self.running
                and any(t.startswith("Ready: press Start") for t in self.texts()))

    def finished(self) -> bool:
        """Shows "Finished." and Start, enabled, no script running: its run has ended and the whole page has
        caught up. The live view can show the end a redraw before the controls do (their button still reads
        Restart): a student, like a user, waits for Start before pressing it again."""
        start = self.start_button()
        return (start is not None and not start.disabled and not self.running and self.shows() == "Finished.")

    def shows(self) -> str:
        """"Finished." when the page shows it, else the text of its progress bar."""
        if "Finished." in (t.strip() for t in self.texts()):
            return "Finished."
        return next((e.text[:150] for kind, e in self.elements() if kind == "progress"), "no progress bar")

    def shown_errors(self) -> list[str]:
        """Exceptions and error alerts on the page, and protocol trouble."""
        shown = [f"{e.type}: {e.message}" for kind, e in self.elements() if kind == "exception"]
        shown += [e.body for kind, e in self.elements() if kind == "alert" and e.format == Alert.ERROR]
        return self.errors + shown

    def _event(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.opened:.0f} s: {text[:200]}")

    def _log(self, text: str) -> None:
        self.protocol.append(f"{time.monotonic() - self.opened:.2f} s: {text}")

    # --- the protocol ---
    async def run(self) -> None:
        """Connect, ask for the page, and handle the server's messages until the connection ends."""
        ws_url = self.origin.replace("http", "ws", 1) + "/_stcore/stream"
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        try:
            async with connect(ws_url, subprotocols=["streamlit", "PLACEHOLDER_AUTH_TOKEN"], origin=self.origin,
                               additional_headers={"Cookie": cookie} if cookie else None,
                               max_size=MAX_MESSAGE, ping_interval=None) as self.socket:  # pings: the server's
                if self.closed:  # closed while it connected
                    return
                await self.rerun()
                async for data in self.socket:
                    self.handle(ForwardMsg.FromString(data))
        except Exception as exc:  # noqa: BLE001 - the student's page is broken: say why
            if not self.closed:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            if not self.closed:
                self._event("websocket closed")
            self.stop_timers(list(self.timers))
            self.ended = True

    async def rerun(self, fragment_id: str = "", auto: bool = False, trigger: str | None = None,
                    page_hash: str | None = None, typed: list[WidgetState] = ()) -> None:
        """Send a rerun_script BackMsg as the frontend's sendRerunBackMsg does; `trigger`: a button's id;
        `page_hash`: another page's (as its navigation link asks); `typed`: a form's values, on its submit."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.fragment_id = self.query, fragment_id
        state.page_script_hash = self.page_hash if page_hash is None else page_hash
        state.is_auto_rerun = auto
        state.widget_states.widgets.extend(self.widgets.values())
        state.widget_states.widgets.extend(typed)
        if trigger:
            state.widget_states.widgets.add(id=trigger, trigger_value=True)
        state.cached_message_hashes.extend(self.cache)
        info = state.context_info
        info.timezone, info.locale, info.url, info.color_scheme = "UTC", "en-US", self.url, "light"
        self.new_session_seen = False
        self._log(f"> rerun {fragment_id[:8] or 'page'}" + (" (timer)" if auto else "") + (" Start" if trigger else ""))
        if auto:
            self.timer_sent.setdefault(fragment_id, time.perf_counter())  # a rerun still pending keeps its time
        await self.socket.send(msg.SerializeToString())

    async def press_start(self) -> None:
        start = self.start_button()
        if start is None or start.disabled:
            labels = [e.label for kind, e in self.elements() if kind == "button"]
            raise RuntimeError(f"no enabled Start button to press; the page's buttons: {labels}")
        await self.rerun(trigger=start.id)

    async def go_to(self, url_path: str) -> None:
        """Go to the navigation's page at `url_path` (as its link in the page's navigation does)."""
        if url_path not in self.pages:
            raise RuntimeError(f"no page at /{url_path}; the navigation's pages: {sorted(self.pages)}")
        await self.rerun(page_hash=self.pages[url_path])

    async def submit(self, button: str, typed: dict[str, str]) -> None:
        """Type `typed` (label: text) into the text inputs of the form whose submit button is labelled
        `button`, and press it."""
        submit = next((e for kind, e in self.elements() if kind == "button" and e.label == button
                       and e.is_form_submitter and not e.disabled), None)
        if submit is None:
            raise RuntimeError(f"no enabled {button!r} form button to press")
        inputs = {e.label: e for e in self.of_kind("text_input") if e.form_id == submit.form_id}
        missing = sorted(set(typed) - set(inputs))
        if missing:
            raise RuntimeError(f"the form has no text input {missing}; it has {sorted(inputs)}")
        await self.rerun(trigger=submit.id, typed=[WidgetState(id=inputs[label].id, string_value=value)
                                                   for label, value in typed.items()])

    def handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                self.errors.append(f"cached ForwardMsg missing: {msg.ref_hash}")
                return
            cached[1] = self.cache_runs
            metadata, msg = msg.metadata, ForwardMsg()
            msg.CopyFrom(cached[0])
            msg.metadata.CopyFrom(metadata)
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash not in self.cache:
            self.cache[msg.hash] = [msg, self.cache_runs, msg.delta.fragment_id]
        if kind in LOGGED:
            self._log(f"< {kind} {_describe(kind, msg)}")
        if kind == "new_session":
            self.new_session(msg)
        elif kind == "delta":
            self.delta(msg)
        elif kind == "script_finished":
            self.script_finished(msg)
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self.stop_timers(msg.stop_auto_rerun.fragment_ids)
        elif kind == "navigation":
            self.pages = {page.url_pathname: page.page_script_hash for page in msg.navigation.app_pages}
        if self.ready_at is None and kind in ("script_finished", "session_status_changed") and self.ready():
            self.ready_at = time.perf_counter()

    def new_session(self, msg: ForwardMsg) -> None:
        session = msg.new_session
        if session.HasField("initialize"):
            self.max_age = session.config.max_cached_message_age
            self.running = session.initialize.session_status.script_is_running
        self.new_session_seen = True
        self.run_id = msg.metadata.run.script_run_id
        if not msg.metadata.run.fragment_ids:  # a whole-page run: the fragments' timers end; a new page starts blank
            self.stop_timers(list(self.timers))
            if session.page_script_hash != self.page_hash:
                self.page.clear()
            self.page_hash = session.page_script_hash

    def delta(self, msg: ForwardMsg) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        if delta.WhichOneof("type") == "new_element":
            kind = delta.new_element.WhichOneof("type")
            element = getattr(delta.new_element, kind)
            self.page[path] = (kind, element, self.run_id, delta.fragment_id)
            if getattr(element, "id", ""):
                value = widget_value(kind, element, self.widgets.get(element.id))
                if value is not None:
                    self.widgets[element.id] = value
            if kind == "imgs":
                for image in element.imgs:
                    if image.url not in self.fetched:
                        self.fetched.add(image.url)
                        task = asyncio.create_task(self.fetch(image.url))
                        self.fetches.add(task)
                        task.add_done_callback(self.fetches.discard)
        elif delta.WhichOneof("type") == "add_block":
            self.page[path] = ("block", delta.add_block, self.run_id, delta.fragment_id)

    def script_finished(self, msg: ForwardMsg) -> None:
        """At the end of the current run: drop what it did not draw (in its fragments only, for a fragment
        run), forget widgets no longer shown, and age the message cache (as the frontend's handleScriptFinished)."""
        status, run = msg.script_finished, msg.metadata.run
        if not run.script_run_id or status == FINISHED_EARLY:
            return
        fragments = set(run.fragment_ids)
        for fragment_id in fragments & set(self.timer_sent):
            self.round_trips.append((time.time(), fragment_id, time.perf_counter() - self.timer_sent.pop(fragment_id)))
        if status != ForwardMsg.FINISHED_WITH_COMPILE_ERROR and (fragments or run.script_run_id == self.run_id):
            self.page = {path: item for path, item in self.page.items()
                         if item[2] == run.script_run_id or (fragments and item[3] not in fragments)}
            shown = {getattr(item[1], "id", "") for item in self.page.values()}
            self.widgets = {id_: state for id_, state in self.widgets.items() if id_ in shown}
        if self.new_session_seen:
            self.cache_runs += 1
            self.cache = {h: c for h, c in self.cache.items() if (fragments and c[2] not in fragments)
                          or self.cache_runs - c[1] <= self.max_age}

    def auto_rerun(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self.timers and self.timers[fragment_id][0] == interval:
            return
        self.stop_timers([fragment_id])

        async def every() -> None:
            while self.socket.state is State.OPEN:
                await asyncio.sleep(interval)
                await self.rerun(fragment_id, auto=True)
        self.timers[fragment_id] = (interval, asyncio.create_task(every()))

    def stop_timers(self, fragment_ids) -> None:
        for fragment_id in fragment_ids:
            self.timer_sent.pop(fragment_id, None)
            if fragment_id in self.timers:
                self.timers.pop(fragment_id)[1].cancel()

    async def fetch(self, path: str) -> None:
        """GET a file of the page (an image) as the browser would, reading it whole."""
        parts = urlsplit(self.origin)
        try:
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
            status = (await reader.readline()).split(b" ", 2)[1:2]
            await reader.read()
            writer.close()
            if status != [b"200"]:
                self._event(f"GET {path}: {b''.join(status).decode() or 'no answer'}")
        except OSError as exc:
            self._event(f"GET {path}: {exc}")


class LightStudents:
    """Students (one Streamlit session each) on one event loop in a background thread; the methods are called
    from other threads, as the Chromium students' are."""

    kind = "light"

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="light-students", daemon=True)
        self.thread.start()
        self.students: list[Student] = []

    def _call(self, fn):
        """fn() run on the event loop; its result."""
        async def call():
            result = fn()
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result()

    def open(self, url: str, cookies: dict[str, str] | None = None) -> Student:
        """A new session on url (with `cookies`, name: value), not waiting for its page."""
        student = Student(url, cookies)
        self.students.append(student)
        asyncio.run_coroutine_threadsafe(student.run(), self.loop)
        return student

    def ready(self, student: Student, timeout: float) -> bool:
        """Wait until the student's page shows Start, idle; False if it has not within `timeout` seconds."""
        self._until(lambda: self._call(student.ready) or student.ended, timeout)
        return self._call(student.ready)

    def press(self, student: Student) -> None:
        self._call(student.press_start)

    def go_to(self, student: Student, url_path: str) -> None:
        self._call(lambda: student.go_to(url_path))

    def submit(self, student: Student, button: str, typed: dict[str, str]) -> None:
        self._call(lambda: student.submit(button, typed))

    def wait_for(self, student: Student, shown, timeout: float) -> bool:
        """Wait until shown(student) is true, run on the event loop, with no script running; False if it is not
        within `timeout` seconds (or the session ended)."""
        def done() -> bool:
            return not student.running and bool(shown(student))
        self._until(lambda: student.ended or self._call(done), timeout)
        return self._call(done)

    def look(self, student: Student, what):
        """what(student), run on the event loop."""
        return self._call(lambda: what(student))

    def wait_finished(self, student: Student, timeout: float) -> None:
        """Wait until the page shows "Finished." and Start again, with no script running (RuntimeError after
        `timeout` s)."""
        if not self._until(lambda: self._call(student.finished), timeout):
            raise RuntimeError("a light student's page did not show Finished. and Start: "
                               + self._call(student.shows))

    def outcomes(self, students, within: float) -> list[str]:
        """What each student's page shows at the end: "Finished." (waiting up to `within` seconds in all), else
        the text of its progress bar."""
        self._until(lambda: all(self._call(s.shows) == "Finished." for s in students), within)
        return [self._call(s.shows) for s in students]

    def errors(self, student: Student) -> list[str]:
        return self._call(student.shown_errors)

    @staticmethod
    def events(student: Student) -> list[str]:
        """Its events, then its latest protocol lines (what a page that stopped updating last saw)."""
        return student.events + list(student.protocol)

    def close_session(self, student: Student) -> None:
        """Close one student's connection, and stop fetching its page's images."""
        student.closed = True

        async def close() -> None:
            fetches = list(student.fetches)
            for task in fetches:  # not left pending with the student (asyncio: "Task was destroyed but it is pending")
                task.cancel()
            await asyncio.gather(*fetches, return_exceptions=True)
            if student.socket is not None:
                await student.socket.close()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.students.remove(student)

    def close_sessions(self) -> None:
        """Close every student's connection."""
        for student in list(self.students):
            self.close_session(student)

    def cpu_seconds(self) -> float:
        """CPU seconds of the students' event loop thread: all the students' work."""
        fields = open(f"/proc/self/task/{self.thread.native_id}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.close_sessions()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @staticmethod
    def _until(done, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True
