"""Learn: the theory behind a VAE, formula by formula, and lesson presets that load the Train page."""

from __future__ import annotations

import streamlit as st

from pages.ui import draft, router, session
from vae_core.classroom.quotas import QuotaError
from vae_core.config import ConfigError
from vae_core.views import theory as theory_data
from vae_core.views.lessons import LESSONS, UNAVAILABLE, Lesson

router.require_router()

THEORY_WIDTH = 900  # pixels: lines of text as wide as the page's were too long to read
# Streamlit scrolls to the heading a link names (learn#free-bits) when that heading appears: before the page below
# it has arrived, and while the formulas above it still change height, so it landed up to a screen away. Scroll
# again while the heading moves, for up to 5 s, unless the reader scrolls first.
SCROLL_TO_ANCHOR = """<script>(() => {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id) return;
  let stopped = false, last = null, still = 0, ticks = 0;
  for (const name of ["wheel", "touchmove", "keydown", "mousedown"]) {
    addEventListener(name, () => { stopped = true; }, {once: true, capture: true});
  }
  const tick = () => {
    const heading = document.getElementById(id)?.closest("[data-testid='stHeading']");
    if (stopped || !heading) return;
    const top = heading.getBoundingClientRect().top;
    if (top !== last) {
      heading.style.scrollMarginTop = "4rem";  // below the navigation bar
      heading.scrollIntoView(true);
      last = heading.getBoundingClientRect().top;
      still = 0;
    }
    if (++still < 10 && ++ticks < 50) setTimeout(tick, 100);
  };
  tick();
})();</script>"""


def theory() -> None:
    """The theory of vae_core.views.theory, in its order: the derivation first, then each technique. Each formula
    is a heading with its anchor, which the Train page's help texts link to."""
    st.markdown("""
A **variational autoencoder** learns two networks at once. The *encoder* maps an input $x$ to a
distribution $q_\\phi(z\\mid x) = \\mathcal N(\\mu(x), \\operatorname{diag}\\sigma^2(x))$ over a small
latent code $z$; the *decoder* maps a code back to a distribution $p_\\theta(x\\mid z)$ over inputs.
Codes are meant to follow the prior $p(z) = \\mathcal N(0, I)$, so that decoding a random $z$ gives
something that looks like data. Each formula below names the Train page settings it explains, and each of
those settings' help (the **?** beside it) links back here.
""")
    contents: dict[str, list[str]] = {}
    for formula in theory_data.FORMULAS:
        contents.setdefault(formula.part, []).append(f"[{formula.title}](#{formula.anchor})")
    st.markdown("\n".join(f"- **{part}**: {' · '.join(links)}" for part, links in contents.items()))
    part = None
    for formula in theory_data.FORMULAS:
        if formula.part != part:
            part = formula.part
            st.header(part, divider="gray")
        st.subheader(formula.title, anchor=formula.anchor)
        if formula.controls:
            st.caption("On the Train page: " + ", ".join(f"**{theory_data.LABELS[c]}**" for c in formula.controls))
        for latex in formula.latex:
            st.latex(latex)
        st.markdown(formula.text)
    st.html(SCROLL_TO_ANCHOR, unsafe_allow_javascript=True)


def _load(config, lesson_key: str) -> None:
    draft.load_config(config, lesson=lesson_key)
    st.switch_page(router.TRAIN_PAGE)


def _run_side_by_side(lesson: Lesson) -> None:
    """Train all of the lesson's runs as one background series, as the Compare page's "Run this pair" does,
    and show them there, with the lesson picked."""
    labels, configs = zip(*lesson.runs)
    try:
        session.start_series(list(configs), list(labels), lesson.title, lesson.key)
    except (ConfigError, QuotaError) as exc:
        st.session_state.learn_error = f"Not started — {exc}"
        st.rerun()
    st.session_state.pair_lesson = lesson.key
    st.session_state.compare_metric = lesson.curve  # Compare opens on the curve the lesson says to look at
    st.switch_page(router.COMPARE_PAGE)


def lesson_card(lesson: Lesson) -> None:
    """What the lesson shows, what to look at (the line students need most, so it stands out), then its runs: each
    setting in full as text, a short button beside it (a setting in a button label was cut off)."""
    with st.container(border=True):
        st.markdown(f"#### {lesson.title}")
        st.markdown(lesson.claim)
        st.info(f"**Look at:** {lesson.look_for}", icon=":material/visibility:")
        names = ["preset", "contrast", *(f"extra{i}" for i in range(len(lesson.extra)))]
        for name, (label, config) in zip(names, lesson.runs):
            setting, button = st.columns([3, 2], vertical_alignment="center")
            setting.markdown(f"**{label}**")
            if button.button("Open in Train", key=f"lesson_{lesson.key}_{name}", icon=":material/tune:",
                             width="stretch", help=f"Load {label} into the Train page's settings"):
                _load(config, lesson.key)
        labels = [label for label, _ in lesson.runs]
        which = " and ".join(labels) if len(labels) == 2 else f"all {len(labels)} runs"
        if st.button("Run side by side", key=f"lesson_{lesson.key}_pair", icon=":material/compare_arrows:",
                     width="stretch", help=f"Train {which} one after the other in the background and compare "
                                           "them on the Compare page"):
            _run_side_by_side(lesson)


def page() -> None:
    st.title("Learn")
    theory_tab, lessons_tab = st.tabs(["How a VAE works", "Lessons"])
    with theory_tab, st.container(width=THEORY_WIDTH):
        theory()
    with lessons_tab:
        st.markdown("Each lesson is two or three runs that differ in one setting. **Open in Train** loads one of them "
                    "into the Train page; **Run side by side** trains them all and opens the Compare page on what "
                    "the lesson says to look at.")
        if st.session_state.get("learn_error"):
            st.error(st.session_state.pop("learn_error"), icon=":material/block:")
        cols = st.columns(2)
        for i, lesson in enumerate(LESSONS):
            with cols[i % 2]:
                lesson_card(lesson)
        for reason in UNAVAILABLE.values():
            st.caption(reason)


page()
