"""The Train page's settings: a widget per TrainConfig field in the sidebar, and the schedules' previews."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from pages.ui import draft, session
from vae_core.classroom import policy
from vae_core.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    BETA_SCHEDULES,
    FOR_POINTS,
    LR_SCHEDULES,
    OPTIMIZERS,
    RANGES,
    RECON_LOSSES,
    ConfigError,
    TrainConfig,
    parse_numbers,
)
from vae_core.data import DATASETS, DataError, dataset_names, load_upload
from vae_core.limits import current as current_limits
from vae_core.maths.objectives import beta_at
from vae_core.maths.schedules import lr_curve
from vae_core.views import figures


def _key(name: str) -> str:
    return draft.WIDGET + name


def _prepare_widgets() -> None:
    """Give every settings widget its value from the draft, unless it already has one."""
    for name, value in st.session_state[draft.DRAFT].items():
        if name in draft.FIELDS and _key(name) not in st.session_state:
            st.session_state[_key(name)] = ", ".join(map(str, value)) if isinstance(value, list) else value


def collect() -> tuple[TrainConfig | None, str | None]:
    """Read the widgets back into the draft and validate it: (config, None) or (None, error naming the field)."""
    values = st.session_state[draft.DRAFT]
    for name in draft.FIELDS:
        if _key(name) in st.session_state:
            values[name] = st.session_state[_key(name)]
    if isinstance(values["hidden"], str):
        try:
            values["hidden"] = parse_numbers(values["hidden"])
        except ValueError as exc:
            return None, f"hidden: {exc}"
    try:
        return TrainConfig.from_dict(values, strict=False), None
    except ConfigError as exc:
        return None, str(exc)


LOCKED = "locked_settings"  # session key: {setting: values allowed} of the settings the teacher locked


def _locked(name: str) -> bool:
    return name in st.session_state.get(LOCKED, {})


def _help(name: str, help: str | None) -> str | None:
    return "Locked by your teacher for this class." if _locked(name) else help


def _number(name: str, label: str, step, fmt=None, help=None):
    """A number field from the setting's lower bound up (a value above its range is named by validation)."""
    return st.number_input(label, min_value=RANGES[name][0], step=step, format=fmt, key=_key(name),
                           help=_help(name, help), disabled=_locked(name))


def _select(name: str, label: str, options, help=None):
    return st.selectbox(label, options, key=_key(name), help=_help(name, help), disabled=_locked(name))


def _apply_class_rules() -> None:
    """Keep locked settings at a value the class allows and epochs within the class's cap (the server checks
    again at Start: vae_core.classroom.policy)."""
    room = session.classroom().room()
    teacher = session.classroom().is_teacher(session.owner())
    st.session_state[LOCKED] = {} if teacher else policy.allowed_values(room)
    st.session_state.epoch_cap = None if teacher else room.max_epochs
    for name, allowed in st.session_state[LOCKED].items():
        value = st.session_state.get(_key(name), st.session_state[draft.DRAFT].get(name))
        if draft.FIELDS[name] == "list[int]" and isinstance(value, str):  # the hidden widths' text field
            try:
                value = parse_numbers(value)
            except ValueError:
                pass
        if value not in allowed:
            first = allowed[0]
            st.session_state[_key(name)] = ", ".join(map(str, first)) if isinstance(first, list) else first
    cap = st.session_state.epoch_cap
    if cap is not None and st.session_state.get(_key("epochs"), 0) > cap:
        st.session_state[_key("epochs")] = cap


def _checkbox(name: str, label: str, help=None):
    return st.checkbox(label, key=_key(name), help=_help(name, help), disabled=_locked(name))


def _value(name: str):
    return st.session_state[_key(name)]


def _on_dataset_change() -> None:
    """Give 2-D point data the settings it needs (config.FOR_POINTS)."""
    info = DATASETS.get(_value("dataset"))
    if info is not None and info.kind == "points":
        for name, (needed, _) in FOR_POINTS.items():
            st.session_state[_key(name)] = needed


def dataset_label(name: str) -> str:
    info = DATASETS.get(name)
    return info.title if info else f"{name.removeprefix('upload:')} (uploaded)"


def _use_upload(file, side: int, channels: int) -> None:
    try:
        data = load_upload(file.getvalue(), file.name, size=side, channels=channels)
    except DataError as exc:
        st.session_state.upload_error = f"Could not use {file.name}: {exc}"
        return
    st.session_state.upload_error = None
    st.session_state[session.UPLOAD] = data
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
    _apply_class_rules()
    upload = st.session_state.get(session.UPLOAD)
    names = dataset_names() + ([upload.name] if upload is not None else [])
    if _value("dataset") not in names:
        names.append(_value("dataset"))
    lim = current_limits()
    st.header("Settings")
    st.selectbox("Dataset", names, key=_key("dataset"), format_func=dataset_label, on_change=_on_dataset_change,
                 disabled=_locked("dataset"), help=_help("dataset", None))
    if not _locked("dataset"):
        _upload_box()
    with st.expander("Model", icon=":material/hub:"):
        st.radio("Kind", ["vae", "ae"], key=_key("mode"), horizontal=True,
                 format_func={"vae": "VAE", "ae": "Autoencoder"}.get, disabled=_locked("mode"),
                 help=_help("mode", "An autoencoder has a deterministic encoder and no KL term."))
        st.radio("Architecture", ARCHITECTURES, key=_key("architecture"), horizontal=True,
                 format_func={"mlp": "MLP", "conv": "Convolutional"}.get, disabled=_locked("architecture"),
                 help=_help("architecture", None))
        st.number_input("Latent size", min_value=1, max_value=lim.max_latent, step=1, key=_key("latent_dim"),
                        disabled=_locked("latent_dim"), help=_help("latent_dim", None))
        st.text_input("Hidden widths (comma separated)", key=_key("hidden"), disabled=_locked("hidden"),
                      help=_help("hidden", "Layer widths of the MLP, or channels per layer of the "
                                           "convolutional model."))
        _select("activation", "Activation", ACTIVATIONS)
        _checkbox("batch_norm", "Batch norm")
        _number("dropout", "Dropout", 0.05)
        _checkbox("normalize_inputs", "Standardise inputs",
                  help="Standardise the encoder's input per feature; targets stay as they are.")
    with st.expander("Objective", icon=":material/functions:", expanded=True):
        _select("recon_loss", "Reconstruction loss", RECON_LOSSES,
                help="bce: pixels as Bernoulli probabilities; mse: Gaussian decoder with σ below.")
        if _value("recon_loss") in ("mse", "mixed"):
            _number("mse_sigma", "Decoder σ (MSE)", 0.05, "%g")
        if _value("recon_loss") == "mixed":
            _number("mixed_weight", "Share of BCE", 0.1)
        _number("beta", "β (weight of the KL term)", 0.5, "%g")
        _select("beta_schedule", "β schedule", BETA_SCHEDULES)
        if _value("beta_schedule") == "warmup":
            _number("beta_warmup_epochs", "Warm-up epochs", 1.0, "%g")
        if _value("beta_schedule") == "cyclical":
            _number("beta_cycles", "Cycles", 1)
            _number("beta_cycle_ratio", "Share of each cycle spent rising", 0.1)
        beta_plot = st.empty()
        _checkbox("capacity", "Capacity objective γ·|KL − C|")
        if _value("capacity"):
            _number("capacity_gamma", "γ", 10.0, "%g")
            _number("capacity_max", "C at the end of the ramp (nats)", 1.0, "%g")
            _number("capacity_ramp_epochs", "Ramp epochs", 1.0, "%g")
        _number("free_bits", "Free bits (nats per dimension)", 0.1, "%g")
        _number("adv_weight", "Adversarial weight", 0.01, "%g", help="0 turns the discriminator off.")
        _number("l1", "L1 on weights", 1e-5, "%g")
    with st.expander("Optimiser and learning rate", icon=":material/speed:"):
        _select("optimizer", "Optimiser", OPTIMIZERS)
        _number("lr", "Learning rate", 1e-4, "%g")
        if _value("optimizer") in ("sgd", "rmsprop"):
            _number("momentum", "Momentum", 0.05)
        if _value("optimizer") == "sgd":
            _checkbox("nesterov", "Nesterov")
        _number("weight_decay", "Weight decay", 1e-4, "%g")
        _select("lr_schedule", "LR schedule", LR_SCHEDULES)
        if _value("lr_schedule") != "onecycle":
            _number("lr_warmup_epochs", "LR warm-up epochs", 1.0, "%g")
        if _value("lr_schedule") == "step":
            _number("lr_step_epochs", "Epochs per step", 1)
        if _value("lr_schedule") in ("step", "exponential", "plateau"):
            _number("lr_gamma", "Decay factor", 0.05)
        if _value("lr_schedule") == "plateau":
            _number("lr_patience", "Patience (epochs)", 1)
        lr_plot = st.empty()
        _number("grad_clip", "Gradient clipping (max norm, 0 = off)", 0.5, "%g")
    with st.expander("Training", icon=":material/tune:"):
        cap = st.session_state.get("epoch_cap")
        st.number_input("Epochs", min_value=1, max_value=min(lim.max_epochs, cap or lim.max_epochs), step=1,
                        key=_key("epochs"), disabled=_locked("epochs"),
                        help=f"Your teacher capped runs at {cap} epochs for this class." if cap else None)
        _number("batch_size", "Batch size", 16)
        _number("seed", "Seed", 1)
        _checkbox("early_stopping", "Early stopping on validation loss")
        if _value("early_stopping"):
            _number("patience", "Patience (epochs)", 1)
            _number("min_delta", "Minimum improvement", 0.1, "%g")
    with st.expander("Augmentation (images)", icon=":material/flip:"):
        _checkbox("augment", "Augment training batches")
        if _value("augment"):
            _number("aug_shift", "Shift (share of the side)", 0.05)
            _number("aug_rotation", "Rotation (degrees)", 5.0)
            _number("aug_zoom", "Zoom (relative)", 0.05)
            _checkbox("aug_flip", "Horizontal flips")
    st.button("Restore defaults", icon=":material/restart_alt:", on_click=draft.load_config, args=(TrainConfig(),))
    config, error = collect()
    if config is not None:
        try:
            steps_per_epoch = math.ceil(len(session.dataset(config.dataset).train) / config.batch_size)
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
