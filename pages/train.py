"""Train: settings in the sidebar; Start, Pause, Resume, Stop, Reset; the run drawn live while it trains."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import streamlit as st

from pages import common
from vae_core import figures, runs, sessions
from vae_core.config import (ACTIVATIONS, ARCHITECTURES, BETA_SCHEDULES, LR_SCHEDULES, OPTIMIZERS, RECON_LOSSES,
                             ConfigError, TrainConfig)
from vae_core.data import DATASETS, DataError, Dataset, dataset_names, load_upload
from vae_core.job import DONE, FAILED, FINISHED, PAUSED, QUEUED, RUNNING, JobView
from vae_core.lessons import LESSONS
from vae_core.limits import current as current_limits
from vae_core.objectives import beta_at
from vae_core.schedules import lr_curve
from vae_core.snapshots import N_IMAGES, Snapshot
from vae_core.train import check_compatible

common.require_router()

FIRST_STEP_WAIT = 0.6  # seconds a redraw may wait for a new run's first step, so it shows at once
WHOLE_PAGE_RUN = "live_view_in_page_run"  # set while the live view is drawn as part of a whole-page run


# --- settings ------------------------------------------------------------------------------------
def _key(name: str) -> str:
    return common.WIDGET + name


def _prepare_widgets() -> None:
    """Give every settings widget its value from the draft, unless it already has one."""
    for name, value in st.session_state[common.DRAFT].items():
        if name in common.FIELDS and _key(name) not in st.session_state:
            st.session_state[_key(name)] = ", ".join(map(str, value)) if isinstance(value, list) else value


def _collect() -> tuple[TrainConfig | None, str | None]:
    """Read the widgets back into the draft and validate it: (config, None) or (None, error naming the field)."""
    draft = st.session_state[common.DRAFT]
    for name in common.FIELDS:
        if _key(name) in st.session_state:
            draft[name] = st.session_state[_key(name)]
    hidden = draft["hidden"]
    if isinstance(hidden, str):
        try:
            draft["hidden"] = [int(part) for part in hidden.replace(" ", "").split(",") if part]
        except ValueError:
            return None, f"hidden: expected whole numbers separated by commas, got {hidden!r:.40}"
    try:
        return TrainConfig.from_dict(draft, strict=False), None
    except ConfigError as exc:
        return None, str(exc)


def _number(name: str, label: str, low=None, step=None, fmt=None, help=None):
    return st.number_input(label, min_value=low, step=step, format=fmt, key=_key(name), help=help)


def _select(name: str, label: str, options, help=None):
    return st.selectbox(label, options, key=_key(name), help=help)


def _value(name: str):
    return st.session_state[_key(name)]


def _on_dataset_change() -> None:
    """2-D points need the Gaussian (MSE) loss and the MLP, and have nothing to augment."""
    info = DATASETS.get(_value("dataset"))
    if info is not None and info.kind == "points":
        st.session_state[_key("recon_loss")] = "mse"
        st.session_state[_key("architecture")] = "mlp"
        st.session_state[_key("augment")] = False


def _dataset_label(name: str) -> str:
    info = DATASETS.get(name)
    return info.title if info else f"{name.removeprefix('upload:')} (uploaded)"


def _use_upload(file, side: int, channels: int) -> None:
    try:
        data = load_upload(file.getvalue(), file.name, size=side, channels=channels)
    except DataError as exc:
        st.session_state.upload_error = f"Could not use {file.name}: {exc}"
        return
    st.session_state.upload_error = None
    st.session_state[common.UPLOAD] = data
    st.session_state[_key("dataset")] = data.name


def _upload_box() -> None:
    with st.popover("Upload your own data", icon=":material/upload:", width="stretch"):
        st.caption("A zip of PNG/JPEG images (one folder per class gives labels) or an .npz with an array of "
                   "images (and optionally 'labels').")
        side = st.number_input("Resize images to (pixels)", min_value=8, max_value=64, value=28, step=4)
        colour = st.radio("Colour", ["grey", "RGB"], horizontal=True)
        file = st.file_uploader("Zip or .npz", type=["zip", "npz"], key="upload_file")
        st.button("Use this data", type="primary", disabled=file is None, on_click=_use_upload,
                  args=(file, side, 3 if colour == "RGB" else 1))
    if st.session_state.get("upload_error"):
        st.error(st.session_state.upload_error)


def settings() -> tuple[TrainConfig | None, str | None]:
    """Every setting as a widget in the sidebar; the validated config or the error naming the field."""
    _prepare_widgets()
    upload = st.session_state.get(common.UPLOAD)
    names = dataset_names() + ([upload.name] if upload is not None else [])
    if _value("dataset") not in names:
        names.append(_value("dataset"))
    lim = current_limits()
    st.header("Settings")
    st.selectbox("Dataset", names, key=_key("dataset"), format_func=_dataset_label, on_change=_on_dataset_change)
    _upload_box()
    with st.expander("Model", icon=":material/hub:"):
        st.radio("Kind", ["vae", "ae"], key=_key("mode"), horizontal=True,
                 format_func={"vae": "VAE", "ae": "Autoencoder"}.get,
                 help="An autoencoder has a deterministic encoder and no KL term.")
        st.radio("Architecture", ARCHITECTURES, key=_key("architecture"), horizontal=True,
                 format_func={"mlp": "MLP", "conv": "Convolutional"}.get)
        st.number_input("Latent size", min_value=1, max_value=lim.max_latent, step=1, key=_key("latent_dim"))
        st.text_input("Hidden widths (comma separated)", key=_key("hidden"),
                      help="Layer widths of the MLP, or channels per layer of the convolutional model.")
        _select("activation", "Activation", ACTIVATIONS)
        st.checkbox("Batch norm", key=_key("batch_norm"))
        _number("dropout", "Dropout", 0.0, 0.05)
        st.checkbox("Standardise inputs", key=_key("normalize_inputs"),
                    help="Standardise the encoder's input per feature; targets stay as they are.")
    with st.expander("Objective", icon=":material/functions:", expanded=True):
        _select("recon_loss", "Reconstruction loss", RECON_LOSSES,
                help="bce: pixels as Bernoulli probabilities; mse: Gaussian decoder with σ below.")
        if _value("recon_loss") in ("mse", "mixed"):
            _number("mse_sigma", "Decoder σ (MSE)", 0.001, 0.05, "%g")
        if _value("recon_loss") == "mixed":
            _number("mixed_weight", "Share of BCE", 0.0, 0.1)
        _number("beta", "β (weight of the KL term)", 0.0, 0.5, "%g")
        _select("beta_schedule", "β schedule", BETA_SCHEDULES)
        if _value("beta_schedule") == "warmup":
            _number("beta_warmup_epochs", "Warm-up epochs", 0.0, 1.0, "%g")
        if _value("beta_schedule") == "cyclical":
            _number("beta_cycles", "Cycles", 1, 1)
            _number("beta_cycle_ratio", "Share of each cycle spent rising", 0.01, 0.1)
        beta_plot = st.empty()
        st.checkbox("Capacity objective γ·|KL − C|", key=_key("capacity"))
        if _value("capacity"):
            _number("capacity_gamma", "γ", 0.0, 10.0, "%g")
            _number("capacity_max", "C at the end of the ramp (nats)", 0.0, 1.0, "%g")
            _number("capacity_ramp_epochs", "Ramp epochs", 0.0, 1.0, "%g")
        _number("free_bits", "Free bits (nats per dimension)", 0.0, 0.1, "%g")
        _number("adv_weight", "Adversarial weight", 0.0, 0.01, "%g", help="0 turns the discriminator off.")
        _number("l1", "L1 on weights", 0.0, 1e-5, "%g")
    with st.expander("Optimiser and learning rate", icon=":material/speed:"):
        _select("optimizer", "Optimiser", OPTIMIZERS)
        _number("lr", "Learning rate", 1e-7, 1e-4, "%g")
        if _value("optimizer") in ("sgd", "rmsprop"):
            _number("momentum", "Momentum", 0.0, 0.05)
        if _value("optimizer") == "sgd":
            st.checkbox("Nesterov", key=_key("nesterov"))
        _number("weight_decay", "Weight decay", 0.0, 1e-4, "%g")
        _select("lr_schedule", "LR schedule", LR_SCHEDULES)
        if _value("lr_schedule") != "onecycle":
            _number("lr_warmup_epochs", "LR warm-up epochs", 0.0, 1.0, "%g")
        if _value("lr_schedule") == "step":
            _number("lr_step_epochs", "Epochs per step", 1, 1)
        if _value("lr_schedule") in ("step", "exponential", "plateau"):
            _number("lr_gamma", "Decay factor", 0.01, 0.05)
        if _value("lr_schedule") == "plateau":
            _number("lr_patience", "Patience (epochs)", 0, 1)
        lr_plot = st.empty()
        _number("grad_clip", "Gradient clipping (max norm, 0 = off)", 0.0, 0.5, "%g")
    with st.expander("Training", icon=":material/tune:"):
        st.number_input("Epochs", min_value=1, max_value=lim.max_epochs, step=1, key=_key("epochs"))
        _number("batch_size", "Batch size", 1, 16)
        _number("seed", "Seed", 0, 1)
        st.checkbox("Early stopping on validation loss", key=_key("early_stopping"))
        if _value("early_stopping"):
            _number("patience", "Patience (epochs)", 1, 1)
            _number("min_delta", "Minimum improvement", 0.0, 0.1, "%g")
    with st.expander("Augmentation (images)", icon=":material/flip:"):
        st.checkbox("Augment training batches", key=_key("augment"))
        if _value("augment"):
            _number("aug_shift", "Shift (share of the side)", 0.0, 0.05)
            _number("aug_rotation", "Rotation (degrees)", 0.0, 5.0)
            _number("aug_zoom", "Zoom (relative)", 0.0, 0.05)
            st.checkbox("Horizontal flips", key=_key("aug_flip"))
    st.button("Restore defaults", icon=":material/restart_alt:", on_click=common.load_config, args=(TrainConfig(),))
    config, error = _collect()
    if config is not None:
        try:
            steps_per_epoch = math.ceil(len(common.dataset(config.dataset).train) / config.batch_size)
        except DataError:
            return config, error
        _schedule_plots(config, steps_per_epoch, beta_plot, lr_plot)
    return config, error


def _schedule_plots(config: TrainConfig, steps_per_epoch: int, beta_box, lr_box) -> None:
    total = config.epochs * steps_per_epoch
    steps = np.linspace(0, total, min(total, 300) + 1).astype(int).tolist()
    if config.mode == "vae":
        betas = [beta_at(s, config.beta, config, steps_per_epoch) for s in steps]
        beta_box.image(figures.schedule_svg(steps, betas, "β"))
    lr_steps, lrs = _lr_curve(config.to_json(), steps_per_epoch)
    lr_box.image(figures.schedule_svg(lr_steps, lrs, "learning rate"))


@st.cache_data(max_entries=64, show_spinner=False)
def _lr_curve(config_json: str, steps_per_epoch: int):
    return lr_curve(TrainConfig.from_json(config_json), steps_per_epoch)


# --- the dataset --------------------------------------------------------------------------------
def dataset_preview(name: str) -> Dataset | None:
    try:
        with st.spinner(f"Loading {_dataset_label(name)}…"):
            data = common.dataset(name)
    except DataError as exc:
        st.error(str(exc))
        return None
    info = DATASETS.get(name)
    text, picture = st.columns([2, 3], vertical_alignment="center")
    shape = ("×".join(map(str, data.sample_shape[1:])) + (" grey" if data.sample_shape[0] == 1 else " RGB")
             if data.is_image else "2-D points")
    text.markdown(f"**{_dataset_label(name)}** · {shape}  \n{info.description if info else ''}")
    text.caption(f"{len(data.train):,} training · {len(data.val):,} validation · {len(data.test):,} test samples"
                 + (f"  \nLabels: {', '.join(data.class_names)}" if data.class_names else ""))
    if data.is_image:
        caption = "The first training samples"
        if data.train_labels is not None and data.class_names:
            caption += ", labelled " + ", ".join(data.class_names[k] for k in data.train_labels[:16].tolist())
        with picture:
            common.image(figures.mosaic(data.train[:16].numpy(), cols=8,
                                        scale=figures.tile_scale(data.sample_shape[-1], 40)), caption)
    else:
        points = data.train[:1000].numpy()
        picture.plotly_chart(figures.latent_figure(points, data.train_labels[:1000].numpy(), data.class_names,
                                                   ("x₁", "x₂"), revision="preview", height=260),
                             key="preview_points")
    return data


# --- controls -------------------------------------------------------------------------------------
def _start(config: TrainConfig, data: Dataset | None) -> None:
    upload = data if data is not None and data.name not in DATASETS else None
    common.start(common.new_job(config, upload))
    st.session_state.runs_started = st.session_state.get("runs_started", 0) + 1  # a new run resets the charts' zoom
    st.session_state.live_lr, st.session_state.live_beta = config.lr, config.beta
    st.session_state.paused = False


def _pause(job: common.Job) -> None:
    job.pause()
    st.session_state.paused = True  # a queued job starts paused


def _resume(job: common.Job) -> None:
    job.resume()
    st.session_state.paused = False


def controls(job: common.Job | None, config: TrainConfig | None, data) -> None:
    """Start, Pause, Resume, Stop, Reset: their states change only through full reruns (clicks, a run's end)."""
    alive = job is not None and job.alive
    paused = alive and st.session_state.get("paused", False)
    cols = st.columns(5)
    cols[0].button("Restart" if alive else "Start", key="start", type="primary", icon=":material/play_arrow:",
                   width="stretch", disabled=config is None or data is None, on_click=_start, args=(config, data))
    cols[1].button("Pause", key="pause", icon=":material/pause:", width="stretch", disabled=not alive or paused,
                   on_click=_pause, args=(job,))
    cols[2].button("Resume", key="resume", icon=":material/resume:", width="stretch", disabled=not paused,
                   on_click=_resume, args=(job,))
    cols[3].button("Stop", key="stop", icon=":material/stop:", width="stretch", disabled=not alive,
                   on_click=job.stop if job else None)
    cols[4].button("Reset", key="reset", icon=":material/restart_alt:", width="stretch", disabled=job is None,
                   on_click=common.clear, help="Stop the run and clear this view.")


# --- the live view --------------------------------------------------------------------------------
def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress(view: JobView | None, every: float | None) -> None:
    if view is None:
        st.progress(0.0, text="Ready: press Start to train. The charts below fill in as the model learns.")
        return
    if view.status == QUEUED and not view.total_steps:  # before its model exists
        text = (f"Waiting for a free training slot: you are number {view.queue_position} in the queue."
                if view.queue_position else "Loading the data and building the model…")
        if st.session_state.get("paused"):
            text += " Paused: it will not train until you press Resume."
        st.progress(0.0, text=text)
        return
    in_epoch = view.total_steps and view.step > view.epoch * view.total_steps / view.epochs  # a partial epoch
    epoch = min(view.epoch + bool(in_epoch), view.epochs)
    text = f"Epoch {epoch} of {view.epochs} · step {view.step:,} of {view.total_steps:,}"
    if view.status in (RUNNING, PAUSED, QUEUED):
        text += f" · {_clock(view.eta)} left"
        if view.status == QUEUED:  # resumed after a pause, which gave its slot to the queue
            text += " · waiting for a free training slot" + (
                f": number {view.queue_position} in the queue" if view.queue_position else "")
        if view.status == PAUSED or (view.status == QUEUED and st.session_state.get("paused")):
            text += " · paused"
        if every and every > sessions.REDRAW_LEVELS[0]:
            text += f" · redrawn every {every:g} s while the server trains many runs"
    else:
        text += f" · took {_clock(view.elapsed)}"
    st.progress(min(1.0, view.progress), text=text)


def _metrics(view: JobView | None, config: TrainConfig) -> None:
    last = view.step_history[-1] if view and view.step_history else {}
    val = view.epoch_history[-1] if view and view.epoch_history else {}
    cols = st.columns(6)
    cols[0].metric("Loss", f"{last['loss']:.2f}" if last else "–")
    cols[1].metric("Reconstruction", f"{last['recon']:.2f}" if last else "–")
    cols[2].metric("KL", f"{last['kl']:.2f}" if last else "–")
    cols[3].metric("Validation −ELBO", f"{val['val_neg_elbo']:.2f}" if val else "–")
    cols[4].metric("Learning rate", _short(view.lr if view else config.lr))
    cols[5].metric("β now", _short(view.beta if view else config.beta))


def _short(x: float) -> str:
    """A number that fits a metric's narrow column: 3 significant digits, or 2 and an exponent below 0.01
    (0.00198 reads 2e-3, where the column showed "0.00…")."""
    if x == 0 or abs(x) >= 0.01:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _collapse_warning(view: JobView, config: TrainConfig) -> None:
    """Warn when the KL term or the active units have fallen to zero: the decoder ignores z."""
    if config.mode != "vae" or view.epoch < 1 or view.snapshot is None:
        return
    recent = view.step_history[-20:]
    kl = sum(r["kl"] for r in recent) / max(1, len(recent))
    # Active units only from a snapshot of a trained model: the untrained one at step 0 has none.
    if kl < 0.05 or (view.snapshot.epoch >= 1 and view.snapshot.active_units == 0):
        st.warning(
            f"**Posterior collapse:** the KL term is {kl:.3f} nats and {view.snapshot.active_units} latent units are "
            "active, so the decoder is ignoring z and every input gets the same code. Remedies: a lower β, a β "
            "warm-up (β schedule → warmup), free bits, the capacity objective, or a weaker decoder.",
            icon=":material/warning:")


def _images(snap: Snapshot | None, data: Dataset, recon_box, samples_box) -> None:
    """Originals against reconstructions, and prior samples; grey tiles until the first snapshot."""
    if data.is_image:
        originals = data.val[:N_IMAGES].numpy() if snap is None else snap.originals
        blank = np.full_like(originals, 0.5)
        scale = figures.tile_scale(data.sample_shape[-1], 48)
        with recon_box:
            common.image(figures.pair_mosaic(originals, blank if snap is None else snap.reconstructions, cols=8,
                                             scale=scale),
                         "Originals (rows 1 and 3) and their reconstructions (rows 2 and 4)")
        with samples_box:
            common.image(figures.mosaic(blank if snap is None else snap.samples, cols=4, scale=scale),
                         "Decoded samples from the prior z ~ N(0, I)")
        return
    empty = np.zeros((0, 2))
    with recon_box:
        st.markdown("**Data and reconstructions**")
        originals = data.val[:300].numpy() if snap is None else snap.originals[:300]
        common.live_chart(figures.points_figure(originals, empty if snap is None else snap.reconstructions[:300],
                                                "reconstructions", connect=True, revision="recon"), key="recon")
    with samples_box:
        st.markdown("**Data and samples from the prior**")
        common.live_chart(figures.points_figure(data.val.numpy(), empty if snap is None else snap.samples,
                                                "prior samples", revision="samples"), key="samples")


def _revision(chart: str) -> str:
    """The chart's zoom is kept across redraws of one run and reset by the next."""
    return f"{chart}-{st.session_state.get('runs_started', 0)}"


def _latent(snap: Snapshot | None, data: Dataset, config: TrainConfig) -> None:
    axes = ("PC 1", "PC 2") if config.latent_dim > 2 else ("z₁", "z₂" if config.latent_dim == 2 else "")
    st.markdown("**Latent space**" + (" (first two principal components)" if config.latent_dim > 2 else ""))
    points, labels = (np.zeros((0, 2)), None) if snap is None else (snap.latent_2d, snap.labels)
    common.live_chart(figures.latent_figure(points, labels, data.class_names, axes, revision=_revision("latent")),
                      key="latent")


def _kl(snap: Snapshot | None, config: TrainConfig) -> None:
    if config.mode == "vae":
        figure = (figures.kl_figure(np.zeros(config.latent_dim)) if snap is None
                  else figures.kl_figure(snap.kl_per_dim, snap.latent_mu))
        common.live_chart(figure, key="kl")
    elif snap is not None:
        st.caption(f"An autoencoder has no KL term. {snap.active_units} latent units vary across inputs.")


def live_view(view: JobView | None, config: TrainConfig, data: Dataset | None, every: float | None) -> None:
    """The run as it stands. Before a run (no view) the same layout shows empty, so Start only fills it in."""
    progress(view, every)
    message, warning = st.empty(), st.empty()  # fixed slots: a message appearing must not move the charts
    if view is not None and view.status == FAILED:
        message.error(view.message, icon=":material/error:")
    elif view is not None and view.status in DONE:
        (message.success if view.status == FINISHED else message.info)(view.message)
    _metrics(view, config)
    if view is not None:
        with warning:
            _collapse_warning(view, config)
    snap = view.snapshot if view else None
    charts, latent = st.columns([3, 2])
    with charts:
        st.markdown("**Losses** · lines: training steps; dashed: validation after each epoch")
        log_y = st.toggle("Log scale", key="loss_log")
        common.live_chart(figures.loss_figure(view.step_history if view else [], view.epoch_history if view else [],
                                              log_y, revision=_revision("loss")), key="loss_chart")
    if data is None:
        return
    with latent:
        _latent(snap, data, config)
    recon, samples, kl = st.columns([2, 1, 1])
    _images(snap, data, recon, samples)
    with kl:
        _kl(snap, config)


def _first_view(job: common.Job) -> JobView:
    """The job's state; in the first moments of a run, after waiting briefly for its first step to draw."""
    view = job.view()
    deadline = time.monotonic() + FIRST_STEP_WAIT
    while view.status in (QUEUED, RUNNING) and not view.step_history and view.elapsed < 3 and job.alive \
            and not view.queue_position and time.monotonic() < deadline:
        time.sleep(0.02)
        view = job.view()
    return view


def redraw_every(job: common.Job | None) -> float | None:
    """Seconds between redraws of the live view: none once the job ended, longer as the server gets busier."""
    return sessions.redraw_seconds(sessions.registry().live()) if job is not None and job.alive else None


def run_panel(config: TrainConfig, data: Dataset | None, every: float | None) -> None:
    """Progress and charts; reruns itself `every` so often while the job lives, and the whole page when
    the job has ended or the server's load calls for a slower pace (a faster one waits for the next
    whole-page run: each change of pace costs a whole-page rerun). Measures what a redraw costs.

    Drawn as part of a whole-page run it never asks for another: `every` was set by that run a moment
    ago, and sessions starting fast enough to change the pace in between would otherwise make the page
    rerun itself again and again."""
    started = time.thread_time()
    common.touch()
    job = common.job()
    wanted = redraw_every(job)
    if not st.session_state.pop(WHOLE_PAGE_RUN, False) and (
            (wanted is None) != (every is None) or (wanted or 0) > (every or 0)):
        st.rerun()
    if job is None:
        live_view(None, config, data, every)
    else:
        live_view(_first_view(job), job.config, job.data, every)
        if every is not None:
            sessions.redraw_cost.add(time.thread_time() - started)


def live_controls(job: common.Job | None) -> None:
    """Change the learning rate and β of the running job (always shown, so the layout stays put)."""
    alive = job is not None and job.alive
    source = job.config if job is not None else common.draft_config()
    if not alive or "live_lr" not in st.session_state:  # idle: show what Start would use
        st.session_state.live_lr, st.session_state.live_beta = source.lr, source.beta

    def apply():
        job.set_lr(st.session_state.live_lr)
        if job.config.mode == "vae":
            job.set_beta(st.session_state.live_beta)

    with st.form("live", border=False):
        label, a, b, c = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
        label.markdown("**While it trains:**")
        a.number_input("Learning rate", min_value=1e-7, max_value=1e4, format="%g", key="live_lr",
                       disabled=not alive)
        b.number_input("β", min_value=0.0, max_value=1000.0, format="%g", key="live_beta",
                       disabled=not alive or source.mode != "vae")
        c.form_submit_button("Apply to the running job", on_click=apply, width="stretch", disabled=not alive)


def downloads(job: common.Job) -> None:
    view = job.view()
    if view.status not in DONE or not view.run_dir:
        return
    a, b, _ = st.columns([1, 1, 2])
    name = Path(view.run_dir).name
    a.download_button("Download the run (zip)", lambda: runs.bundle(view.run_dir), f"{name}.zip", "application/zip",
                      icon=":material/download:", on_click="ignore", width="stretch")  # zipped on click only
    b.download_button("Download metrics (CSV)", runs.metrics_csv(view.epoch_history), f"{name}-metrics.csv",
                      "text/csv", icon=":material/table:", on_click="ignore", width="stretch")


def lesson_banner(config: TrainConfig | None) -> None:
    key = st.session_state.get("lesson")
    lesson = next((item for item in LESSONS if item.key == key), None)
    if lesson is None or config is None:
        return
    label = next((label for label, run in lesson.runs if run == config), None)
    if label:
        st.info(f"**Lesson: {lesson.title}** ({label})  \n{lesson.claim}  \n*Look at:* {lesson.look_for}",
                icon=":material/school:")


def page() -> None:
    st.title("Train a VAE")
    job = common.job()
    every = redraw_every(job)
    with st.sidebar:
        config, error = settings()
    data = None
    with st.container():  # what comes and goes sits in one block, so the live fragment below keeps its place
        for warning in st.session_state.pop("url_warnings", []):
            st.warning(f"Ignored a setting from the link, using its default instead: {warning}")
        if error:
            st.error(f"Invalid setting — {error}", icon=":material/error:")
        else:
            common.sync_query(config)
        if config is not None:
            with st.expander("Dataset", expanded=job is None, icon=":material/dataset:"):
                data = dataset_preview(config.dataset)
            if data is not None:
                try:
                    check_compatible(config, data)
                except ConfigError as exc:
                    st.error(f"Invalid setting for this dataset — {exc}", icon=":material/error:")
                    data = None
        lesson_banner(config)
    controls(job, config, data)
    live_controls(job)
    st.session_state[WHOLE_PAGE_RUN] = True
    common.fragment(run_panel, every)(config or common.draft_config(), data, every)
    if job is not None:
        downloads(job)


page()
