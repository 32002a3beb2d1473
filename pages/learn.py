"""Learn: the few formulas behind a VAE, and lesson presets that load the Train page."""

from __future__ import annotations

import streamlit as st

from pages.ui import draft, router, session
from vae_core.classroom.quotas import QuotaError
from vae_core.config import ConfigError
from vae_core.views.lessons import LESSONS, UNAVAILABLE, Lesson

router.require_router()


def theory() -> None:
    st.markdown("""
A **variational autoencoder** learns two networks at once. The *encoder* maps an input $x$ to a
distribution $q_\\phi(z\\mid x) = \\mathcal N(\\mu(x), \\operatorname{diag}\\sigma^2(x))$ over a small
latent code $z$; the *decoder* maps a code back to a distribution $p_\\theta(x\\mid z)$ over inputs.
Codes are meant to follow the prior $p(z) = \\mathcal N(0, I)$, so that decoding a random $z$ gives
something that looks like data.
""")
    st.markdown("**The objective: the evidence lower bound (ELBO)**, maximised for each training input")
    st.latex(r"\log p_\theta(x) \;\ge\; "
             r"\underbrace{\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]}_{-\text{reconstruction}}"
             r" \;-\; \underbrace{\mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\text{rate}}")
    st.markdown("The app plots both terms in nats per sample: the **reconstruction** loss (BCE for pixels as "
                "probabilities, or a Gaussian/MSE) and the **KL** term.")
    st.markdown("**The KL term in closed form**, for a diagonal Gaussian against N(0, I), summed over dimensions")
    st.latex(r"\mathrm{KL} = \tfrac12 \sum_{j=1}^{d} \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big)")
    st.markdown("A dimension with KL ≈ 0 carries no information about the input (μ ≈ 0, σ ≈ 1 for every "
                "input). One is *informative* when it carries over 0.1 nats and its μ varies across inputs; "
                "when none is, or the whole code carries less than one bit (ln 2 ≈ 0.69 nats), the model has "
                "suffered **posterior collapse**, and the Train page warns of it.")
    st.markdown("**The reparameterisation trick** makes sampling differentiable, so both networks train by "
                "gradient descent")
    st.latex(r"z = \mu(x) + \sigma(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I)")
    st.markdown("**β-VAE** weighs the KL term: β > 1 pushes codes towards the prior (smoother, more regular "
                "latent space, blurrier reconstructions); β < 1 favours reconstruction.")
    st.latex(r"\mathcal L_\beta = \text{reconstruction} + \beta \cdot \mathrm{KL}")
    st.markdown("""
**Autoencoder against VAE.** A plain autoencoder has a deterministic code and no KL term: it can
reconstruct well, but nothing makes its codes fill the space around the origin, so decoding a random
point often gives nonsense. The VAE's noise and KL term make the latent space *continuous* (nearby codes
decode to similar inputs) and *complete* (random codes from the prior decode to plausible inputs).

**Other techniques on the Train page:** KL **warm-up** or **cyclical** β (start with β near 0 so the
decoder learns to use z before the KL term presses on it), **free bits** (no KL penalty below a number of
nats per dimension), the **capacity** objective γ·|KL − C| (aim the KL at a target C that rises during
training), and the usual optimisation tools: learning-rate schedules, weight decay, dropout, augmentation
and early stopping.
""")


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
    with theory_tab:
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
