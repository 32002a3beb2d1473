"""The Train page's loss chart: the terms the run's objective optimised, its β or C schedule, the adversarial
losses, and what happened during the run (live changes, schedule boundaries, how it ended).

Every curve is a quantity the run computed at that step (`Trainer.train_step`'s row), named after the term of
its objective (`objectives.kl_term_name`). The total drawn is the data's objective, reconstruction plus the
KL term, the quantity validation measures too; the terms that only training adds (the adversarial generator
loss, the L1 penalty) are drawn on their own. The −ELBO (reconstruction + KL) is always drawn: it is the one
number comparable across runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vae_core.classroom.cards import change_words
from vae_core.config import TrainConfig
from vae_core.maths.objectives import kl_term_name
from vae_core.views.figures import Figure, _axis, _figure, _numbers, _y_scale

BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                       "#8c564b", "#e377c2", "#7f7f7f")
PANEL = 100  # pixels of each panel below the losses (β or C; the adversarial losses)


@dataclass(frozen=True)
class Event:
    """A moment marked on the chart: a vertical line at `step`, labelled `text`."""
    step: float
    text: str
    colour: str = GREY


def gaussian(config: TrainConfig) -> bool:
    """Whether the reconstruction term is (partly) a Gaussian −log density, which can be below zero."""
    return config.recon_loss in ("mse", "mixed")


def _plain_kl(config: TrainConfig, steps: list[dict]) -> bool:
    """Whether the KL term is the KL itself (β = 1 throughout, no capacity or free bits): then the objective is
    the −ELBO, and drawing both would draw one line twice."""
    return kl_term_name(config) == "β·KL" and all(row.get("beta_now") == 1 for row in steps) \
        and config.beta_schedule == "constant"


def _series(steps: list[dict], epochs: list[dict], config: TrainConfig) -> list[tuple[str, str, list, list | None]]:
    """(name, colour, training values per step, validation values per epoch or None) of each loss curve."""
    train = lambda key: [row.get(key, math.nan) for row in steps]  # noqa: E731
    val = lambda key: [row.get(f"val_{key}", math.nan) for row in epochs]  # noqa: E731
    recon = ("reconstruction", ORANGE, train("recon"), val("recon"))
    if config.mode == "ae":
        return [recon]
    neg_elbo = [r + k for r, k in zip(train("recon"), train("kl"))]
    out = [("−ELBO = reconstruction + KL", BLUE, neg_elbo, val("neg_elbo")), recon,
           ("KL", GREEN, train("kl"), val("kl"))]
    if not _plain_kl(config, steps):
        term = kl_term_name(config)
        objective = [r + k for r, k in zip(train("recon"), train("kl_term"))]
        out += [(f"objective = reconstruction + {term}", PURPLE, objective, val("loss")),
                (term, RED, train("kl_term"), [l - r for l, r in zip(val("loss"), val("recon"))])]
    if config.l1 > 0:
        out.append(("L1 penalty (training only)", PINK, train("l1"), None))
    return out


def log_scale_problem(steps: list[dict], epochs: list[dict], config: TrainConfig) -> str | None:
    """Why a log scale would mislead (a curve at or below zero has no place on it), or None."""
    for name, _, values, val_values in _series(steps, epochs, config):
        if any(v <= 0 for v in values + (val_values or []) if math.isfinite(v)):
            return f"Log scale is off: “{name}” reaches zero or below, which a log axis cannot show."
    return None


def events(config: TrainConfig, steps_per_epoch: int, live_changes=(), status: str | None = None,
           last_step: int = 0, best_epoch: int | None = None) -> list[Event]:
    """What the chart marks: the end of a β warm-up, each new β cycle, each live change (a fork's start among
    them), and how the run ended (diverged, early-stopped) where it did."""
    out = []
    total = config.epochs * steps_per_epoch
    if config.mode == "vae" and not config.capacity and config.beta_schedule == "warmup" \
            and 0 < config.beta_warmup_epochs < config.epochs:
        out.append(Event(config.beta_warmup_epochs * steps_per_epoch, "warm-up ends"))
    if config.mode == "vae" and not config.capacity and config.beta_schedule == "cyclical":
        period = math.ceil(total / config.beta_cycles)
        out += [Event(k * period, f"cycle {k + 1}") for k in range(1, config.beta_cycles) if k * period < total]
    for change in live_changes:
        fork = change.get("fork")  # a fork starts with the parent's history: it is marked where it went its own way
        words = ([f"fork of epoch {fork.get('epoch')}"] if isinstance(fork, dict) else []) + change_words(change)
        if words and isinstance(change.get("step"), int):
            out.append(Event(change["step"], ", ".join(words), BLUE))
    if status == "diverged":
        out.append(Event(last_step, "diverged", RED))
    elif status == "early-stopped":
        out.append(Event(last_step, f"early stop (epoch {best_epoch} restored)" if best_epoch else "early stop", RED))
    return out


def loss_figure(steps: list[dict], epochs: list[dict], config: TrainConfig, marks: list[Event] = (),
                log_y: bool = False, revision: str = "loss") -> Figure:
    """Training terms per step (lines), validation terms per epoch (dashed, with markers), on one axis; below,
    β (or C, the capacity target) on its own axis, and the adversarial losses on theirs where the run has them;
    `marks` as labelled vertical lines."""
    x = [row["step"] for row in steps]
    x_val = [row["step"] for row in epochs]
    traces = []
    for name, colour, values, val_values in _series(steps, epochs, config):
        traces.append(dict(type="scatter", x=x, y=_numbers(values), name=name, mode="lines",
                           line=dict(color=colour, width=1.5), legendgroup=name))
        if val_values is not None:
            traces.append(dict(type="scatter", x=x_val, y=_numbers(val_values), name=f"{name} (val)",
                               mode="lines+markers", line=dict(color=colour, dash="dash"), legendgroup=name,
                               marker=dict(size=7, symbol="diamond"), showlegend=False))
    panels = []  # (y-axis title, [(name, colour, values)])
    if config.mode == "vae":
        panels.append(("C (nats)", [("C: the KL target", GREY, [r.get("capacity", math.nan) for r in steps])])
                      if config.capacity else ("β", [("β", GREY, [r.get("beta_now", math.nan) for r in steps])]))
    if config.adv_weight > 0:
        panels.append(("adversarial", [(f"generator loss (× {config.adv_weight:g} in training)", PURPLE,
                                        [r.get("adv_g", math.nan) for r in steps]),
                                       ("critic loss", BROWN, [r.get("adv_d", math.nan) for r in steps])]))
    main = 300
    height = main + len(panels) * (PANEL + 30)
    layout = {}
    bottom = 0.0
    for i, (title, series) in enumerate(reversed(panels)):  # from the bottom up
        n = len(panels) - i + 1  # axis number: 2, 3, …
        top = bottom + PANEL / height
        layout[f"yaxis{n}"] = _axis(title, domain=[bottom, top], rangemode="tozero", anchor=f"x{n}")
        layout[f"xaxis{n}"] = _axis("training step" if i == 0 else None, anchor=f"y{n}", matches="x",
                                    showticklabels=i == 0)
        traces += [dict(type="scatter", x=x, y=_numbers(values), name=name, mode="lines", xaxis=f"x{n}",
                        yaxis=f"y{n}", line=dict(color=colour, width=1.5)) for name, colour, values in series]
        bottom = top + 30 / height
    y_title = "nats per sample" + (" (can be < 0)" if gaussian(config) else "")
    yaxis = _axis(y_title, domain=[bottom, 1.0], **_y_scale(log_y, revision))
    xaxis = _axis(None if panels else "training step", anchor="y", showticklabels=not panels)
    shapes = [dict(type="line", xref="x", yref="paper", x0=m.step, x1=m.step, y0=0, y1=1,
                   line=dict(color=m.colour, width=1, dash="dot")) for m in marks]
    notes = [dict(x=m.step, xref="x", y=1, yref="paper", yanchor="top", xanchor="left", text=m.text,
                  showarrow=False, textangle=-90, font=dict(size=11, color=m.colour)) for m in marks]
    return _figure(traces, revision, height, xaxis, yaxis, shapes=shapes, annotations=notes, **layout)
