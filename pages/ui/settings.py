"""The Train page's settings: a widget per TrainConfig field in the sidebar, and the schedules' previews."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import streamlit as st

from pages.ui import datasets, draft, session
from vae_core import controls, devices
from vae_core.classroom import policy
from vae_core.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    BETA_SCHEDULES,
    LR_SCHEDULES,
    OPTIMIZERS,
    RANGES,
    RECON_LOSSES,
    ConfigError,
    TrainConfig,
    parse_numbers,
)
from vae_core.data import DataError, dataset_names, load_upload
from vae_core.limits import current as current_limits
from vae_core.maths.objectives import beta_at
from vae_core.maths.schedules import lr_curve
from vae_core.views import figures, theory


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


SILENCED = "silenced_settings"  # session key: {setting: controls.Rule} of the settings that do nothing now
INSISTED = "insisted_settings"  # session key: the advised-against settings the user asked to see anyway
CAPTIONED = "captioned_rules"  # session key: the rules whose caption this run has drawn
SHOWN, DISABLED, HIDDEN = "shown", "disabled", "hidden"


def _decide(name: str) -> tuple[str, str | None]:
    """How the control of `name` shows, and why when not plainly: the one place that composes what decides
    it, the rule table of settings that do nothing here (vae_core.controls) and the teacher's locks (a
    presenter mode would join here). A hidden value stays in the draft, so it comes back with its control."""
    rule = st.session_state[SILENCED].get(name)
    insisted = name in st.session_state.get(INSISTED, ()) or _value(name) != draft.DEFAULTS[name]
    if rule is not None and not (rule.insist and insisted):
        return HIDDEN, rule.caption
    if _locked(name):
        return DISABLED, "Locked by your teacher for this class."
    return SHOWN, None


def _help(name: str, help: str | None) -> str | None:
    """The control's help, ending with links to the formulas that explain it on the Learn page; or why it is
    locked."""
    how, why = _decide(name)
    return why if how == DISABLED else theory.help_with_formulas(name, help)


def _disabled(name: str) -> bool:
    return _decide(name)[0] == DISABLED


def _insist(name: str) -> None:
    st.session_state[INSISTED] = {*st.session_state.get(INSISTED, ()), name}


def _shown(name: str) -> bool:
    """False for a hidden control, drawing instead its rule's caption (once) where the control would be."""
    how, caption = _decide(name)
    if how != HIDDEN:
        return True
    rule, done = st.session_state[SILENCED][name], st.session_state[CAPTIONED]
    if caption and id(rule) not in done:
        done.add(id(rule))
        st.caption(caption)
        if rule.insist:
            st.button(rule.insist, key=f"insist_{name}", on_click=_insist, args=(name,))
    return False


def _number(name: str, label: str, step, fmt=None, help=None):
    """A number field from the setting's lower bound up (a value above its range is named by validation)."""
    if _shown(name):
        st.number_input(label, min_value=RANGES[name][0], step=step, format=fmt, key=_key(name),
                        help=_help(name, help), disabled=_disabled(name))


def _select(name: str, label: str, options, help=None):
    if _shown(name):
        st.selectbox(label, options, key=_key(name), help=_help(name, help), disabled=_disabled(name))


def _device_select() -> None:
    """Where runs train: auto, or a device this server has. One it lacks (from a link, or a saved run's
    settings) falls back to auto, and the caption says so."""
    options = ["auto", *devices.available()]
    asked = _value("device")
    if asked not in options:
        st.session_state[_key("device")] = "auto"
        st.caption(f"These settings asked for {asked}, but {devices.missing(asked)}: auto is used instead.")
    here = devices.describe(devices.resolve("auto"))
    st.selectbox("Device", options, key=_key("device"), disabled=_disabled("device"),
                 format_func=lambda name: f"auto ({here} here)" if name == "auto" else name,
                 help=_help("device", "auto trains on a CUDA GPU, else Apple's MPS, else the CPU."))
    if options == ["auto", "cpu"]:
        st.caption("This server has no GPU (CUDA or Apple's MPS): runs train on the CPU.")


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
    if _shown(name):
        st.checkbox(label, key=_key(name), help=_help(name, help), disabled=_disabled(name))


def _silence() -> None:
    """Which settings do nothing with the values the widgets hold now (vae_core.controls)."""
    values = {**st.session_state[draft.DRAFT],
              **{name: st.session_state[_key(name)] for name in draft.FIELDS if _key(name) in st.session_state}}
    st.session_state[SILENCED] = controls.silenced(SimpleNamespace(**values))
    st.session_state[CAPTIONED] = set()


def _value(name: str):
    return st.session_state[_key(name)]


def _on_dataset_change() -> None:
    """The chosen dataset's own settings (pages.ui.datasets), the last one's kept for it."""
    datasets.switch_to(_value("dataset"), st.session_state[draft.DRAFT]["dataset"], st.session_state.get(LOCKED, {}))


def _use_upload(file, side: int, channels: int) -> None:
    try:
        data = load_upload(file.getvalue(), file.name, size=side, channels=channels)
    except DataError as exc:
        st.session_state.upload_error = f"Could not use {file.name}: {exc}"
        return
    st.session_state.upload_error = None
    st.session_state[session.UPLOAD] = data
    st.session_state[_key("dataset")] = data.name
    datasets.switch_to(data.name, st.session_state[draft.DRAFT]["dataset"], st.session_state.get(LOCKED, {}))


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
    _silence()
    upload = st.session_state.get(session.UPLOAD)
    names = dataset_names() + ([upload.name] if upload is not None else [])
    if _value("dataset") not in names:
        names.append(_value("dataset"))
    lim = current_limits()
    st.header("Settings")
    st.selectbox("Dataset", names, key=_key("dataset"), format_func=datasets.menu_label,
                 on_change=_on_dataset_change, disabled=_disabled("dataset"), help=_help("dataset", None))
    datasets.switch_note(_value("dataset"))
    if not _locked("dataset"):
        _upload_box()
    with st.expander("Model", icon=":material/hub:"):
        st.radio("Kind", ["vae", "ae"], key=_key("mode"), horizontal=True,
                 format_func={"vae": "VAE", "ae": "Autoencoder"}.get, disabled=_disabled("mode"),
                 help=_help("mode", "An autoencoder has a deterministic encoder and no KL term."))
        st.radio("Architecture", ARCHITECTURES, key=_key("architecture"), horizontal=True,
                 format_func={"mlp": "MLP", "conv": "Convolutional"}.get, disabled=_disabled("architecture"),
                 help=_help("architecture", None))
        st.number_input("Latent size", min_value=1, max_value=lim.max_latent, step=1, key=_key("latent_dim"),
                        disabled=_disabled("latent_dim"), help=_help("latent_dim", "The size d of the code z."))
        st.text_input("Hidden widths (comma separated)", key=_key("hidden"), disabled=_disabled("hidden"),
                      help=_help("hidden", "Layer widths of the MLP, or channels per layer of the "
                                           "convolutional model."))
        _select("activation", "Activation", ACTIVATIONS)
        _checkbox("batch_norm", "Batch norm")
        _number("dropout", "Dropout", 0.05)
        _checkbox("normalize_inputs", "Standardise inputs",
                  help="Standardise the encoder's input per feature; targets stay as they are.")
        _device_select()
    with st.expander("Objective", icon=":material/functions:", expanded=True):
        _select("recon_loss", "Reconstruction loss", RECON_LOSSES,
                help="bce: pixels as Bernoulli probabilities; mse: Gaussian decoder with σ below.")
        _number("mse_sigma", "Decoder σ (MSE)", 0.05, "%g",
                help="The Gaussian decoder's standard deviation: a smaller σ weighs reconstruction more.")
        _number("mixed_weight", "Share of BCE", 0.1, help="w in w·BCE + (1 − w)·Gaussian.")
        _number("beta", "β (weight of the KL term)", 0.5, "%g",
                help="β = 1 trains the ELBO; β > 1 pushes codes towards the prior; β < 1 favours reconstruction.")
        _select("beta_schedule", "β schedule", BETA_SCHEDULES,
                help="warmup: β rises from 0 once; cyclical: it rises from 0 in each cycle.")
        _number("beta_warmup_epochs", "Warm-up epochs", 1.0, "%g", help="Epochs over which β rises from 0.")
        _number("beta_cycles", "Cycles", 1, help="How many times β starts again from 0.")
        _number("beta_cycle_ratio", "Share of each cycle spent rising", 0.1,
                help="β rises over this share of a cycle, then holds.")
        beta_plot = st.empty()
        _checkbox("capacity", "Capacity objective γ·|KL − C|",
                  help="Aim the KL at a target C that rises during training, instead of weighing it by β.")
        _number("capacity_gamma", "γ", 10.0, "%g", help="How hard the KL is pulled to C.")
        _number("capacity_max", "C at the end of the ramp (nats)", 1.0, "%g",
                help="The KL target C once the ramp is over.")
        _number("capacity_ramp_epochs", "Ramp epochs", 1.0, "%g", help="Epochs over which C rises from 0.")
        _number("free_bits", "Free bits (nats per dimension)", 0.1, "%g",
                help="λ: a dimension's mean KL under λ nats is not penalised; 0 turns free bits off.")
        _number("adv_weight", "Adversarial weight", 0.01, "%g", help="0 turns the discriminator off.")
        _number("l1", "L1 on weights", 1e-5, "%g")
    with st.expander("Optimiser and learning rate", icon=":material/speed:"):
        _select("optimizer", "Optimiser", OPTIMIZERS)
        _number("lr", "Learning rate", 1e-4, "%g")
        _number("momentum", "Momentum", 0.05)
        _checkbox("nesterov", "Nesterov")
        _number("weight_decay", "Weight decay", 1e-4, "%g")
        _select("lr_schedule", "LR schedule", LR_SCHEDULES)
        _number("lr_warmup_epochs", "LR warm-up epochs", 1.0, "%g")
        _number("lr_step_epochs", "Epochs per step", 1)
        _number("lr_gamma", "Decay factor", 0.05)
        _number("lr_patience", "Patience (epochs)", 1)
        lr_plot = st.empty()
        _number("grad_clip", "Gradient clipping (max norm, 0 = off)", 0.5, "%g")
    with st.expander("Training", icon=":material/tune:"):
        cap = st.session_state.get("epoch_cap")
        st.number_input("Epochs", min_value=1, max_value=min(lim.max_epochs, cap or lim.max_epochs), step=1,
                        key=_key("epochs"), disabled=_disabled("epochs"),
                        help=f"Your teacher capped runs at {cap} epochs for this class." if cap else None)
        _number("batch_size", "Batch size", 16)
        _number("seed", "Seed", 1)
        _checkbox("early_stopping", "Early stopping on validation loss")
        _number("patience", "Patience (epochs)", 1)
        _number("min_delta", "Minimum improvement", 0.1, "%g")
    with st.expander("Augmentation (images)", icon=":material/flip:"):
        _checkbox("augment", "Augment training batches")
        _number("aug_shift", "Shift (share of the side)", 0.05)
        _number("aug_rotation", "Rotation (degrees)", 5.0)
        _number("aug_zoom", "Zoom (relative)", 0.05)
        _checkbox("aug_flip", "Horizontal flips")
    st.button("Restore defaults", icon=":material/restart_alt:", on_click=draft.load_config, args=(TrainConfig(),))
    config, error = collect()
    if config is not None and datasets.found_here(config.dataset):  # a download waits for the page's spinner
        try:
            steps_per_epoch = math.ceil(len(session.dataset(config.dataset).train) / config.batch_size)
        except DataError:
            return config, error
        _schedule_plots(config, steps_per_epoch, beta_plot, lr_plot)
    return config, error


def _schedule_plots(config: TrainConfig, steps_per_epoch: int, beta_box, lr_box) -> None:
    """The β and learning-rate schedules over the run, in epochs as their settings are (β only where used)."""
    total = config.epochs * steps_per_epoch
    steps = np.linspace(0, total, min(total, 300) + 1).astype(int).tolist()
    if "beta" not in st.session_state[SILENCED]:
        betas = [beta_at(s, config.beta, config, steps_per_epoch) for s in steps]
        beta_box.image(figures.schedule_svg([s / steps_per_epoch for s in steps], betas, "β"))
    lr_steps, lrs = _lr_curve(config.to_json(), steps_per_epoch)
    lr_box.image(figures.schedule_svg([s / steps_per_epoch for s in lr_steps], lrs, "learning rate"))


@st.cache_data(max_entries=64, show_spinner=False)
def _lr_curve(config_json: str, steps_per_epoch: int):
    return lr_curve(TrainConfig.from_json(config_json), steps_per_epoch)
