"""st.fragment with a timer that survives piled-up script reruns (a patch on Streamlit internals, pinned at 1.67.0)."""

from __future__ import annotations

import functools

import streamlit as st
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState


def fragment(body, run_every: float | None):
    """st.fragment(run_every=run_every)(body), whose every run also sends the browser the fragment's timer.

    Streamlit sends a fragment's timer (an auto_rerun message) only from whole-page reruns, and the browser
    drops every timer when a whole-page rerun starts. When reruns pile up (30 students pressing Start at once),
    a whole-page rerun's timer can go missing and the page stopped redrawing (bench/README.md, "A page that
    stops redrawing"). Sent from every run of the fragment, the timer comes back with the next one; the
    browser ignores a timer it already has. The fragment keeps body's name, and so its identity."""
    @functools.wraps(body)
    def timed(*args, **kwargs):
        ctx, fragment_id = get_script_run_ctx(), ThreadState.get().fragment_id
        if run_every is not None and ctx is not None and fragment_id is not None:
            msg = ForwardMsg()
            msg.auto_rerun.interval, msg.auto_rerun.fragment_id = run_every, fragment_id
            ctx.enqueue(msg)
        return body(*args, **kwargs)
    return st.fragment(run_every=run_every)(timed)
