"""Compare saved runs side by side; train a sweep (β or latent size) or a lesson's runs in the background."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import streamlit as st

from pages.ui import charts, draft, fragments, router, scope, session, text
from vae_core.classroom import cards
from vae_core.classroom.quotas import QuotaError
from vae_core.config import ConfigError, parse_numbers
from vae_core.data import DataError
from vae_core.jobs.series import JobSeries
from vae_core.maths import score
from vae_core.maths.quality import QualityMeter, model_disentanglement
from vae_core.runs import RunError, SavedRun
from vae_core.views import explore, figures, run_points
from vae_core.views.lessons import LESSONS

router.require_router()

POLL_SECONDS = 1.0
METRICS = {"val_neg_elbo": "validation −ELBO", "val_recon": "validation reconstruction", "val_kl": "validation KL",
           "train_loss": "training loss", "val_active_units": "active units"}
SELECTED = "compare_runs"
PLANES = {"paths": "paths over epochs", "points": "last epochs"}


def _labels(saved: list[SavedRun]) -> dict[str, str]:
    """Run name -> its title and live changes, with whose run it is when not this student's, and the time it
    started where two would read the same (a legend needs each name once)."""
    labels = {}
    for run in saved:
        owner = scope.owner_name(run)
        labels[run.name] = cards.label(run) + ("" if owner == "you" else f" · {owner}")
    counts = Counter(labels.values())
    return {name: label if counts[label] == 1 else f"{label} · {name[9:11]}:{name[11:13]}:{name[13:15]}"
            for name, label in labels.items()}


# --- background series: a sweep or a lesson's runs --------------------------------------------
# A sweep varies one setting: its name, the values field's label, key and default, and how a value is read.
SWEEPS = {"beta": ("β", "β values", "sweep_betas", "0.5, 1, 2, 4, 8", float),
          "latent_dim": ("latent-size", "Latent sizes", "sweep_latents", "2, 4, 8, 16, 32", int)}


def sweep_form() -> None:
    base = draft.draft_config()
    param = st.radio("Sweep", list(SWEEPS), format_func=lambda k: SWEEPS[k][0].replace("-", " "), horizontal=True,
                     key="sweep_param", label_visibility="collapsed")
    name, field, key, default, kind = SWEEPS[param]
    kept = f"latent {base.latent_dim}" if param == "beta" else f"β {base.beta:g}"
    with st.form("sweep", border=False):
        st.caption(f"Trains the Train page's settings ({base.dataset}, {kept}) once per {field[:-1].lower()}, "
                   "one after the other.")
        c1, c2 = st.columns(2)
        text = c1.text_input(field, default, key=key)
        epochs = c2.number_input("Epochs per run", 1, 200, min(base.epochs, 10), key="sweep_epochs")
        if st.form_submit_button(f"Run the {name} sweep", icon=":material/play_arrow:", type="primary"):
            try:
                values = parse_numbers(text, kind)
            except ValueError as exc:
                st.error(f"{field}: {exc}")
                return
            try:
                configs = [base.replace(mode="vae", epochs=int(epochs), **{param: v}) for v in values]
            except ConfigError as exc:
                st.error(f"Invalid setting — {exc}")
                return
            if not configs:
                st.error(f"{field}: give at least one")
                return
            st.session_state.compare_plane = "points"  # a sweep reads as a curve of its runs' end points
            _start_series(configs, [f"β = {v:g}" if param == "beta" else f"latent {v}" for v in values],
                          f"{name} sweep", "")


def lesson_form() -> None:
    by_key = {item.key: item for item in LESSONS}
    lesson = by_key[st.selectbox("Lesson", list(by_key), format_func=lambda k: by_key[k].title, key="pair_lesson")]
    labels, configs = zip(*lesson.runs)
    st.caption(f"{lesson.claim}  \nTrains " + ", then ".join(f"**{label}**" for label in labels)
               + f" ({lesson.preset.epochs} epochs each).")
    if st.button("Run this pair" if len(labels) == 2 else f"Run these {len(labels)} runs",
                 icon=":material/compare_arrows:", type="primary"):
        st.session_state.compare_metric = lesson.curve  # the curve the lesson says to look at, as from Learn
        _start_series(list(configs), list(labels), lesson.title, lesson.key)


def _start_series(configs, labels, title: str, lesson: str) -> None:
    try:
        session.start_series(configs, labels, title, lesson)
    except (ConfigError, QuotaError) as exc:
        st.error(f"Not started — {exc}", icon=":material/block:")
        return
    st.rerun()


def series_panel(polling: bool) -> None:
    """Progress of this session's series; the whole page reruns when it ends, to show its runs."""
    session.touch()
    series = session.work()
    if not isinstance(series, JobSeries):
        return
    if series.alive != polling:
        st.rerun()
    view = series.view()
    if view.status.ended:
        st.success(f"Trained {view.done} of {view.total} runs ({', '.join(view.labels[:view.done])}); "
                   "they are selected below.")
        for label, status, message in zip(view.labels, view.statuses, view.messages):
            if not status.completed:
                st.warning(f"{label}: {message}")
        return
    current = view.current
    label = view.labels[min(view.done, view.total - 1)]
    detail = (f"waiting for a free training slot (number {current.queue_position} in the queue)"
              if current and current.queue_position else
              f"epoch {min(current.epoch + 1, current.epochs)} of {current.epochs}" if current else "starting")
    st.progress(view.progress, text=f"Run {min(view.done + 1, view.total)} of {view.total}: {label} · {detail}")
    st.button("Stop the series", on_click=series.stop, icon=":material/stop:")


def _select_finished_series() -> None:
    """Once a series has ended, select its runs in the comparison (once)."""
    series = session.work()
    if isinstance(series, JobSeries) and not series.alive and not st.session_state.get("series_shown", True):
        run_dirs = series.view().run_dirs
        st.session_state[SELECTED] = [Path(path).name for path in run_dirs]
        st.session_state.series_shown = True
        lesson = {item.key: item for item in LESSONS}.get(cards.card(Path(run_dirs[0]))["lesson"]) if run_dirs else None
        if lesson and lesson.view:  # what the lesson says to look at besides its curve
            st.session_state.compare_plane = "points" if lesson.view == "rate-distortion" else "paths"
            st.session_state.compare_weights = lesson.view == "weights"


# --- the comparison -------------------------------------------------------------------------------
QUALITY_COLUMNS = {
    "sharpness × real": st.column_config.NumberColumn(format="%.2f", help=(
        "Mean jump between neighbouring pixels of prior samples, over that of held-out data: below 1 is blurrier")),
    "diversity × real": st.column_config.NumberColumn(format="%.2f", help=(
        "Mean distance between two prior samples, over that between two held-out examples: below 1, more alike")),
    "nearest training": st.column_config.NumberColumn(format="%.3f", help=(
        "Mean distance of each prior sample to its closest training example: very low means copying")),
    "MIG": st.column_config.NumberColumn(format="%.2f", help=(
        "Mutual information gap (data with known factors): 1 when each factor lives in one latent dimension")),
}


def _measures(run: SavedRun) -> dict:
    """The quality columns of a saved run, from its weights (the last saved)."""
    try:
        return _measured(str(run.path), str(run.meta.get("saved_at")), run)
    except (DataError, RunError, ValueError):  # ValueError: a held-out split of one example, no pairs
        return {}


@st.cache_data(max_entries=64, show_spinner="Measuring samples…")
def _measured(path: str, saved_at: str, _run: SavedRun) -> dict:
    """Computed once per version of a run's weights and shared by every session."""
    data, model = session.run_dataset(_run), session.saved_model(_run)
    q = QualityMeter(data.train, data.val).measure(model)
    codes = model_disentanglement(model, data)
    return {"sharpness × real": q.sharpness_ratio, "diversity × real": q.diversity_ratio,
            "nearest training": q.nearest} | ({} if codes is None else {"MIG": codes.mig})


SCORE_COLUMNS = {
    score.ELBO_NAME: st.column_config.NumberColumn(format="%.2f", help=(
        f"Final score on the held-out test split, in {score.UNITS} (lower is better); the table is sorted by it, "
        "your own runs first")),
    score.iwae_name(): st.column_config.NumberColumn(format="%.2f", help=(
        f"Importance-weighted bound on −log p(x) of the test split, in {score.UNITS}: at most the −ELBO")),
}


def _by_final_score(row: dict) -> tuple:
    """Own runs first, then lowest test −ELBO first; runs without one (autoencoders, older runs) last."""
    elbo = row[score.ELBO_NAME]
    return row["owner"] != "you", elbo is None, elbo or 0.0


def _table(chosen: list[SavedRun]) -> None:
    rows = []
    for run in chosen:
        last = run.epochs[-1] if run.epochs else {}
        final = run.meta.get("score") or {}
        rows.append({"run": cards.label(run), "owner": scope.owner_name(run), "dataset": run.config.dataset,
                     "model": run.config.mode.upper(),
                     "β": run.config.beta if run.config.mode == "vae" else None, "latent": run.config.latent_dim,
                     "epochs": len(run.epochs), "−ELBO (val)": last.get("val_neg_elbo"),
                     "reconstruction (val)": last.get("val_recon"), "KL (val)": last.get("val_kl"),
                     "active units": last.get("val_active_units"), "status": run.meta.get("status"),
                     score.ELBO_NAME: final.get("neg_elbo"), score.iwae_name(): final.get("neg_iwae")})
    rows = [row | _measures(run) for row, run in zip(rows, chosen)]
    rows.sort(key=_by_final_score)
    st.dataframe(rows, hide_index=True, column_config=QUALITY_COLUMNS | SCORE_COLUMNS | {
        k: st.column_config.NumberColumn(format="%.2f") for k in ("−ELBO (val)", "reconstruction (val)", "KL (val)")})
    partial = [f"{cards.label(run)} ({final['iwae_rows']:,} of {final['rows']:,})" for run in chosen
               if (final := run.meta.get("score")) and final.get("iwae_rows", final["rows"]) < final["rows"]]
    if partial:
        st.caption(text.plain(f"The {score.iwae_name()} covers the first test samples only, where its time cap "
                              "stopped it: " + ", ".join(partial)))


CAPTION_CHARS = 40  # a panel's run name is cut to one line (in full on hover): a wrapped one misaligned the grids


def _reconstructions(chosen: list[SavedRun], labels: dict[str, str]) -> None:
    cols = st.columns(min(len(chosen), 4))
    for i, run in enumerate(chosen):
        with cols[i % len(cols)]:
            label = labels[run.name]
            short = figures.shorten(label, CAPTION_CHARS)
            st.caption(text.plain(short), help=None if short == label else text.plain(label))
            try:
                data = session.run_dataset(run)
                model = session.saved_model(run)
            except (DataError, RunError) as exc:
                st.warning(str(exc))
                continue
            x = data.val[:8] if data.is_image else data.val[:300]
            recon = explore.decode(model, explore.encode(model, x)[0]).numpy()
            if data.is_image:
                charts.image(figures.pair_mosaic(x.numpy(), recon, cols=4, scale=figures.tile_scale(
                    data.sample_shape[-1]), labels=("original", "reconstruction")), name=f"{label} reconstructions")
            else:
                st.plotly_chart(figures.points_figure(x.numpy(), recon, "reconstructions", connect=True,
                                                      revision=f"r{i}"), key=f"compare_recon_{i}",
                                config=charts.PLOTLY_CONFIG)


def _prior_samples(chosen: list[SavedRun], labels: dict[str, str]) -> None:
    """Each run's decodings of the same codes from the prior: where lessons (β, autoencoder against VAE) say to
    look, since a good reconstruction says nothing of what random codes decode to."""
    cols = st.columns(min(len(chosen), 4))
    for i, run in enumerate(chosen):
        with cols[i % len(cols)]:
            label = labels[run.name]
            short = figures.shorten(label, CAPTION_CHARS)
            st.caption(text.plain(short), help=None if short == label else text.plain(label))  # as _reconstructions
            try:
                data, model = session.run_dataset(run), session.saved_model(run)
            except (DataError, RunError) as exc:
                st.warning(str(exc))
                continue
            if data.is_image:
                samples = explore.prior_samples(model, 16).numpy()
                charts.image(figures.mosaic(samples, cols=8, scale=figures.tile_scale(data.sample_shape[-1])),
                             name=f"{label} prior samples")
            else:
                st.plotly_chart(figures.points_figure(data.val.numpy(), explore.prior_samples(model, 300).numpy(),
                                                      "prior samples", revision=f"s{i}"), key=f"compare_samples_{i}",
                                config=charts.PLOTLY_CONFIG)


def comparison(saved: list[SavedRun]) -> None:
    """The runs picked, drawn together (this student's own are listed first)."""
    by_name = {run.name: run for run in saved}
    first = saved[0].config.dataset  # opened on runs of one dataset: nats of two datasets do not compare
    default = [run.name for run in saved if run.config.dataset == first][:2]
    st.session_state[SELECTED] = [n for n in st.session_state.get(SELECTED, default) if n in by_name]
    labels = _labels(saved)
    names = st.multiselect("Runs to compare", list(by_name), key=SELECTED, format_func=labels.get)
    chosen = [by_name[n] for n in names]
    if not chosen:
        st.info("Pick runs to compare.")
        return
    c1, c2, c3 = st.columns([2, 1, 2], vertical_alignment="bottom")
    metric = c1.selectbox("Curve", list(METRICS), format_func=METRICS.get, key="compare_metric")
    values = [row[metric] for run in chosen for row in run.epochs if isinstance(row.get(metric), (int, float))]
    problem = f"Log scale is off: a run's {METRICS[metric]} reaches zero or below." \
        if any(v <= 0 for v in values) else None
    log_y = c2.toggle("Log scale", key="compare_log", disabled=problem is not None, help=problem) and not problem
    plane = c3.radio("Rate–distortion plane", list(PLANES), format_func=PLANES.get, horizontal=True,
                     key="compare_plane")
    datasets = list(dict.fromkeys(run.config.dataset for run in chosen))
    for i, dataset in enumerate(datasets):  # one pair of charts per dataset: their nats are not on one scale
        suffix = f"_{i}" if i else ""
        series = {labels[run.name]: run.epochs for run in chosen if run.config.dataset == dataset}
        if len(datasets) > 1:
            st.markdown(f"##### {text.plain(dataset)}")
        left, right = st.columns(2)
        with left:
            if plane == "points":
                ends = {label: rows[-1] for label, rows in series.items() if rows}
                st.markdown("**Rate–distortion plane** · each run's last epoch, one labelled point")
                st.plotly_chart(run_points.rate_distortion_points_figure(ends), key=f"rate_distortion_points{suffix}")
            else:
                st.markdown("**Rate–distortion plane** · each run's path over its epochs; the star is its last "
                            "epoch")
                st.plotly_chart(figures.rate_distortion_figure(series), key=f"rate_distortion{suffix}")
        with right:
            st.markdown(f"**{METRICS[metric][0].upper() + METRICS[metric][1:]}** per epoch")
            st.plotly_chart(figures.runs_figure(series, metric, METRICS[metric], log_y),
                            key=f"compare_curves{suffix}")
    st.markdown("**Final metrics**")
    _table(chosen)
    st.markdown("**Reconstructions** · each original above its reconstruction")
    _reconstructions(chosen, labels)
    st.markdown("**Samples from the prior** · the same codes z ~ N(0, I), decoded by each run")
    _prior_samples(chosen, labels)
    if st.toggle("Weight histograms", key="compare_weights", help="How large each run's weights are: L1 and L2 "
                 "penalties show here"):
        _weights(chosen, labels)


def _weights(chosen: list[SavedRun], labels: dict[str, str]) -> None:
    weights = {}
    for run in chosen:
        try:
            weights[labels[run.name]] = run_points.weights_of(session.saved_model(run))
        except (DataError, RunError) as exc:
            st.warning(str(exc))
    st.markdown(f"**Weights** · the share of each run's weights by size; left of the dashed line "
                f"({run_points.NEAR_ZERO:g}) a weight does next to nothing")
    st.plotly_chart(run_points.weight_histogram_figure(weights), key="compare_weight_histograms",
                    config=charts.PLOTLY_CONFIG)


def page() -> None:
    st.title("Compare runs")
    series = session.work()
    polling = isinstance(series, JobSeries) and series.alive
    sweep, pair = st.columns(2, border=True)
    with sweep:
        st.markdown("**A sweep**")
        sweep_form()
    with pair:
        st.markdown("**A lesson's runs side by side**")
        lesson_form()
    fragments.fragment(series_panel, POLL_SECONDS if polling else None)(polling)
    _select_finished_series()
    saved = scope.runs_in_scope("compare_scope")
    if not saved:
        st.info("No saved runs yet: train on the Train page, or run a sweep above.", icon=":material/info:")
        return
    comparison(saved)


page()
