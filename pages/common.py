"""What the pages share: this browser session's id and work, the Train page's settings, the URL form of a config."""

from __future__ import annotations

import dataclasses
import functools
import math
import uuid
from pathlib import Path

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

from vae_core import figures, runs, sessions
from vae_core.config import ConfigError, TrainConfig
from vae_core.data import Dataset, dataset_names, load_dataset
from vae_core.job import TrainingJob
from vae_core.models import VAE
from vae_core.schedules import warm_up
from vae_core.sessions import JobSeries
from vae_core.trainer_process import RemoteJob, default_trainer, use_trainer_process

TRAIN_PAGE = "pages/train.py"
COMPARE_PAGE = "pages/compare.py"
UPLOAD = "upload"  # session key of the Dataset this session uploaded
DRAFT = "draft"  # the Train page's settings as a dict, kept while other pages show
WIDGET = "cfg_"  # widget key prefix: "cfg_beta" holds the beta field
FIELDS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
DEFAULTS = TrainConfig().to_dict()
Job = TrainingJob | RemoteJob  # one run, trained on a thread here or in the trainer process


# --- routing -----------------------------------------------------------------------------------
def pages() -> list[st.Page]:
    """The app's pages for st.navigation; the first, Train, is the default."""
    return [st.Page(TRAIN_PAGE, title="Train", icon=":material/model_training:", default=True),
            st.Page("pages/explore.py", title="Explore", icon=":material/travel_explore:"),
            st.Page(COMPARE_PAGE, title="Compare", icon=":material/compare:"),
            st.Page("pages/learn.py", title="Learn", icon=":material/school:")]


def frame() -> st.Page:
    """What every run does before its page: page setup, this session's first-run setup, navigation.
    Returns the page to run."""
    st.set_page_config(page_title="VAE Lab", page_icon=":material/blur_on:", layout="wide")
    st.cache_resource(show_spinner=False)(warm_up)()
    if use_trainer_process():
        st.cache_resource(show_spinner=False)(default_trainer)()  # started with the server, not on first Start
    init_session()
    return st.navigation(pages(), position="top")


def require_router() -> None:
    """Send a session's first run through app.py. Until some run in the process has called st.navigation,
    Streamlit treats a folder named pages/ the old way and runs a requested page file alone (a fresh
    server's first visit to /learn, say): set the frame up, which ends that, and run again."""
    if DRAFT not in st.session_state:
        frame()
        st.rerun()


# --- the session --------------------------------------------------------------------------------
def session_id() -> str:
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    return st.session_state.session_id


def init_session() -> None:
    """First run of a browser session: settings from the URL (warnings kept for the Train page)."""
    touch()
    if DRAFT not in st.session_state:
        config, warnings = config_from_query(st.query_params.to_dict())
        load_config(config)
        st.session_state.url_warnings = warnings


def touch() -> None:
    """Tell the registry this browser session is still here, and how to ask whether its tab is still open."""
    sessions.registry().touch(session_id(), connected=_connection_probe())


def fragment(body, run_every: float | None):
    """st.fragment(run_every=run_every)(body), whose every run also sends the browser the fragment's timer.

    Streamlit sends a fragment's timer (an auto_rerun message) only from whole-page runs, and the browser
    drops every timer when a whole-page run starts. When runs pile up (30 students pressing Start at once),
    a whole-page run's timer can go missing (a run's start clears the session's outgoing queue of all but
    lifecycle messages), and the page stopped redrawing (bench/README.md, "A page that stops redrawing").
    Sent from every run of the fragment, the timer comes back with the next one; the browser ignores a
    timer it already has. (Streamlit internals, pinned at 1.67.0.) The fragment keeps body's name, and so
    its identity."""
    @functools.wraps(body)
    def timed(*args, **kwargs):
        ctx, fragment_id = get_script_run_ctx(), ThreadState.get().fragment_id
        if run_every is not None and ctx is not None and fragment_id is not None:
            msg = ForwardMsg()
            msg.auto_rerun.interval, msg.auto_rerun.fragment_id = run_every, fragment_id
            ctx.enqueue(msg)
        return body(*args, **kwargs)
    return st.fragment(run_every=run_every)(timed)


def _connection_probe():
    """Whether this session's browser tab is still connected to the server (None where there is no server:
    AppTest). A busy server may leave a tab's page unrun for longer than the grace period; its open
    connection still keeps its work."""
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, streamlit_session = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(streamlit_session)


def work() -> Job | JobSeries | None:
    return sessions.registry().get(session_id())


def job() -> Job | None:
    """This session's single training run, if that is its current work."""
    current = work()
    return None if isinstance(current, JobSeries) else current


def new_job(config: TrainConfig, data: Dataset | None = None) -> Job:
    """A run of `config` (on `data`, an upload, else the built-in dataset it names), saved in the runs
    folder: trained in the server's trainer process, or on a thread here when $VAE_LAB_TRAINER says so."""
    kind = RemoteJob if use_trainer_process() else TrainingJob
    return kind(config, data, runs_dir=runs_dir())


def start(new_work: Job | JobSeries) -> None:
    """Start work for this session, stopping whatever it was doing."""
    sessions.registry().start(session_id(), new_work)


def start_series(configs: list[TrainConfig], labels: list[str]) -> None:
    """Train several runs one after another in the background; the Compare page follows them and selects
    their runs once the series has ended."""
    start(JobSeries(configs, labels, new_job=new_job))
    st.session_state.series_shown = False


def clear() -> None:
    """Stop this session's work and forget it."""
    sessions.registry().clear(session_id())


def runs_dir():
    return runs.default_runs_dir()


# --- data and models ----------------------------------------------------------------------------
def dataset(name: str) -> Dataset:
    """This session's upload of that name, else the built-in dataset (DataError when it cannot be had)."""
    upload = st.session_state.get(UPLOAD)
    return upload if upload is not None and upload.name == name else load_dataset(name)


def saved_model(run: runs.SavedRun) -> VAE:
    """A saved run's model, loaded once per version of its weights and shared by every session."""
    return _load_model(str(run.path), str(run.meta.get("saved_at")))


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_model(path: str, saved_at: str) -> VAE:
    return runs.load_run(path).load_model()


def describe(config: TrainConfig) -> str:
    """A run's settings in a few words: "digits · VAE · z2 · β 4"."""
    return (f"{config.dataset.removeprefix('upload:')} · {config.mode.upper()} · z{config.latent_dim}"
            + (f" · β {config.beta:g}" if config.mode == "vae" else ""))


# --- drawing -------------------------------------------------------------------------------------
# st.plotly_chart gives a chart a new identity whenever its figure changes, so a chart redrawn while
# training is remounted on every poll: it blinks and forgets the user's zoom. This component keeps one
# element and updates it with Plotly.react, which honours the figure's uirevision. Half a second after its
# first draw it imports Streamlit's own plotly.js bundle, the module st.plotly_chart loads (the same URL,
# so the same module where a page has both), and draws once window.Plotly is set, trying again (a failed
# import too) for up to a minute.
# Given `images` (a data URI per point index, the points' customdata), the point under the pointer is
# shown beside it, its image above its trace's name and index (instead of Plotly's label); with `pick`,
# a click on a point sends its index (trigger "pick").
_LIVE_JS = """
const loadPlotly = (src) => {
  if (!window.vaeLabPlotly && src) {
    window.vaeLabPlotly = import(new URL(src, document.baseURI).href).catch(() => { window.vaeLabPlotly = null; });
  }
};

const listen = (plot) => {
  const box = plot.parentElement.querySelector(".vae-lab-hover");
  const img = box.querySelector("img"), label = box.querySelector("span");
  const index = (pt) => (Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata);
  plot.on("plotly_hover", (event) => {
    const pt = (event.points || []).find((p) => p.customdata !== undefined);
    if (!pt || !plot.vaeImages) { box.style.display = "none"; return; }
    const src = plot.vaeImages[index(pt)];  // null past the size cap: the label alone
    img.style.display = src ? "block" : "none";
    if (src) img.src = src;
    label.textContent = `${pt.data.name} · #${index(pt)}`;
    box.style.display = "block";
    // Beside the point (left of it where there is room), kept inside the plot area.
    const xa = pt.xaxis, ya = pt.yaxis, w = box.offsetWidth, h = box.offsetHeight;
    const px = xa._offset + xa.l2p(pt.x), py = ya._offset + ya.l2p(pt.y);
    const left = px - w - 12 >= xa._offset ? px - w - 12 : px + 12;
    box.style.left = `${left}px`;
    box.style.top = `${Math.min(Math.max(py - h / 2, ya._offset), ya._offset + ya._length - h)}px`;
  });
  plot.on("plotly_unhover", () => { box.style.display = "none"; });
  plot.parentElement.addEventListener("mouseleave", () => { box.style.display = "none"; });
  plot.on("plotly_click", (event) => {
    const pt = (event.points || []).find((p) => p.customdata !== undefined);
    if (pt && plot.vaePick) plot.vaePick("pick", index(pt));
  });
};

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let plot = parentElement.querySelector(".vae-lab-live-plot");
  if (!plot) {
    const wrap = document.createElement("div");
    wrap.style.position = "relative";
    wrap.innerHTML = '<div class="vae-lab-live-plot"></div>'
      + '<div class="vae-lab-hover" style="display:none;position:absolute;z-index:10;pointer-events:none;'
      + 'background:white;border:1px solid #c8d4e3;border-radius:4px;padding:4px;text-align:center;'
      + 'box-shadow:0 2px 6px rgba(0,0,0,.2);font-size:12px;color:#2a3f5f">'
      + '<img alt="the sample under the pointer" style="display:block;width:96px;height:96px;'
      + 'object-fit:contain;image-rendering:pixelated">'
      + '<span></span></div>';
    parentElement.appendChild(wrap);
    plot = wrap.querySelector(".vae-lab-live-plot");
  }
  plot.vaeImages = data.images || null;  // read by the handlers at each event: the latest data's
  plot.vaePick = data.pick ? setTriggerValue : null;
  const figure = JSON.parse(data.figure);
  if (data.images) {  // the box above names the point: no Plotly label as well (hover events still fire)
    figure.data.forEach((trace) => {
      if (trace.customdata) { trace.hoverinfo = "none"; delete trace.hovertemplate; }
    });
  }
  const draw = (tries) => {
    if (window.Plotly) {
      window.Plotly.react(plot, figure.data, figure.layout,
                          {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]})
        .then(() => { if (!plot.vaeListening) { plot.vaeListening = true; listen(plot); } });
    } else if (tries > 0) {
      if (tries <= 1190) loadPlotly(data.plotly);  // after the page's first paint: parsing it takes a while
      setTimeout(() => draw(tries - 1), 50);
    }
  };
  draw(1200);
}
"""
_live_plot = st.components.v2.component("vae_lab_live_plot", js=_LIVE_JS, isolate_styles=False)
# Streamlit's own plotly.js bundle (sets window.Plotly when loaded), as a path below the app's address
_PLOTLY_JS = next((f"static/js/{path.name}" for path in
                   (Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js")), None)


def live_chart(figure: figures.Figure, key: str, images: list[str | None] | None = None, on_pick=None) -> None:
    """A Plotly figure that is updated in place on every rerun (see _LIVE_JS); `key` names the element.

    `images`: a data URI (or None) per point index, shown when the pointer is over that point. `on_pick`:
    called when a point is clicked; its index is then `st.session_state[key].pick`."""
    data = {"figure": figures.to_json(figure), "plotly": _PLOTLY_JS}
    if images is not None:
        data["images"] = images
    if on_pick is None:
        _live_plot(data=data, key=key)
    else:
        _live_plot(data={**data, "pick": True}, key=key, on_pick_change=on_pick)


def image(array, caption: str | None = None) -> None:
    """A mosaic at its own pixel size (at most the container's width); the caption below does not widen it."""
    st.image(array, width="content")
    if caption:
        st.caption(caption)


# --- the Train page's settings ------------------------------------------------------------------
def load_config(config: TrainConfig, lesson: str | None = None) -> None:
    """Put a configuration into the Train page's widgets (and remember which lesson it came from)."""
    st.session_state[DRAFT] = config.to_dict()
    st.session_state.lesson = lesson
    for name in FIELDS:
        st.session_state.pop(WIDGET + name, None)


def draft_config() -> TrainConfig:
    """The Train page's settings as a config; the defaults where they are not valid."""
    try:
        return TrainConfig.from_dict(st.session_state.get(DRAFT, {}), strict=False)
    except ConfigError:
        return TrainConfig()


# --- the URL ------------------------------------------------------------------------------------
def config_to_query(config: TrainConfig) -> dict[str, str]:
    """The fields that differ from the defaults, as URL text."""
    out = {}
    for name, value in config.to_dict().items():
        if value != DEFAULTS[name]:
            out[name] = (",".join(map(str, value)) if isinstance(value, list)
                         else str(value).lower() if isinstance(value, bool) else str(value))
    return out


def _parse(name: str, text: str):
    kind = FIELDS[name]
    text = text.strip()
    if kind == "bool":
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if kind == "int":
        return int(text)
    if kind == "float":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    if kind == "list[int]":
        return [int(part) for part in text.split(",")]
    return text


def config_from_query(params: dict[str, str | list[str]]) -> tuple[TrainConfig, list[str]]:
    """A config from untrusted URL parameters: each bad value is named in a warning and left at its default."""
    values, warnings = {}, []
    for name, raw in params.items():
        if name not in FIELDS:
            continue
        text = raw[-1] if isinstance(raw, list) else raw
        try:
            values[name] = _parse(name, text)
        except ValueError as exc:
            warnings.append(f"{name}={text!r:.40}: {exc}")
    if "dataset" in values and values["dataset"] not in dataset_names():
        warnings.append(f"dataset={values.pop('dataset')!r:.40}: not a built-in dataset")
    while True:
        try:
            return TrainConfig.from_dict(values, strict=False), warnings
        except ConfigError as exc:
            field = str(exc).split(":", 1)[0]
            if field not in values:
                return TrainConfig(), warnings + [str(exc)]
            values.pop(field)
            warnings.append(str(exc))


def sync_query(config: TrainConfig) -> None:
    """Show the config in the URL (non-default fields only), writing only when it changed."""
    wanted = config_to_query(config)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
