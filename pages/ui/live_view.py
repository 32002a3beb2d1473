"""The Train page's live view: progress, metrics, losses, the latent space, images and KL, redrawn in a
fragment at a pace that follows the server's load."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from pages.ui import charts, replay, session, text
from pages.ui.datasets import dataset_label
from vae_core.config import TrainConfig
from vae_core.data import Dataset
from vae_core.jobs import backends, sessions
from vae_core.jobs.backends import Job
from vae_core.jobs.snapshots import N_IMAGES, Snapshot
from vae_core.jobs.state import JobView, RunState
from vae_core.maths import collapse, score
from vae_core.maths.objectives import kl_term_name
from vae_core.train import Status
from vae_core.views import figures, loss_chart, pacing

FIRST_STEP_WAIT = 0.6  # seconds a redraw may wait for a new run's first step, so it shows at once
WHOLE_PAGE_RERUN = "live_view_in_page_rerun"  # set while the live view is drawn as part of a whole-page rerun


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


PAUSED = "paused"  # session key: (job id, whether this tab paused it), for the buttons before the job says so


def is_paused(state: RunState) -> bool:
    """Whether the run is paused: as this tab asked until the job says so too (the job takes a moment,
    the buttons must not), then as the job says (whichever tab pauses or resumes it)."""
    asked = st.session_state.get(PAUSED)
    if isinstance(asked, tuple) and asked[0] == state.id and asked[1] != state.paused:
        return asked[1]
    st.session_state.pop(PAUSED, None)
    return state.paused


def progress(view: JobView | None, every: float | None) -> None:
    if view is None:
        st.progress(0.0, text="Ready: press Start to train. The charts below fill in as the model learns.")
        return
    if view.status == Status.QUEUED and not view.total_steps:  # before its model exists
        text = ("Loading the data and building the model…" if not view.queue_position else
                f"Waiting for the cluster: Ray starts the run when a CPU is free ({view.queue_position} of this "
                "server's runs wait)." if backends.kind() == "ray" else
                f"Waiting for a free training slot: you are number {view.queue_position} in the queue.")
        if is_paused(view):
            text += " Paused: it will not train until you press Resume."
        st.progress(0.0, text=text)
        return
    in_epoch = view.total_steps and view.step > view.epoch * view.total_steps / view.epochs  # a partial epoch
    epoch = min(view.epoch + bool(in_epoch), view.epochs)
    text = f"Epoch {epoch} of {view.epochs} · step {view.step:,} of {view.total_steps:,}"
    if view.device:  # where it trains (vae_core.devices)
        text += f" · on {view.device}"
    if view.status in (Status.RUNNING, Status.PAUSED, Status.QUEUED):
        text += f" · {_clock(view.eta)} left"
        if view.status == Status.QUEUED:  # resumed after a pause, which gave its slot to the queue
            text += " · waiting for a free training slot" + (
                f": number {view.queue_position} in the queue" if view.queue_position else "")
        if view.status == Status.PAUSED or (view.status == Status.QUEUED and is_paused(view)):
            text += " · paused"
        elif view.pace:
            text += f" · slow motion, {view.pace:g} s a step"
        if every and every > pacing.REDRAW_LEVELS[0]:
            text += f" · redrawn every {every:g} s while the server trains many runs"
    else:
        text += f" · took {_clock(view.elapsed)}"
    st.progress(min(1.0, view.progress), text=text)


def _metrics(view: JobView | None, config: TrainConfig) -> None:
    last = view.step_history[-1] if view and view.step_history else {}
    val = view.epoch_history[-1] if view and view.epoch_history else {}
    term = kl_term_name(config)
    cols = st.columns(6)
    cols[0].metric("Objective", f"{last['recon'] + last.get('kl_term', 0.0):.2f}" if last else "–",
                   help=f"What training minimises on the data: reconstruction + {term}" if term else
                   "What training minimises: the reconstruction (an autoencoder has no KL term)")
    cols[1].metric("Reconstruction", f"{last['recon']:.2f}" if last else "–")
    cols[2].metric("KL", f"{last['kl']:.2f}" if last else "–")
    cols[3].metric("Validation −ELBO", f"{val['val_neg_elbo']:.2f}" if val else "–")
    cols[4].metric("Learning rate", _short(view.lr if view else config.lr))
    if config.mode == "ae":
        cols[5].metric("β now", "–", help="An autoencoder has no KL term to weigh")
    elif config.capacity:  # β is not in this objective: its KL target is
        cols[5].metric("C now", _short(last.get("capacity", 0.0)) if last else "0",
                       help="The KL target of γ·|KL − C| at this step, in nats")
    else:
        cols[5].metric("β now", _short(view.beta_now if view else config.beta))
    if view is not None and view.status.ended and view.score:
        st.markdown(f"**Final score on the held-out test split** (lower is better): {score.describe(view.score)}.")


def _short(x: float) -> str:
    """A number that fits a metric's narrow column: 3 significant digits, or 2 and an exponent below 0.01
    (0.00198 reads 2e-3, where the column showed "0.00…")."""
    if x == 0 or abs(x) >= 0.01:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _collapse_warning(view: JobView, config: TrainConfig) -> None:
    """Warn when the code has collapsed (vae_core.maths.collapse), once the run has trained long enough to
    tell: early epochs of a healthy run look the same."""
    snap = view.snapshot
    if snap is None or not collapse.may_judge(config, snap.epoch, view.status.completed):
        return
    verdict = collapse.judge(snap.kl_per_dim, snap.latent_mu)
    if verdict.collapsed:
        st.warning(verdict.message + collapse.caveat(snap.epoch), icon=":material/warning:")


def _images(snap: Snapshot | None, data: Dataset, recon_box, samples_box) -> None:
    """Originals against reconstructions, and prior samples; grey tiles until the first snapshot."""
    if data.is_image:
        originals = data.val[:N_IMAGES].numpy() if snap is None else snap.originals
        blank = np.full_like(originals, 0.5)
        scale = figures.tile_scale(data.sample_shape[-1], 48)
        with recon_box:
            charts.image(figures.pair_mosaic(originals, blank if snap is None else snap.reconstructions, cols=8,
                                             scale=scale, labels=("original", "reconstruction")),
                         "Validation images and their reconstructions" + _when(snap))
        with samples_box:
            charts.image(figures.mosaic(blank if snap is None else snap.samples, cols=4, scale=scale),
                         "Decoded samples from the prior z ~ N(0, I)" + _when(snap))
        return
    empty = np.zeros((0, 2))
    with recon_box:
        st.markdown("**Data and reconstructions**" + _when(snap))
        originals = data.val[:300].numpy() if snap is None else snap.originals[:300]
        charts.live_chart(figures.points_figure(originals, empty if snap is None else snap.reconstructions[:300],
                                                "reconstructions", connect=True, revision="recon"), key="recon")
    with samples_box:
        st.markdown("**Data and samples from the prior**" + _when(snap))
        charts.live_chart(figures.points_figure(data.val.numpy(), empty if snap is None else snap.samples,
                                                "prior samples", revision="samples"), key="samples")


def _revision(chart: str, view: JobView | None) -> str:
    """The chart's zoom and ranges are kept across redraws of one run, and reset by the next run or a Reset."""
    return f"{chart}-{view.id if view else 'none'}"


def _when(snap: Snapshot | None) -> str:
    """Which moment of the run a view shows (the snapshots lag the loss curves)."""
    if snap is None:
        return ""
    return " · before training" if snap.step == 0 else f" · epoch {snap.epoch}, step {snap.step:,}"


def _latent(snap: Snapshot | None, data: Dataset, config: TrainConfig, view: JobView | None) -> None:
    axes = ("PC 1", "PC 2") if config.latent_dim > 2 else ("z₁", "z₂" if config.latent_dim == 2 else "")
    st.markdown("**Latent space**" + (" (first two principal components)" if config.latent_dim > 2 else "")
                + _when(snap))
    points, labels = (np.zeros((0, 2)), None) if snap is None else (snap.latent_2d, snap.labels)
    charts.live_chart(figures.latent_figure(points, labels, data.class_names, axes, prior=config.mode == "vae",
                                            revision=_revision("latent", view)), key="latent")


def _losses(view: JobView | None, config: TrainConfig) -> None:
    steps, epochs = (view.step_history, view.epoch_history) if view else ([], [])
    st.markdown("**Losses** · lines: training steps; dashed: validation after each epoch")
    problem = loss_chart.log_scale_problem(steps, epochs, config)
    log_y = st.toggle("Log scale", key="loss_log", disabled=problem is not None, help=problem) and not problem
    marks = []
    if view is not None and view.total_steps:
        marks = loss_chart.events(config, view.total_steps // view.epochs, view.live_changes, view.status,
                                  view.step, view.best_epoch)
    charts.live_chart(loss_chart.loss_figure(steps, epochs, config, marks, log_y, revision=_revision("loss", view)),
                      key="loss_chart")
    if loss_chart.gaussian(config) and problem:
        st.caption("Below zero is no error: with MSE the reconstruction is a Gaussian −log density, and a "
                   f"density over a small σ ({config.mse_sigma:g}) exceeds 1 where the model fits well.")
    if config.adv_weight > 0 or config.l1 > 0:
        st.caption("Training also minimises " + " and ".join(
            (["the adversarial generator loss × its weight (panel below)"] if config.adv_weight > 0 else [])
            + (["the L1 penalty"] if config.l1 > 0 else []))
            + "; validation measures the objective on the data alone, so the two objectives compare.")


def _kl(snap: Snapshot | None, config: TrainConfig) -> None:
    if config.mode == "vae":
        figure = (figures.kl_figure(np.zeros(config.latent_dim), threshold=collapse.NATS_PER_UNIT) if snap is None
                  else figures.kl_figure(snap.kl_per_dim, collapse.informative(snap.kl_per_dim, snap.latent_mu),
                                         collapse.NATS_PER_UNIT))
        charts.live_chart(figure, key="kl")
        if snap is not None:
            st.caption(_when(snap).removeprefix(" · ").capitalize())
    elif snap is not None:
        units = "1 latent unit varies" if snap.active_units == 1 else f"{snap.active_units} latent units vary"
        st.caption(f"An autoencoder has no KL term. {units} across inputs.")


def _quality(snap: Snapshot | None, data: Dataset) -> None:
    """Sharpness, diversity and closeness to the training set of the prior samples, measured once an epoch."""
    q = snap.quality if snap is not None else None
    real = "real digits" if data.name == "digits" else "held-out data"
    cols = st.columns(3)
    cols[0].metric("Sample sharpness", "–" if q is None or q.sharpness is None else f"{q.sharpness_ratio:.2f} × real",
                   help=f"Mean jump between neighbouring pixels of the samples, over that of {real}: below 1 is "
                   "blurrier." if data.is_image else "Not measured: 2-D points have no neighbouring pixels.")
    cols[1].metric("Sample diversity", "–" if q is None else f"{q.diversity_ratio:.2f} × real",
                   help=f"Mean distance between two samples, over that between two of {real}: well below 1, "
                   "the samples look alike.")
    cols[2].metric("Distance to nearest training example", "–" if q is None else f"{q.nearest:.3f}",
                   help=("Mean distance of each sample to its closest training example, "
                         + ("" if q is None else f"against {q.real_nearest:.3f} for {real}; ")
                         + "far below that: copying the training set; far above: unlike the data."))


def live_view(view: JobView | None, config: TrainConfig, data: Dataset | None, every: float | None) -> None:
    """The run as it stands. Before a run (no view) the same layout shows empty, so Start only fills it in."""
    progress(view, every)
    message, warning = st.empty(), st.empty()  # fixed slots: a message appearing must not move the charts
    if view is not None and view.status in (Status.FAILED, Status.DIVERGED):
        message.error(view.message, icon=":material/error:")
    elif view is not None and view.status.ended:
        (message.success if view.status.completed else message.info)(view.message)
    _metrics(view, config)
    if view is not None:
        with warning:
            _collapse_warning(view, config)
    snap = view.snapshot if view else None
    losses, latent = st.columns([3, 2])
    with losses:
        _losses(view, config)
    if data is None:
        return
    with latent:
        _latent(snap, data, config, view)
    recon, samples, kl = st.columns([2, 1, 1])
    _images(snap, data, recon, samples)
    with kl:
        _kl(snap, config)
    _quality(snap, data)
    replay.after_run(view, config, data)


def _first_view(job: Job) -> JobView:
    """The job's state; in the first moments of a run, after waiting briefly for its first step to draw."""
    view = job.view()
    deadline = time.monotonic() + FIRST_STEP_WAIT
    while view.status in (Status.QUEUED, Status.RUNNING) and not view.step_history and view.elapsed < 3 \
            and not view.queue_position and time.monotonic() < deadline:
        time.sleep(0.02)
        view = job.view()
    return view


def training(job: Job | None) -> bool:
    """Whether the page shows `job` as a run still under way: by its state, the one the live view draws."""
    return job is not None and not job.state().status.ended


def redraw_every(job: Job | None) -> float | None:
    """Seconds between redraws of the live view: none once the job ended, longer as the server gets busier."""
    return pacing.redraw_seconds(sessions.registry().live()) if training(job) else None


def run_panel(config: TrainConfig, data: Dataset | None, every: float | None, selected: str) -> None:
    """Progress and charts; reruns itself `every` so often while the job lives, and the whole page when
    the job has ended or the server's load calls for a slower pace (a faster one waits for the next
    whole-page rerun: each change of pace costs a whole-page rerun). Measures what a redraw costs.

    Drawn as part of a whole-page rerun it never asks for another: `every` was set by that rerun a moment
    ago, and sessions starting fast enough to change the pace in between would otherwise make the page
    rerun itself again and again.

    The run is drawn only under its own dataset: with another one `selected`, the layout shows empty, for
    that dataset, and a note says where the run went."""
    started = time.thread_time()
    session.touch()
    job = session.job()
    wanted = redraw_every(job)
    if not st.session_state.pop(WHOLE_PAGE_RERUN, False) and (
            (wanted is None) != (every is None) or (wanted or 0) > (every or 0)):
        st.rerun()
    if job is None or job.config.dataset != selected:
        if job is not None:
            _run_elsewhere(job, selected)
        live_view(None, config, data, every)
    else:
        view = _first_view(job)
        if every is not None and view.status.ended:
            st.rerun()  # it ended after this rerun drew the run's buttons: draw the page as it is now
        live_view(view, job.config, job.data, every)
        if every is not None:
            pacing.redraw_cost.add(time.thread_time() - started)


def _run_elsewhere(job: Job, selected: str) -> None:
    """Where this student's run is, when it trained on another dataset than the one chosen now."""
    theirs, chosen = dataset_label(job.config.dataset), dataset_label(selected)
    then = (f"It is still training: choose {theirs} again to watch it, or stop it." if training(job)
            else f"Choose {theirs} again to see it, or open it in Explore.")
    st.info(f"Your run on **{text.plain(theirs)}** is not shown: the dataset chosen now is {text.plain(chosen)}. "
            f"{text.plain(then)}", icon=":material/swap_horiz:")
