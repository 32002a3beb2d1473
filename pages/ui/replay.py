"""A run's replay on a page: its latent scatter, reconstructions and prior samples epoch by epoch, with Play and an
epoch slider. One Plotly figure whose frames play in the browser (vae_core/views/replay.py): playing or sliding
reruns nothing on the server, where a slider widget and a timer would rerun the page at every epoch shown."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.ui import session
from vae_core import runs
from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.jobs import replay
from vae_core.jobs.state import JobView
from vae_core.views.replay import replay_figure

TITLE = "Replay: how the latent space formed"
NONE_KEPT = ("Replay is not available for this run: it was saved before VAE Lab kept replays, or before it "
             "finished an epoch.")


def section(run_dir: str | Path | None, epochs_done: int | None, config: TrainConfig, data: Dataset,
            key: str) -> None:
    """The replay of the run saved in `run_dir`, up to `epochs_done`, or why there is none."""
    st.subheader(TITLE)
    if run_dir is None:
        st.info("Replay is not available for this run: its run folder could not be saved.", icon=":material/info:")
        return
    try:
        figure = _figure(str(run_dir), _stamp(Path(run_dir)), epochs_done, data.class_names, config.latent_dim,
                         config.mode == "vae")
    except runs.RunError as exc:
        st.warning(f"The replay cannot be shown: {exc}.", icon=":material/warning:")
        return
    if figure is None:
        st.info(NONE_KEPT, icon=":material/info:")
        return
    st.caption("Press Play, or drag the slider, to see the latent space, the reconstructions and the samples as "
               "they were at the end of each epoch (epoch 0: before training). The same validation points and "
               "prior draws in every frame, on fixed axes: the points move as the model learns.")
    st.plotly_chart(figure, key=f"replay-{key}", config={"displaylogo": False})


def explore_section(run_key: str, config: TrainConfig, data: Dataset) -> None:
    """Explore's replay of the run it shows: this session's run (`run_key` "current-<id>-<step>") or a saved
    run's (`run_key` its folder's name)."""
    job = session.job()
    if job is not None and run_key.startswith(f"current-{job.id}-"):
        state = job.state()
        section(state.run_dir, state.epoch, config, data, "explore-current")
        return
    try:
        run = runs.load_run(runs.run_path(session.runs_dir(), run_key), steps=False)
    except runs.RunError as exc:
        st.subheader(TITLE)
        st.warning(f"The replay cannot be shown: {exc}.", icon=":material/warning:")
        return
    section(run.path, run.meta.get("epochs_done"), config, data, f"explore-{run_key}")


def after_run(view: JobView | None, config: TrainConfig, data: Dataset) -> None:
    """The Train page's replay, once the run has ended (while it trains, the live view redraws too often for a
    player)."""
    if view is not None and view.status.ended:
        section(view.run_dir, view.epoch, config, data, f"train-{view.id}")


def _stamp(run_dir: Path) -> tuple[int, int]:
    """The replay file's version (time and size), so a replay that grew is drawn again."""
    try:
        stat = (run_dir / replay.REPLAY).stat()
        return stat.st_mtime_ns, stat.st_size
    except OSError:
        return 0, 0


@st.cache_data(max_entries=8, show_spinner=False)
def _figure(run_dir: str, stamp: tuple[int, int], epochs_done: int | None, class_names: tuple[str, ...] | None,
            latent_dim: int, prior: bool) -> dict | None:
    """The replay's figure, once per version of its file; None when the run has no replay."""
    kept = replay.load(run_dir, epochs_done)
    if kept is None:
        return None
    axes = ("PC 1", "PC 2") if latent_dim > 2 else ("z₁", "z₂" if latent_dim == 2 else "")
    return replay_figure(kept, class_names, axes, prior=prior, revision=f"replay-{Path(run_dir).name}")
