"""The Train page's settings as a draft kept while other pages show, and their form in the page's link."""

from __future__ import annotations

import dataclasses
import math

import streamlit as st

from vae_core.config import ConfigError, TrainConfig, parse_numbers
from vae_core.data import dataset_names

DRAFT = "draft"  # the Train page's settings as a dict, kept while other pages show
WIDGET = "cfg_"  # widget key prefix: "cfg_beta" holds the beta field
FIELDS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
DEFAULTS = TrainConfig().to_dict()
KEPT = "per_dataset"  # session key: {dataset: its dataset-dependent settings as the user left them}
SWITCH_NOTE = "dataset_note"  # session key: (dataset, what switching to it changed, whether restored)


def init_session() -> None:
    """First run of a browser session: settings from the URL (warnings kept for the Train page)."""
    if DRAFT not in st.session_state:
        config, warnings = config_from_query(st.query_params.to_dict())
        load_config(config)
        st.session_state.url_warnings = warnings


def load_config(config: TrainConfig, lesson: str | None = None) -> None:
    """Put a configuration into the Train page's widgets (and remember which lesson it came from); the settings
    kept for other datasets go: each will start from its recommendation again."""
    st.session_state[DRAFT] = config.to_dict()
    st.session_state.pop(KEPT, None)
    st.session_state.pop(SWITCH_NOTE, None)
    st.session_state.lesson = lesson
    for name in FIELDS:
        st.session_state.pop(WIDGET + name, None)


def draft_config() -> TrainConfig:
    """The Train page's settings as a config; the defaults where they are not valid."""
    try:
        return TrainConfig.from_dict(st.session_state.get(DRAFT, {}), strict=False)
    except ConfigError:
        return TrainConfig()


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
        return parse_numbers(text)
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
    """Show the config in the URL (non-default fields only; ?present=1 stays), writing only when it changed."""
    wanted = config_to_query(config) | {k: v for k, v in st.query_params.to_dict().items() if k == "present"}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
