"""Explore a trained model: the latent space, interpolations, traversals, the latent plane, your own image, IWAE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from pages.ui import charts, draw, explore_points, fork, replay, router, scope, session, text, uncertainty
from vae_core import bundles
from vae_core.classroom import cards, quotas
from vae_core.classroom.identity import NOTE_MAX, TITLE_MAX
from vae_core.config import TrainConfig
from vae_core.data import DataError, Dataset
from vae_core.maths import metrics, quality, score
from vae_core.maths.models import VAE
from vae_core.maths.objectives import kl_per_dim
from vae_core.runs import RunError, SavedRun
from vae_core.train import Status
from vae_core.views import explore, figures

router.require_router()

CURRENT = "This session's run"
N_POINTS = 1000  # validation samples drawn in the latent scatter


def pick_run() -> tuple[VAE, TrainConfig, Dataset, str] | None:
    """The model to explore: this student's run when it is not training, or a saved run (with its card)."""
    job = session.job()
    saved = {run.name: run for run in scope.runs_in_scope("explore_scope")}
    options = ([CURRENT] if job is not None else []) + list(saved)
    if st.session_state.get("explore_run") not in options:
        st.session_state.pop("explore_run", None)
    if not options:
        st.info("No trained model yet: train one on the Train page first, or import a run below.",
                icon=":material/info:")
        return None
    labels = {CURRENT: CURRENT} | {n: f"{cards.label(run)} · {scope.owner_name(run)} · {n[:15]}"
                                   for n, run in saved.items()}
    name = st.selectbox("Run", options, key="explore_run", format_func=labels.get)
    if name == CURRENT:
        view = job.view()
        if not (view.status.ended or view.status == Status.PAUSED):
            st.info("This session's run is still training: pause or stop it to explore it, or pick a saved run.",
                    icon=":material/hourglass_top:")
            return None
        model = job.model()
        if model is None:
            st.info("This session's run failed before it built a model; pick a saved run.", icon=":material/info:")
            return None
        _ending(str(view.status), view.message, view.epoch)
        return model, job.config, job.data, f"current-{job.id}-{view.step}"
    run = saved[name]
    run_card(run)
    fork.offer(run)
    meta = run.meta
    _ending(str(meta.get("status")), str(meta.get("message", "")), meta.get("epochs_done") or 0)
    try:
        model = session.saved_model(run)
        data = session.run_dataset(run)
    except (RunError, DataError) as exc:
        st.error(str(exc))
        return None
    return model, run.config, data, name


def _ending(status: str, message: str, epochs: int) -> None:
    """Say so above the views when the run did not train to its end, and when its model never finished an
    epoch (its pictures are then those of a barely trained model, not a result)."""
    if status in ("stopped", "diverged", "failed"):
        shown = st.error if status in ("diverged", "failed") else st.warning
        shown(f"**This run {status}** after {epochs} epoch{'s' if epochs != 1 else ''}. " + text.plain(message),
              icon=":material/error:" if status != "stopped" else ":material/info:")
    if epochs == 0:
        st.warning("It never finished an epoch: what follows shows a model that has barely trained (or not at "
                   "all), not what a VAE learns.", icon=":material/warning:")


def _act(action, *args) -> None:
    """Run a card action for this student; its refusal (not theirs, gone) is shown in plain words."""
    try:
        action(*args)
        st.session_state.card_error = None
    except (cards.NotAllowed, FileNotFoundError, ValueError, OSError) as exc:
        st.session_state.card_error = str(exc)


def _save_card(run_dir) -> None:
    _act(cards.rename, run_dir, session.actor(), st.session_state[f"card_title-{run_dir.name}"])
    if not st.session_state.card_error:
        _act(cards.annotate, run_dir, session.actor(), st.session_state[f"card_note-{run_dir.name}"])


def _delete(name: str) -> None:
    """Move the run to the trash; when it is this student's current run, forget that too (the Train page and
    Explore would otherwise go on showing it from memory)."""
    _act(cards.trash, session.runs_dir(), name, session.actor())
    st.session_state.pop("explore_run", None)
    job = session.job()
    if not st.session_state.card_error and job is not None and Path(job.state().run_dir or "").name == name:
        session.clear()


def run_card(run: SavedRun) -> None:
    """The run's card: whose it is, its title and note (editable by its owner and the teacher), hand-in and
    feedback, its download, and Delete."""
    card, actor = cards.card(run), session.actor()
    mine = cards.owned_by(run, actor.owner)
    may_edit = mine or actor.teacher
    status = run.meta.get("status", "")
    with st.expander(f"About this run · {text.plain(scope.owner_name(run))} · {text.plain(str(status))}",
                     icon=":material/badge:",
                     expanded=bool(card["feedback"]) and mine):
        left, right = st.columns([3, 2], gap="large")
        with left:
            if may_edit:
                with st.form(f"card-{run.name}", border=False):
                    st.text_input("Title", cards.title(run), max_chars=TITLE_MAX, key=f"card_title-{run.name}")
                    st.text_area("Note", card["note"], max_chars=NOTE_MAX, key=f"card_note-{run.name}", height=68)
                    st.form_submit_button("Save", icon=":material/save:", on_click=_save_card, args=(run.path,))
            else:
                st.markdown(f"**{text.plain(cards.title(run))}**")
            if run.meta.get("message"):
                st.caption(text.plain(str(run.meta["message"])))
        with right:
            if card["feedback"] and may_edit:  # a student's feedback and note are theirs and the teacher's only
                st.info("**Feedback from your teacher:**  \n" + text.plain(card["feedback"]),
                        icon=":material/rate_review:")
            if mine:
                _hand_in_row(run, card, actor)
            st.download_button("Download the run (zip)", lambda: bundles.bundle(run.path, private=may_edit),
                               f"{run.name}.zip",
                               "application/zip", icon=":material/download:", on_click="ignore", width="stretch")
            if may_edit:
                box, button = st.columns([3, 2], vertical_alignment="center")
                confirm = box.checkbox("I want to delete this run", key=f"delete-{run.name}")
                button.button("Delete", key="delete", icon=":material/delete:", disabled=not confirm, on_click=_delete,
                              args=(run.name,), width="stretch",
                              help="Moves the run to the server's trash, which your teacher empties.")
        if st.session_state.get("card_error"):
            st.error(st.session_state.card_error)


def _hand_in_row(run: SavedRun, card: dict, actor: cards.Actor) -> None:
    hand_in = card["handed_in"]
    if hand_in:
        st.success("Handed in" + (f" for {text.plain(hand_in['assignment'])}" if hand_in["assignment"] else "")
                   + f" · {hand_in['at']}", icon=":material/assignment_turned_in:")
        st.button("Withdraw the hand-in", key="withdraw", on_click=_act, args=(cards.withdraw, run.path, actor),
                  width="stretch")
        return
    assignments = list(session.classroom().room().assignments)
    pick, button = st.columns([3, 2], vertical_alignment="bottom")
    picked = pick.selectbox("Hand in for", assignments or [""], key="hand_in_for",
                            format_func=lambda a: a or "(no assignment open)", disabled=not assignments)
    button.button("Hand in", key="hand_in", icon=":material/assignment_turned_in:", type="primary", width="stretch",
                  on_click=_act, args=(cards.hand_in, run.path, actor, picked or "",
                                       session.classroom().room().period))


def _import(file) -> None:
    try:
        quotas.check_room_for_runs(session.runs_dir(), session.owner(), new_bytes=file.size)
        path = bundles.import_bundle(file.getvalue(), session.runs_dir(), session.owner())
    except (bundles.BundleError, quotas.QuotaError) as exc:
        st.session_state.import_error = f"Not imported — {exc}"
        return
    st.session_state.import_error = None
    st.session_state.explore_scope, st.session_state.explore_run = "mine", path.name


def import_section() -> None:
    """Import a downloaded run bundle as a new run of this student's."""
    with st.expander("Import a run (a zip downloaded from VAE Lab)", icon=":material/upload_file:",
                     expanded=bool(st.session_state.get("import_error"))):
        file = st.file_uploader("Run bundle", type=["zip"], key="import_file")
        st.button("Import", key="import", type="primary", icon=":material/upload:", disabled=file is None,
                  on_click=_import, args=(file,))
        if st.session_state.get("import_error"):
            st.error(st.session_state.import_error)


def _on_pick() -> None:
    """A click on the latent scatter picks sample A, the next click B, and so on."""
    picked = st.session_state.explore_latent.pick
    if picked is None:
        return
    slot = st.session_state.get("explore_next", "explore_a")
    st.session_state[slot] = int(picked)
    st.session_state.explore_next = "explore_b" if slot == "explore_a" else "explore_a"


@st.cache_data(max_entries=8, show_spinner=False)
def _hover_images(images: np.ndarray) -> list[str | None]:
    """The scatter's hover images, made once per set of samples (a run's validation samples) and shared."""
    return figures.thumbnails(images)


def _show(images: np.ndarray, cols: int, caption: str, side: int, tile: int = 56, rows: list[str] | None = None):
    """Images in rows of `cols`, each enlarged to about `tile` pixels, each row named on its left by `rows`."""
    grid = figures.mosaic(images, cols=cols, scale=figures.tile_scale(side, tile))
    charts.image(grid if rows is None else figures.label_rows(grid, rows), caption)


def latent_section(model: VAE, config: TrainConfig, data: Dataset, run_key: str,
                   drawn: draw.Drawn | None = None) -> tuple[int, int, np.ndarray]:
    """The latent scatter (with the student's own digit, `drawn`) and the two picked samples; returns their
    indices and the KL of each dimension."""
    x = data.val[:N_POINTS]
    mu, logvar = explore.encode(model, x)
    labels = data.val_labels[:N_POINTS].numpy() if data.val_labels is not None else None
    n = len(x)
    for key, default in (("explore_a", 0), ("explore_b", min(1, n - 1))):
        if st.session_state.get(key, 0) >= n:
            st.session_state[key] = default
        st.session_state.setdefault(key, default)
    chart, side = st.columns([3, 2])
    with side:
        st.markdown("**Picked samples** · click points on the scatter, or type their numbers")
        a_col, b_col = st.columns(2)
        a = a_col.number_input("A: sample #", 0, n - 1, key="explore_a")
        b = b_col.number_input("B: sample #", 0, n - 1, key="explore_b")
        if data.is_image:
            recon = explore.decode(model, mu[[a, b]]).numpy()
            pair = np.stack([x[[a, b]].numpy(), recon], 1).reshape(4, *data.sample_shape)
            _show(pair, 2, "Each picked sample (left) and its reconstruction (right)", data.sample_shape[-1], 112,
                  ["A", "B"])
        else:
            explore_points.picked(model, x, a, b)
    with chart:
        axes = ("PC 1", "PC 2") if config.latent_dim > 2 else ("z₁", "z₂" if config.latent_dim == 2 else "")
        st.markdown("**Latent space** (posterior means of validation samples)"
                    + (" · point at a sample to see its image" if data.is_image else ""))
        n_std = uncertainty.controls(model.variational)
        figure = figures.latent_figure(metrics.project_2d(mu.numpy()), labels, data.class_names, axes,
                                       highlight={"A": a, "B": b}, prior=model.variational,
                                       revision=f"explore-{run_key}")
        charts.live_chart(uncertainty.overlay(figure, mu.numpy(), logvar.numpy(), labels, [a, b], n_std, drawn),
                          key="explore_latent", images=_hover_images(x.numpy()) if data.is_image else None,
                          on_pick=_on_pick)
        uncertainty.caption(config.latent_dim, n_std)
    return a, b, kl_per_dim(mu, logvar).mean(0).numpy()


def interpolation_section(model: VAE, data: Dataset, a: int, b: int) -> None:
    st.subheader("Interpolation from A to B")
    c1, c2 = st.columns(2)
    steps = c1.slider("Steps", 3, 16, 10, key="interp_steps")
    method = c2.radio("Path", ["linear", "spherical"], horizontal=True, key="interp_method")
    path = explore.interpolate(model, data.val[a], data.val[b], steps, method).numpy()
    if data.is_image:
        _show(path, steps, f"{method} path from A (left) to B (right) in latent space, decoded",
              data.sample_shape[-1])
    else:
        st.plotly_chart(figures.points_path_figure(data.val.numpy(), path[None], ["A → B"], revision="interp"),
                        key="interp_points")


def traversal_section(model: VAE, config: TrainConfig, data: Dataset, a: int, kl: np.ndarray) -> None:
    st.subheader("Traversal: one latent dimension at a time")
    c1, c2 = st.columns(2)
    span = c1.slider("Range ± (in prior standard deviations)", 0.5, 5.0, 3.0, 0.5, key="trav_span")
    steps = c2.slider("Steps", 3, 15, 7, key="trav_steps")
    dims = sorted(np.argsort(-kl)[:10].tolist()) if config.latent_dim > 10 else list(range(config.latent_dim))
    grid = explore.traverse(model, data.val[a], dims, span, steps).numpy()
    if data.is_image:
        _show(grid, steps, f"Each row moves one dimension from −{span:g} to +{span:g}, the others kept at A's code",
              data.sample_shape[-1], rows=[f"z{d + 1}" for d in dims])
    else:
        st.plotly_chart(figures.points_path_figure(data.val.numpy(), grid, [f"z{d + 1}" for d in dims],
                                                   revision="traverse"), key="trav_points")
    if config.latent_dim > 10:
        st.caption("The 10 dimensions with the most KL are shown.")


def plane_section(model: VAE, data: Dataset) -> None:
    """Images decoded from a grid over the 2-D latent plane (2-D points have explore_points' views instead)."""
    st.subheader("The latent plane, decoded")
    c1, c2 = st.columns(2)
    steps = c1.slider("Grid size", 5, 25, 15, key="plane_steps")
    span = c2.slider("Range ±", 0.5, 5.0, 2.5, 0.5, key="plane_span")
    grid = explore.latent_grid(model, steps, span).numpy()
    caption = f"z₁ from −{span:g} (left) to +{span:g} (right); z₂ from +{span:g} (top) to −{span:g}"
    _show(grid, steps, caption, data.sample_shape[-1])


@st.cache_data(max_entries=16, show_spinner=False)
def _disentanglement(run_key: str, _model: VAE, _data: Dataset) -> quality.Disentanglement | None:
    """Once per model (run_key names it and the version of its weights)."""
    return quality.model_disentanglement(_model, _data)


def disentanglement_section(model: VAE, data: Dataset, run_key: str) -> None:
    """MIG and which known factor each latent dimension captures (data with factors, such as shapes)."""
    result = _disentanglement(run_key, model, data)
    if result is None:
        return
    st.subheader("Disentanglement: which factor does each dimension capture?")
    st.metric("MIG (mutual information gap)", f"{result.mig:.2f}",
              help="For each factor, the share of its information in the dimension that carries most of it, minus "
                   "that in the runner-up, averaged: 1 when each factor lives in one dimension alone, 0 when none "
                   "does.")
    strongest = result.strongest()
    st.dataframe({"dimension": [f"z{d + 1}" for d in range(len(strongest))],
                  "factor captured most": [name for name, _ in strongest],
                  "share of its information": [share for _, share in strongest]},
                 hide_index=True, column_config={"share of its information": st.column_config.ProgressColumn(
                     format="%.2f", min_value=0.0, max_value=1.0,
                     help="I(z; factor) / H(factor) on the validation data: 1 when the dimension determines it")})


def iwae_section(model: VAE, config: TrainConfig, data: Dataset, run_key: str) -> None:
    st.subheader("How good is the model? The IWAE bound")
    st.caption("log p(x) ≥ IWAE_k ≥ ELBO: more importance samples k give a tighter bound on held-out data.")
    if config.mode != "vae":
        st.info("The IWAE bound needs a VAE: an autoencoder has no posterior to sample.")
        return
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    k = c1.number_input("Importance samples k", 1, 500, 50, key="iwae_k")
    x = data.test[:500]
    if c2.button("Compute on 500 test samples", icon=":material/calculate:"):
        with st.spinner("Computing…"):
            st.session_state.iwae = (run_key, k, score.iwae_bound(model, x, config, k=1),
                                     score.iwae_bound(model, x, config, k=k))
    result = st.session_state.get("iwae")
    if result and result[0] == run_key:
        _, k_used, elbo, bound = result
        m1, m2, m3 = st.columns(3)
        m1.metric("ELBO (k = 1)", f"{elbo:.2f} nats")
        m2.metric(f"IWAE (k = {k_used})", f"{bound:.2f} nats", f"{bound - elbo:+.2f} tighter")
        m3.metric("−log p(x) is at most", f"{-bound:.2f} nats")


def page() -> None:
    st.title("Explore a trained model")
    picked = pick_run()
    import_section()
    if picked is None:
        return
    model, config, data, run_key = picked
    drawn = draw.current(model, data) if data.is_image else None
    a, b, kl = latent_section(model, config, data, run_key, drawn if isinstance(drawn, draw.Drawn) else None)
    interpolation_section(model, data, a, b)
    traversal_section(model, config, data, a, kl)
    if data.is_image and config.latent_dim == 2:
        plane_section(model, data)
    if not data.is_image:
        explore_points.views(model, config, data)
    if data.is_image:
        draw.section(model, config, data, drawn)
    disentanglement_section(model, data, run_key)
    iwae_section(model, config, data, run_key)
    replay.explore_section(run_key, config, data)


page()
