"""The Train page's "Show the code": the current settings as one plain PyTorch script, to read and download."""

from __future__ import annotations

import streamlit as st

from vae_core import script
from vae_core.config import TrainConfig
from vae_core.data import Dataset


def show(config: TrainConfig | None, data: Dataset | None) -> None:
    """The script that trains `config` on `data` as this page would; nothing while either is missing."""
    if config is None or data is None:
        return
    with st.expander("Show the code", icon=":material/code:"):
        name, mime = script.download_name(data)
        text, button = st.columns([3, 1], vertical_alignment="center")
        text.caption("These settings as one plain PyTorch script, without VAE Lab: the same data split, seed, "
                     "model, objective and schedules, so on a CPU it prints this page's validation −ELBO epoch by "
                     "epoch." + (" The download holds the data too (data.npz)." if name.endswith(".zip") else ""))
        button.download_button(f"Download {name}", lambda: script.download(config, data), name, mime,
                               key="code_download", icon=":material/download:", on_click="ignore", width="stretch")
        st.code(script.training_script(config, data), language="python", line_numbers=True)
