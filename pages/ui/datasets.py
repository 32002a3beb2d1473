"""The Train page's dataset choice: the menu's labels (which sets are here), how to get one that is not,
and the settings that go with each dataset, kept per dataset as the user left them."""

from __future__ import annotations

import streamlit as st

from pages.ui import draft, session, text
from vae_core.classroom import room
from vae_core.config import parse_numbers
from vae_core.data import DATASETS, DataError, recommended
from vae_core.data import availability as avail

INSTALLED = "idx_installed"  # session key: (dataset, folder) of the files this session just uploaded
SUFFIX = {avail.HERE: "", avail.DOWNLOAD: " · downloads on first use", avail.MISSING: " · not installed"}


def dataset_label(name: str) -> str:
    info = DATASETS.get(name)
    return info.title if info else f"{name.removeprefix('upload:')} (uploaded)"


def menu_label(name: str) -> str:
    """The dataset's title, and whether it is here: "MNIST (28×28) · not installed"."""
    return dataset_label(name) + (SUFFIX[avail.availability(name).state] if name in DATASETS else "")


def available(name: str) -> bool:
    """Whether the page can load `name` now: found here, downloadable, or not a built-in set."""
    return name not in DATASETS or avail.availability(name).usable


def found_here(name: str) -> bool:
    """Whether loading `name` is quick: nothing to download first."""
    return name not in DATASETS or avail.availability(name).state == avail.HERE


# --- a dataset that is not here ------------------------------------------------------------------------
def explain_missing(name: str, failed: str | None = None) -> None:
    """Say in plain words that `name` is not on this server and the ways to get it, with an upload of its files."""
    title = DATASETS[name].title.split(" (")[0]
    why = ("Downloading it did not work" if failed else
           "This server has no copy of it and cannot download it (it is offline, or its mirror does not answer)")
    ways = "\n".join(f"{i}. {way}" for i, way in enumerate(avail.how_to_get(name), 1))
    with st.container(border=True, key="dataset_missing"):
        st.warning(f"**{title} is not installed here.** {why}. Choose another dataset, or get it in one of "
                   f"these ways:\n\n{ways}", icon=":material/cloud_off:")
        if may_install():
            files = st.file_uploader(f"The {title} IDX files, or a zip of them", accept_multiple_files=True,
                                     key=f"idx_files_{name}")
            st.button(f"Use these files for {title}", key="idx_install", type="primary", disabled=not files,
                      on_click=_install, args=(name, files))
        else:
            st.caption("Files uploaded here become this dataset for everyone on the server, so in a class only "
                       "your teacher (signed in on the Class page) can upload them.")
        if failed:
            st.caption(f"What went wrong: {text.plain(failed)}")
    failed_upload = st.session_state.get("idx_error")
    if failed_upload and failed_upload[0] == name:
        st.error(failed_upload[1], icon=":material/error:")


def may_install() -> bool:
    """Whether this session may install a dataset's files for the whole server: anyone on a server without a
    class (no teacher key), else the teacher only (a student's files would be everyone's MNIST)."""
    return not room.key_set() or session.actor().teacher


def _install(name: str, files) -> None:
    if not may_install():  # checked again here: the button is only a page's
        st.session_state.idx_error = (name, "Only your teacher can install a dataset for this server.")
        return
    try:
        folder = avail.install_upload(name, [(f.name, f.getvalue()) for f in files])
    except DataError as exc:
        st.session_state.idx_error = (name, f"Could not use these files: {exc}")
        return
    st.session_state.idx_error = None
    st.session_state[INSTALLED] = (name, str(folder))


def installed_note(name: str) -> None:
    """Confirm files this session just installed, once."""
    done = st.session_state.get(INSTALLED)
    if done and done[0] == name:
        st.success(f"{dataset_label(name)} is installed in `{done[1]}` for everyone on this server.",
                   icon=":material/check_circle:")
        st.session_state.pop(INSTALLED)


# --- settings per dataset -----------------------------------------------------------------------------
def switch_to(new: str, old: str, locked) -> None:
    """Keep the dataset-dependent settings the user had for `old`, and give `new` those they had for it, else
    its recommendation; leave a note saying what changed. Settings the teacher locked stay as they are."""
    values = st.session_state[draft.DRAFT]
    current = {name: _widget_value(name) for name in recommended.PER_DATASET}
    memory = st.session_state.setdefault(draft.KEPT, {})
    restored = new in memory
    kind = DATASETS[new].kind if new in DATASETS else "image"
    wanted = recommended.switch(current, new, kind, memory, old)
    cap = st.session_state.get("epoch_cap")
    if cap is not None:
        wanted["epochs"] = min(wanted["epochs"], cap)
    wanted = {name: value for name, value in wanted.items() if name not in locked}
    for name, value in wanted.items():
        values[name] = value
        st.session_state[draft.WIDGET + name] = ", ".join(map(str, value)) if isinstance(value, list) else value
    values["dataset"] = new
    st.session_state[draft.SWITCH_NOTE] = (new, recommended.changes(current, {**current, **wanted}), restored)


def _widget_value(name: str):
    value = st.session_state.get(draft.WIDGET + name, st.session_state[draft.DRAFT][name])
    if name == "hidden" and isinstance(value, str):
        try:
            return parse_numbers(value)
        except ValueError:
            return value  # kept as typed, and given back as typed
    return value


def switch_note(name: str) -> None:
    """What the last switch of dataset changed, while that dataset stays chosen: a note, not a toast, so it
    can be read after the fact."""
    note = st.session_state.get(draft.SWITCH_NOTE)
    if not note or note[0] != name or not note[1]:
        return
    why = "as you left them for this dataset" if note[2] else "recommended for this dataset"
    st.info(f"**{text.plain(dataset_label(name))}:** {text.plain(', '.join(note[1]))} ({why}).",
            icon=":material/tune:")
