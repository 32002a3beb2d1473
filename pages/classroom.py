"""The teacher's Class page: the class session, the live board, the class's runs in the rate–distortion plane,
hand-ins and feedback, steering the class, and the class's data.

Students' names and titles are untrusted text: they go into st.dataframe and st.text, or st.markdown through
`text.plain`, never as markdown that renders.
"""

from __future__ import annotations

import re
import time

import streamlit as st

from pages.ui import fragments, router, session, text
from pages.ui.class_steer import steer
from vae_core import limits
from vae_core.classroom import board, cards, quotas, room
from vae_core.classroom.identity import NOTE_MAX, TITLE_MAX
from vae_core.config import TrainConfig
from vae_core.jobs.backends import backend
from vae_core.runs import RunError, run_path
from vae_core.train import Status
from vae_core.views import class_plane

router.require_router()

BOARD_SECONDS = 5  # how often the live board redraws
LOG_COLOUR = {"beta", "latent_dim"}  # settings that grow by factors: coloured on a log scale
HELD = "class_plane_held"  # the runs the plane shows while the teacher holds it still
STATUS_WORDS = {"running": "training", "queued": "waiting for a training slot", "early-stopped": "finished early",
                "starting": "first epoch", "": "–"}


def _when(seconds: float) -> str:
    return time.strftime("%a %d %b, %H:%M", time.localtime(seconds)) if seconds else "–"


# --- signing in ---------------------------------------------------------------------------------------------
def no_key() -> None:
    st.info(
        "This page is for the teacher, and it is switched off on this server.\n\n"
        "To switch it on, choose a teacher key (a password only you know) and set it in the environment "
        f"variable `{room.KEY_ENV}` before you start the server, for example:\n\n"
        f"```\n{room.KEY_ENV}='choose-a-long-password' streamlit run app.py\n```\n\n"
        "Then open this page again and type the key. Students never need it.", icon=":material/lock:")


def sign_in() -> None:
    st.markdown("This page is for the teacher: type the teacher key to see the class.")
    with st.form("teacher_sign_in", border=True, width=420):
        typed = st.text_input("Teacher key", type="password", key="teacher_key")
        pressed = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if pressed:
        if session.classroom().sign_in(session.owner(), typed):
            st.session_state.pop("teacher_key", None)
            st.rerun()
        st.error("That is not the teacher key.")


# --- the class session --------------------------------------------------------------------------------------
SHOWN = "class_period"  # session key: the id of the class session the tabs show (the one under way by default)


def shown_period(now: room.Room) -> dict:
    """The class session the tabs show: {"id", "name", "started", "live"}; an archived one when picked."""
    for past in now.archived:
        if past.get("id") == st.session_state.get(SHOWN) and past.get("id") != now.period:
            return {"id": past["id"], "name": str(past.get("name", "")), "started": room.seconds(past.get("started")),
                    "live": False}
    return {"id": now.period, "name": now.period_name, "started": now.period_started, "live": True}


def period_bar(classroom) -> None:
    now = classroom.room()
    left, middle, right = st.columns([5, 3, 1.4], vertical_alignment="center")
    with left:
        if now.archived:
            past = {p["id"]: p for p in reversed(now.archived) if isinstance(p.get("id"), str) and p["id"]}
            options = ([now.period] if now.period else []) + list(past)
            names = {now.period: f"{now.period_name} · under way since {_when(now.period_started)}"} | {
                key: f"{p.get('name', '')} · archived, {_when(room.seconds(p.get('started')))}"
                for key, p in past.items()}
            st.selectbox("Class session shown", options, format_func=names.get, key=SHOWN)
        elif now.period:
            st.markdown(f"**Class session:** {text.plain(now.period_name)} · started {_when(now.period_started)}")
        else:
            st.markdown("**No class session yet.** Start one: the board shows the students and runs of the session "
                        "under way.")
    with middle.popover("Start a new class session", icon=":material/play_circle:", width="stretch"):
        with st.form("new_period", border=False):
            name = st.text_input("Name", placeholder="e.g. Tuesday, group B", max_chars=TITLE_MAX, key="period_name")
            st.caption("The session under way is archived: its runs stay, the board starts empty.")
            if st.form_submit_button("Start it", type="primary"):
                classroom.start_period(name)
                st.session_state.pop(SHOWN, None)  # show the new one
                st.rerun()
    if right.button("Sign out", icon=":material/logout:", width="stretch"):
        classroom.sign_out(session.owner())
        st.rerun()


# --- the board ------------------------------------------------------------------------------------------------
def waiting_jobs() -> dict[str, TrainConfig]:
    """Owners whose newest job on this server waits for a training slot (it has no run folder yet)."""
    newest = {}
    for job in backend().jobs():  # oldest first
        newest[job.owner] = job
    out = {}
    for owner, job in newest.items():
        state = job.state()
        if owner and state.status == Status.QUEUED and not state.run_dir:
            out[owner] = job.config
    return out


def _board_table(rows: list[board.Row]) -> None:
    table = [{"student": r.name, "latest run": r.title, "status": STATUS_WORDS.get(r.status, r.status),
              "epoch": f"{r.epoch} / {r.epochs}" if r.epochs else "–", "β": r.beta, "latent": r.latent,
              "val −ELBO": r.val_neg_elbo, "runs": r.runs} for r in rows]
    st.dataframe(table, hide_index=True, width="stretch", height=min(38 + 35 * max(len(table), 1), 460),
                 placeholder="–",
                 column_config={"β": st.column_config.NumberColumn(format="%g"),
                                "val −ELBO": st.column_config.NumberColumn(format="%.2f"),
                                "latent": st.column_config.NumberColumn(format="%d"),
                                "student": st.column_config.TextColumn(width="medium"),
                                "latest run": st.column_config.TextColumn(width="medium"),
                                "status": st.column_config.TextColumn(width="medium")})


def _plane_runs(runs: list[board.ClassRun], students: dict[str, dict], by: str) -> list[dict]:
    out = []
    for item in runs:
        if item.run is None or not item.run.epochs:
            continue
        value = board.colour_value(item, by)
        if (by == "beta" and item.run.config.mode != "vae") or (by == "lesson" and value == "no lesson"):
            value = None  # an autoencoder has no β; a run of no lesson is grey
        name = students.get(item.card["owner"], {}).get("name") or cards.UNOWNED
        out.append({"label": f"{name} · {item.card['title'] or cards.describe(item.run.config)}",
                    "dataset": item.run.config.dataset.removeprefix("upload:"), "epochs": item.run.epochs,
                    "colour": value})
    return out


def live_board() -> None:
    """The board and the plane, redrawn every BOARD_SECONDS from the runs store (every server's runs)."""
    classroom = session.classroom()
    now = classroom.room()
    period = shown_period(now)
    if not period["id"]:
        st.info("The board needs a class session: start one above. It then lists every student who opens the app "
                "and the runs they train.", icon=":material/info:")
        return
    runs = board.class_runs(session.runs_dir(), period["id"])
    students = classroom.students()
    rows = [r for r in board.board(runs, students, period["id"], waiting_jobs() if period["live"] else {})
            if not (r.owner in now.teachers and r.runs == 0 and not r.status)]  # the teacher, who trains nothing
    training = sum(r.status in ("running", "paused", "starting") for r in rows)
    waiting = sum(r.status.startswith("waiting") or r.status == "queued" for r in rows)
    done = sum(item.status in ("finished", "early-stopped") for item in runs)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Students", len(rows), border=True)
    c2.metric("Training now", training, border=True)
    c3.metric("Waiting for a slot", waiting, border=True)
    c4.metric("Runs finished", f"{done} of {len(runs)}", border=True)
    if not rows:
        st.caption("Nobody yet: students appear here as soon as they open the app.")
    else:
        st.markdown("**Each student's latest run**")
        _board_table(rows)
    st.caption(f"Updated {time.strftime('%H:%M:%S')}; redrawn every {BOARD_SECONDS} s.")

    plane(runs, students)


def plane(runs: list[board.ClassRun], students: dict[str, dict]) -> None:
    """The class's runs in the rate–distortion plane, one chart per dataset. Redrawn live, a chart whose runs
    changed is drawn anew (st.plotly_chart), losing its zoom: the teacher can hold it still."""
    st.markdown("**The class in the rate–distortion plane** · each run's path over its epochs (validation KL "
                "against reconstruction); the star is its latest epoch")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    with left:
        by = st.segmented_control("Colour by", list(board.COLOUR_BY), format_func=board.COLOUR_BY.get,
                                  default="beta", key="class_colour_by") or "beta"
    live = right.toggle("Redraw live", value=True, key="class_plane_live",
                        help="Turn it off to hold the charts still: to zoom in, or to save a PNG of this moment.")
    if live or HELD not in st.session_state:
        st.session_state[HELD] = (runs, students, time.strftime("%H:%M:%S"))
    runs, students, held_at = st.session_state[HELD]
    shown = _plane_runs(runs, students, by)
    if not shown:
        st.caption("No run has finished an epoch yet.")
        return
    charts = class_plane.class_rate_distortion_figures(shown, board.COLOUR_BY[by], log_colour=by in LOG_COLOUR)
    columns = st.columns(min(len(charts), 2))
    for i, (dataset, figure) in enumerate(charts.items()):
        with columns[i % len(columns)]:
            name = "class-rate-distortion-" + re.sub(r"[^A-Za-z0-9]+", "-", dataset)[:40]
            st.plotly_chart(figure, key=f"class_plane_{dataset}", config={"toImageButtonOptions": {
                "format": "png", "filename": name, "width": 1200, "height": 800, "scale": 2}})
    colours = ("dark to light as the setting grows, on a log scale that every chart shares"
               if by in LOG_COLOUR else "one colour per lesson, alike in every chart")
    st.caption(("" if live else f"Held still: the runs as they were at {held_at}. ")
               + f"Colours: {colours}, readable with colour blindness. Each dataset has a chart of its own (their "
                 "losses are on scales of their own). To save a chart as a PNG, point at it and press the camera "
                 "icon at its top right.")


# --- hand-ins ---------------------------------------------------------------------------------------------------
def assignments(classroom) -> None:
    now = classroom.room()
    st.markdown("**Open assignments** · students hand a run in for one of these from their Explore page")
    if now.assignments:
        for name in now.assignments:
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.text(name)
            if right.button("Close", key=f"close_{name}", icon=":material/close:", width="stretch"):
                classroom.close_assignment(name)
                st.rerun()
    else:
        st.caption("None open.")
    with st.form("open_assignment", border=False):
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        name = left.text_input("New assignment", placeholder="e.g. Find the β where KL collapses",
                               max_chars=TITLE_MAX, key="assignment_name")
        if right.form_submit_button("Open", icon=":material/add:", width="stretch"):
            try:
                classroom.open_assignment(name)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.rerun()


def _open_in_explore(name: str) -> None:
    st.session_state["explore_scope"] = "class"
    st.session_state["explore_run"] = name
    st.switch_page("pages/explore.py")


def _open_in_compare(names: list[str]) -> None:
    st.session_state["compare_scope"] = "class"
    st.session_state["compare_runs"] = names
    st.switch_page("pages/compare.py")


def hand_in_card(item: board.ClassRun, students: dict[str, dict]) -> None:
    with st.container(border=True):
        name = students.get(item.card["owner"], {}).get("name") or cards.UNOWNED
        title = item.card["title"] or (cards.describe(item.run.config) if item.run else item.name)
        st.markdown(f"**{text.plain(name)}** · {text.plain(title)}")
        last = item.last
        facts = [f"handed in {item.card['handed_in']['at']}", STATUS_WORDS.get(item.status, item.status)]
        if item.run:
            facts.append(cards.describe(item.run.config))
        if "val_neg_elbo" in last:
            facts.append(f"val −ELBO {last['val_neg_elbo']:.2f}")
        st.caption(" · ".join(text.plain(f) for f in facts))
        if item.card["note"]:
            st.text(f"Note: {item.card['note']}")
        left, right = st.columns(2)
        if left.button("Open in Explore", key=f"explore_{item.name}", icon=":material/travel_explore:",
                       width="stretch", disabled=item.run is None):
            _open_in_explore(item.name)
        if right.button("Open in Compare", key=f"compare_{item.name}", icon=":material/compare:", width="stretch",
                        disabled=item.run is None):
            _open_in_compare([item.name])
        with st.form(f"feedback_{item.name}", border=False):
            written = st.text_area("Feedback (the student sees it with the run)", item.card["feedback"],
                                   max_chars=NOTE_MAX, height=90, key=f"feedback_text_{item.name}")
            if st.form_submit_button("Save feedback", icon=":material/save:"):
                try:
                    cards.give_feedback(run_path(session.runs_dir(), item.name), session.actor(), written)
                except (cards.NotAllowed, FileNotFoundError, RunError) as exc:
                    st.error(str(exc))
                else:
                    st.toast("Feedback saved.", icon=":material/check:")


def hand_ins(classroom) -> None:
    now = classroom.room()
    with st.container(border=True):
        assignments(classroom)
    period = shown_period(now)
    if not period["id"]:
        st.info("Hand-ins are listed per class session: start one above.", icon=":material/info:")
        return
    students = classroom.students()
    handed = board.hand_ins(session.runs_dir(), period["id"])
    if not handed:
        st.caption("No run handed in during this class session yet.")
        return
    groups: dict[str, list[board.ClassRun]] = {}
    for item in handed:
        groups.setdefault(item.card["handed_in"]["assignment"], []).append(item)
    order = [a for a in now.assignments if a in groups] + sorted(a for a in groups if a not in now.assignments)
    for assignment in order:
        items = groups[assignment]
        heading = assignment or "Handed in without an assignment"
        closed = " (closed)" if assignment and assignment not in now.assignments else ""
        left, right = st.columns([4, 1.4], vertical_alignment="bottom")
        left.subheader(f"{text.plain(heading)}{closed} · {len(items)} run{'s' if len(items) != 1 else ''}",
                       anchor=False)
        names = [item.name for item in items if item.run is not None]
        if len(names) > 1 and right.button(f"Compare all {len(names)}", key=f"compare_all_{assignment}",
                                           icon=":material/compare:", width="stretch"):
            _open_in_compare(names)
        columns = st.columns(2)
        for i, item in enumerate(items):
            with columns[i % 2]:
                hand_in_card(item, students)


# --- data -----------------------------------------------------------------------------------------------------
def data(classroom) -> None:
    now = classroom.room()
    left, right = st.columns(2, border=True)
    with left:
        st.markdown("**Class summary** · one row per run of this class session: student name, title, settings, "
                    "final metrics, hand-in. No tokens or ids.")
        period = shown_period(now)
        if period["id"]:
            runs = board.class_runs(session.runs_dir(), period["id"])
            day = time.strftime("%Y-%m-%d", time.localtime(period["started"]))
            st.download_button("Download the summary (CSV)", board.summary_csv(runs, classroom.students()),
                               file_name=f"vae-lab-class-{day}-{period['id']}.csv", mime="text/csv",
                               icon=":material/download:", disabled=not runs)
            if not runs:
                st.caption("No run in this class session yet.")
        else:
            st.caption("Start a class session first.")
    with right:
        days = limits.current().keep_days
        st.markdown("**Room on the disk**")
        st.caption(f"Deleted runs wait in the trash. The retention rule deletes the runs that have been in the trash "
                   f"for more than {days} days, and moves to the trash the runs of earlier class sessions "
                   f"({len(now.archived)} so far) that are older than {days} days (VAE_LAB_KEEP_DAYS sets the days).")
        a, b = st.columns(2)
        if a.button("Apply the retention rule", icon=":material/auto_delete:", width="stretch"):
            done = quotas.apply_retention(session.runs_dir(), {p.get("id") for p in now.archived})
            st.session_state.class_disk = (f"Deleted {done['emptied']} run(s) from the trash and moved "
                                           f"{done['archived_to_trash']} run(s) of archived sessions to the trash.")
        if b.button("Empty the trash", icon=":material/delete_forever:", width="stretch"):
            st.session_state.class_empty_asked = True
        if st.session_state.get("class_empty_asked"):
            st.warning("Delete every run in the trash for good?", icon=":material/warning:")
            yes, no, _ = st.columns([1, 1, 2])
            if yes.button("Yes, empty it", type="primary"):
                gone = quotas.empty_trash(session.runs_dir())
                st.session_state.class_empty_asked = False
                st.session_state.class_disk = f"Deleted {gone} run(s) from the trash."
                st.rerun()
            if no.button("Cancel", key="empty_cancel"):
                st.session_state.class_empty_asked = False
                st.rerun()
        if "class_disk" in st.session_state:
            st.success(st.session_state.pop("class_disk"))


# --- the page ---------------------------------------------------------------------------------------------------
def board_tab(classroom) -> None:
    fragments.fragment(live_board, BOARD_SECONDS)()


TAB = "class_tab"  # session key of the open tab
TABS = {"Board": board_tab, "Hand-ins": hand_ins, "Steer the class": steer, "Data": data}


def page() -> None:
    st.title("Class")
    if not room.key_set():
        no_key()
        return
    classroom = session.classroom()
    if not classroom.is_teacher(session.owner()):
        sign_in()
        return
    period_bar(classroom)
    # Only the open tab runs: the board's timer does not redraw it behind another tab.
    tabs = st.tabs(list(TABS), key=TAB, on_change="rerun")
    for tab, draw in zip(tabs, TABS.values()):
        if tab.open:
            with tab:
                draw(classroom)


page()
