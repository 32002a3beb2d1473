"""Train: settings in the sidebar; Start, Pause, Resume, Stop, Reset; the run drawn live while it trains."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.ui import charts, code_view, datasets, draft, fragments, live_view, presenter, router, session, text
from pages.ui.datasets import dataset_label
from pages.ui.settings import LOCKED, collect, settings
from vae_core import bundles, runs
from vae_core.classroom import policy
from vae_core.classroom.quotas import QuotaError
from vae_core.classroom.room import Pushed
from vae_core.config import RANGES, ConfigError, TrainConfig, check_compatible
from vae_core.controls import silenced
from vae_core.data import DATASETS, DataError, Dataset
from vae_core.jobs.backends import Job
from vae_core.views import figures, theory
from vae_core.views.lessons import LESSONS, Lesson

router.require_router()


# --- the dataset --------------------------------------------------------------------------------
def selected_data(name: str) -> Dataset | None:
    """The chosen dataset, or None after saying, outside any panel, why it cannot be had and how to get it."""
    if not datasets.available(name):
        datasets.explain_missing(name)
        return None
    try:
        with st.spinner(f"Loading {dataset_label(name)}…" if datasets.found_here(name) else
                        f"Downloading {dataset_label(name)} (the first time only)…"):
            return session.dataset(name)
    except DataError as exc:
        if not datasets.found_here(name):  # the download failed
            datasets.explain_missing(name, failed=str(exc))
        else:
            st.error(f"{dataset_label(name)} cannot be used: {exc}", icon=":material/error:")
        return None


def dataset_preview(name: str, data: Dataset) -> None:
    info = DATASETS.get(name)
    about, picture = st.columns([2, 3], vertical_alignment="center")
    shape = ("×".join(map(str, data.sample_shape[1:])) + (" grey" if data.sample_shape[0] == 1 else " RGB")
             if data.is_image else "2-D points")
    about.markdown(f"**{text.plain(dataset_label(name))}** · {shape}  \n{info.description if info else ''}")
    about.caption(f"{len(data.train):,} training · {len(data.val):,} validation · {len(data.test):,} test samples"
                  + (f"  \nLabels: {text.plain(', '.join(data.class_names))}" if data.class_names else ""))
    if data.is_image:
        caption = "The first training samples"
        if data.train_labels is not None and data.class_names:
            labels = data.train_labels[:16].tolist()
            caption += ", labelled " + text.plain(", ".join(data.class_names[k] for k in labels))
        with picture:
            charts.image(figures.mosaic(data.train[:16].numpy(), cols=8,
                                        scale=figures.tile_scale(data.sample_shape[-1], 64)), caption)
    else:
        points = data.train[:1000].numpy()
        picture.plotly_chart(figures.latent_figure(points, data.train_labels[:1000].numpy(), data.class_names,
                                                   ("x₁", "x₂"), revision="preview", height=260),
                             key="preview_points")


# --- controls -------------------------------------------------------------------------------------
def _start() -> None:
    """Start a run of the settings as the widgets hold them now: a value typed just before the click counts
    (arguments bound to the button would be those of the page's last run)."""
    st.session_state.confirm = None
    config, error = collect()
    try:
        if error:
            raise ConfigError(error)
        data = session.dataset(config.dataset)
        check_compatible(config, data.is_image)
    except (ConfigError, DataError) as exc:
        st.session_state.start_error = str(exc)
        return
    upload = data if data.name not in DATASETS else None
    lesson, side = lesson_run(config) or (None, "")
    try:
        job = session.start_run(config, upload, title=f"{lesson.title}: {side}" if lesson else "",
                                lesson=lesson.key if lesson else "")
    except (ConfigError, QuotaError) as exc:
        st.session_state.start_error = str(exc)
        return
    st.session_state.start_error = None
    st.session_state.live_lr, st.session_state.live_beta = config.lr, config.beta
    st.session_state[live_view.PAUSED] = (job.id, False)


def _pause(job: Job) -> None:
    job.pause()
    st.session_state[live_view.PAUSED] = (job.id, True)  # a queued job starts paused


def _resume(job: Job) -> None:
    job.resume()
    st.session_state[live_view.PAUSED] = (job.id, False)


def _stop(job: Job) -> None:
    job.stop()
    st.session_state.stopping = job.id  # it ends within a step; meanwhile the page treats it as ended


def _ask(action: str) -> None:
    st.session_state.confirm = action


def _cancel() -> None:
    st.session_state.confirm = None


def _reset() -> None:
    session.clear()
    st.session_state.confirm = None


def controls(job: Job | None, config: TrainConfig | None, data) -> None:
    """Start, Pause, Resume, Stop, Reset: their states change only through full reruns (clicks, a run's end).
    While a run trains, Pause (or Resume) and Stop stand out, and Restart and Reset ask first: either would
    end the run in one click."""
    alive = live_view.training(job) and st.session_state.get("stopping") != job.id
    paused = alive and live_view.is_paused(job.state())
    can_start = config is not None and data is not None
    cols = st.columns(5)
    if alive:
        cols[0].button("Restart", key="start", icon=":material/play_arrow:", width="stretch", disabled=not can_start,
                       on_click=_ask, args=("restart",), help="Stop this run and start a new one (asks first).")
    else:
        cols[0].button("Start", key="start", type="primary", icon=":material/play_arrow:", width="stretch",
                       disabled=not can_start, on_click=_start)
    cols[1].button("Pause", key="pause", icon=":material/pause:", width="stretch", disabled=not alive or paused,
                   type="primary" if alive and not paused else "secondary", on_click=_pause, args=(job,))
    cols[2].button("Resume", key="resume", icon=":material/resume:", width="stretch", disabled=not paused,
                   type="primary" if paused else "secondary", on_click=_resume, args=(job,))
    cols[3].button("Stop", key="stop", icon=":material/stop:", width="stretch", disabled=not alive,
                   type="primary" if alive else "secondary", on_click=_stop, args=(job,))
    cols[4].button("Reset", key="reset", icon=":material/restart_alt:", width="stretch", disabled=job is None,
                   on_click=_ask if alive else _reset, args=("reset",) if alive else (),
                   help="Stop the run and clear this view" + (" (asks first)." if alive else "."))
    asked = st.session_state.get("confirm") if alive else None
    if asked:
        view = job.view()
        what = ("stops it and starts a new run with the settings on the left" if asked == "restart"
                else "stops it and clears this view")
        st.warning(f"This run is still training ({view.epoch} of {view.epochs} epochs done). {asked.title()} {what}; "
                   "what it has learnt so far stays saved and can be opened in Explore.", icon=":material/warning:")
        yes, keep, _ = st.columns([1, 1, 3])
        yes.button(f"Yes, {asked}", key="confirm_yes", type="primary", width="stretch",
                   on_click=_confirmed, args=(asked,))
        keep.button("Keep training", key="confirm_no", width="stretch", on_click=_cancel)


def _confirmed(action: str) -> None:
    if action == "restart":
        _start()
    else:
        _reset()


def live_controls(job: Job | None) -> None:
    """Change the learning rate and β of the running job (always shown, so the layout stays put)."""
    alive = live_view.training(job)
    source = job.config if alive else draft.draft_config()
    if not alive or "live_lr" not in st.session_state:  # idle: show what Start would use
        st.session_state.live_lr, st.session_state.live_beta = source.lr, source.beta

    locked = st.session_state.get(LOCKED, {})  # the class's locks hold while it trains too

    def apply():
        asked = []
        if "lr" not in locked:
            job.set_lr(st.session_state.live_lr)
            asked.append(f"learning rate {st.session_state.live_lr:g}")
        if "beta" not in silenced(job.config) and "beta" not in locked:
            job.set_beta(st.session_state.live_beta)
            asked.append(f"β {st.session_state.live_beta:g}")
        when = ("when you press Resume (the run is paused)" if live_view.is_paused(job.state())
                else "from the next training step")
        st.toast(f"Applied: {' and '.join(asked)}, {when}. The loss chart marks the change.",
                 icon=":material/check_circle:")

    with st.form("live", border=False):
        label, a, b, c = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
        label.markdown("**While it trains:**")
        a.number_input("Learning rate", *RANGES["lr"], format="%g", key="live_lr", disabled=not alive or "lr" in locked,
                       help="Locked by your teacher for this class." if "lr" in locked else None)
        unused = silenced(source).get("beta")
        b.number_input("β", *RANGES["beta"], format="%g", key="live_beta",
                       disabled=not alive or unused is not None or "beta" in locked,
                       help="Locked by your teacher for this class." if "beta" in locked else
                       f"Not used: {unused.reason}." if unused else theory.help_with_formulas("beta"))
        c.form_submit_button("Apply to the running job", on_click=apply, width="stretch", disabled=not alive)


def downloads(job: Job) -> None:
    view = job.view()
    if not view.status.ended or not view.run_dir:
        return
    a, b, _ = st.columns([1, 1, 2])
    name = Path(view.run_dir).name
    a.download_button("Download the run (zip)", lambda: bundles.bundle(view.run_dir, private=True), f"{name}.zip",
                      "application/zip", icon=":material/download:", on_click="ignore", width="stretch")  # on click
    b.download_button("Download metrics (CSV)", runs.metrics_csv(view.epoch_history, view.score),
                      f"{name}-metrics.csv", "text/csv", icon=":material/table:", on_click="ignore", width="stretch")


def lesson_run(config: TrainConfig | None) -> tuple[Lesson, str] | None:
    """The lesson loaded into the settings and the side of it they are, while they are unchanged (but for the
    class's rules, such as an epoch cap)."""
    key = st.session_state.get("lesson")
    lesson = next((item for item in LESSONS if item.key == key), None)
    room = session.classroom().room()
    label = next((label for label, run in lesson.runs if config in (run, policy.fit_to(run, room))), None) \
        if lesson and config else None
    return (lesson, label) if label else None


def lesson_banner(config: TrainConfig | None) -> None:
    found = lesson_run(config)
    if found:
        lesson, label = found
        st.info(f"**Lesson: {lesson.title}** ({label})  \n{lesson.claim}  \n*Look at:* {lesson.look_for}",
                icon=":material/school:")


def _load_sent(pushed: Pushed) -> None:
    configs = pushed.configs()
    draft.load_config(configs[0], lesson=pushed.lesson or None)
    st.session_state.loaded_push = pushed.id


def teacher_offer() -> None:
    """What the teacher sent the class, offered with one click until this student loads it."""
    pushed = session.classroom().room().pushed
    if pushed is None or st.session_state.get("loaded_push") == pushed.id or not pushed.configs():
        return
    what = "a lesson" if pushed.lesson else "settings"
    text_col, button_col = st.columns([4, 1], vertical_alignment="center")
    text_col.info(f"Your teacher sent {what}: **{text.plain(pushed.label)}**", icon=":material/campaign:")
    button_col.button("Load it", key="load_push", type="primary", icon=":material/download:", width="stretch",
                      on_click=_load_sent, args=(pushed,))


def page() -> None:
    st.title("Train a VAE")
    job = session.job()
    every = live_view.redraw_every(job)
    if presenter.bar(job):  # the projector shows the run; the settings stay as they are, unseen
        config, error = draft.draft_config(), None
    else:
        with st.sidebar:
            config, error = settings()
    data = None
    with st.container():  # what comes and goes sits in one block, so the live fragment below keeps its place
        for warning in st.session_state.pop("url_warnings", []):
            st.warning(f"Ignored a setting from the link, using its default instead: {warning}")
        if error:
            st.error(f"Invalid setting — {error}", icon=":material/error:")
        else:
            draft.sync_query(config)
        if config is not None:
            datasets.installed_note(config.dataset)
            data = selected_data(config.dataset)
            if data is not None:
                with st.expander("Dataset", expanded=job is None, icon=":material/dataset:"):
                    dataset_preview(config.dataset, data)
                try:
                    check_compatible(config, data.is_image)
                except ConfigError as exc:
                    st.error(f"Invalid setting for this dataset — {exc}", icon=":material/error:")
                    data = None
        lesson_banner(config)
        teacher_offer()
        if st.session_state.get("start_error"):
            st.error(f"Not started — {st.session_state.start_error}", icon=":material/block:")
    controls(job, config, data)
    live_controls(job)
    st.session_state[live_view.WHOLE_PAGE_RERUN] = True
    selected = st.session_state[draft.DRAFT]["dataset"]  # as chosen, even while another setting is invalid
    fragments.fragment(live_view.run_panel, every)(config or draft.draft_config(), data, every, selected)
    if job is not None and job.config.dataset == selected:  # another dataset's run is not shown: nor its files
        downloads(job)
    code_view.show(config, data)


page()
