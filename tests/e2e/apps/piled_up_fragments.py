"""The smallest app that blanks a tab as some of thirty students' tabs blanked: fragment runs that pile up
before the server has sent anything (tests/e2e/test_piled_up_fragments.py).

The race, made certain: "Pile up" blocks the server's event loop (so nothing is sent), then the page run and
two fragment runs follow one another, each asking for the next as a fragment timer firing meanwhile would.
Each run clears the unsent messages of the fragment it reruns, but kept cached-message references (large
elements the browser already has, sent by hash) whose neighbours it dropped. The browser then drops the
elements the page run did not send, and the next reference points past the end of the fragment's block:
"Bad delta path index 3 (should be between [0, 1])", and the tab stops updating.
"""

import threading

import streamlit as st
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

LARGE = "0123456789" * 2_000  # 20 kB: Streamlit caches messages from 10 kB by default (global.minCachedMessageSize)
HELD = "held"  # session-state key: the event that releases the blocked event loop


def _session():
    ctx = get_script_run_ctx()
    return ctx, Runtime.instance()._session_mgr.get_active_session_info(ctx.session_id).session


def _hold_event_loop() -> None:
    """Block the server's event loop, which sends messages, until the last fragment run releases it."""
    _, session = _session()
    held, release = threading.Event(), threading.Event()
    st.session_state[HELD] = release

    def block():
        held.set()
        release.wait(10)
    session._event_loop.call_soon_threadsafe(block)
    held.wait(10)


def _rerun_fragment(fragment_id: str) -> None:
    """What the browser's fragment timer sends, as if it arrived while this run went on."""
    ctx, session = _session()
    state = ClientState(fragment_id=fragment_id, is_auto_rerun=True, page_script_hash=ctx.page_script_hash)
    state.cached_message_hashes.extend(ctx.cached_message_hashes)
    session.request_rerun(state)


@st.fragment
def panel() -> None:
    runs = st.session_state.get("fragment_runs", 0)
    st.write(f"Fragment runs: {runs}")
    st.write("A small element")
    st.write("Another small element")
    st.code(LARGE, language=None)  # unchanged: sent as a reference once the browser has it
    st.session_state.fragment_runs = runs + 1
    st.session_state.fragment_id = ThreadState.get().fragment_id
    chain = st.session_state.get("chain", 0)
    if chain:
        st.session_state.chain = chain - 1
        if chain > 1:
            _rerun_fragment(st.session_state.fragment_id)
        else:
            st.session_state.pop(HELD).set()


st.title("Piled-up fragment runs")
pile = st.button("Pile up")
if pile:
    _hold_event_loop()
panel()
if pile:
    st.session_state.chain = 2
    _rerun_fragment(st.session_state.fragment_id)
