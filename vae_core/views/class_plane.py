"""The class's runs in the rate–distortion plane, for the teacher's Class page: a chart per dataset, each run a
path over its epochs, coloured by a setting in colour-blind-safe palettes alike in every chart."""

from __future__ import annotations

import math

from vae_core.views.figures import Figure, _axis, _figure, _is_number, _numbers, _plain

# Colour-blind-safe colours for the class's rate–distortion plane. Numbers: viridis, cut at 0.85 (its last,
# pale yellows vanish on white). Categories: Okabe & Ito's palette, yellow last for the same reason.
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725")
VIRIDIS_TOP = 0.85
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#F0E442")
_DASHES = ("solid", "dash", "dot", "dashdot")  # a ninth category reuses the colours with another line style
NO_VALUE_COLOUR = "#9a9a9a"  # runs without the setting (β of an autoencoder)
ZERO_COLOUR = "#000000"  # β = 0 on a log colour scale


def _viridis(t: float) -> str:
    """The colour at `t` in [0, 1] of viridis cut at VIRIDIS_TOP, as #rrggbb."""
    t = min(1.0, max(0.0, t)) * VIRIDIS_TOP * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    mix = [round(int(a[k:k + 2], 16) * (1 - (t - i)) + int(b[k:k + 2], 16) * (t - i)) for k in (1, 3, 5)]
    return "#" + "".join(f"{v:02x}" for v in mix)


def _ticks(values: list[float], log: bool) -> tuple[list[float], list[str]]:
    """Colour-bar ticks: the values present when they are few, else round numbers across their range."""
    distinct = sorted(set(values))
    if len(distinct) > 7:
        low, high = distinct[0], distinct[-1]
        if log:
            distinct = [10.0 ** e * m for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
                        for m in (1, 2, 5) if low <= 10.0 ** e * m <= high] or [low, high]
        else:
            distinct = [low + (high - low) * k / 4 for k in range(5)]
    return [math.log10(v) if log else v for v in distinct], [f"{v:g}" for v in distinct]


def class_rate_distortion_figure(runs: list[dict], colour_title: str, log_colour: bool = False,
                                 colour_range: tuple[float, float] | None = None, categories: list[str] | None = None,
                                 title: str | None = None, revision: str = "class-rate-distortion") -> Figure:
    """The class's runs in the plane of validation KL (rate) against reconstruction (distortion): each run a
    path over its epochs ending in a star, coloured by one setting.

    `runs`: {"label": text shown on hover, "epochs": metric rows, "colour": the setting's value}. Numbers
    (when every value given is one) take viridis with a colour bar titled `colour_title`, on a log scale when
    `log_colour` (values ≤ 0 then get a legend entry of their own, as do runs without a value: None); anything
    else takes Okabe–Ito's colours, one legend entry per value, in the order of `categories`. Give
    `colour_range` (numbers) or `categories` to colour several figures alike. Labels and values are shown as
    text, whatever markup they hold."""
    drawn = [(run, [r for r in run["epochs"] if "val_kl" in r and "val_recon" in r]) for run in runs]
    drawn = [(run, rows) for run, rows in drawn if rows]
    given = [run["colour"] for run, _ in drawn if run["colour"] is not None]
    numeric = bool(given) and all(_is_number(v) for v in given) and categories is None
    scaled = [float(v) for v in given if not log_colour or v > 0] if numeric else []
    if numeric and colour_range is None and scaled:
        colour_range = (min(scaled), max(scaled))
    if numeric and colour_range is not None and log_colour:
        low, high = (math.log10(v) for v in colour_range)
    elif colour_range is not None:
        low, high = colour_range
    else:
        low = high = 0.0
    if not numeric and categories is None:
        categories = sorted({str(v) for v in given})

    def style(value) -> tuple[str, str, str]:  # colour, dash, legend name ("" for none)
        if value is None:
            return NO_VALUE_COLOUR, "dot", f"no {colour_title}"
        if numeric:
            if log_colour and value <= 0:
                return ZERO_COLOUR, "dash", f"{colour_title} = {value:g}"
            v = math.log10(value) if log_colour else float(value)
            return _viridis((v - low) / (high - low) if high > low else 0.5), "solid", ""
        i = categories.index(str(value)) if str(value) in categories else len(categories)
        return OKABE_ITO[i % len(OKABE_ITO)], _DASHES[i // len(OKABE_ITO) % len(_DASHES)], _plain(value)

    traces, named, stars = [], set(), {}
    for run, rows in drawn:
        colour, dash, legend = style(run["colour"])
        value = run["colour"]
        shown = "none" if value is None else f"{value:g}" if _is_number(value) else _plain(value)
        traces.append(dict(
            type="scatter", x=_numbers(r["val_kl"] for r in rows), y=_numbers(r["val_recon"] for r in rows),
            mode="lines+markers", line=dict(color=colour, width=1.5, dash=dash), marker=dict(color=colour, size=5),
            name=legend or _plain(run["label"]), legendgroup=legend or None,
            showlegend=bool(legend) and legend not in named, meta=[_plain(run["label"]), shown],
            customdata=[int(r.get("epoch", i + 1)) for i, r in enumerate(rows)],
            hovertemplate=f"%{{meta[0]}}<br>{_plain(colour_title)} %{{meta[1]}}<br>epoch %{{customdata}}"
                          "<br>KL %{x:.2f}<br>recon %{y:.2f}<extra></extra>"))
        named.add(legend)
        star = stars.setdefault(legend, dict(x=[], y=[], color=[]))
        star["x"].append(rows[-1]["val_kl"])
        star["y"].append(rows[-1]["val_recon"])
        star["color"].append(colour)
    # The stars of a legend entry in one trace (hidden with it): a marker array per run made Streamlit's
    # validation of a class's figure twice as slow (bench/README.md, "Class page").
    for legend, star in stars.items():
        traces.append(dict(type="scatter", x=_numbers(star["x"]), y=_numbers(star["y"]), mode="markers",
                           marker=dict(symbol="star", size=14, color=star["color"]), legendgroup=legend or None,
                           showlegend=False, hoverinfo="skip", name=legend or "latest epoch"))
    if numeric and scaled:
        ticks, labels = _ticks(scaled + list(colour_range), log_colour)  # the ends too: a range shared with others
        bar = dict(title=dict(text=_plain(colour_title) + (" (log scale)" if log_colour else ""), side="right"),
                   tickvals=ticks, ticktext=labels, thickness=14, len=0.9)
        traces.append(dict(type="scatter", x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                           marker=dict(color=[low], cmin=low, cmax=high if high > low else low + 1, showscale=True,
                                       colorscale=[[k / 10, _viridis(k / 10)] for k in range(11)], colorbar=bar)))
    figure = _figure(traces, revision, 440, _axis("rate: KL (nats)"), _axis("distortion: reconstruction (nats)"),
                     title=_plain(title) if title else None)
    figure["layout"]["legend"] = dict(orientation="h", yanchor="bottom", y=1.0, x=0, xanchor="left")
    if title:
        figure["layout"]["margin"]["t"] = 70
    return figure


def class_rate_distortion_figures(runs: list[dict], colour_title: str, log_colour: bool = False,
                                  revision: str = "class-rate-distortion") -> dict[str, Figure]:
    """`class_rate_distortion_figure` per dataset (each run's "dataset"), coloured alike across them: the
    datasets' losses are on scales of their own, a setting's colour means the same in every figure."""
    given = [run["colour"] for run in runs if run["colour"] is not None and run["epochs"]]
    numeric = bool(given) and all(_is_number(v) for v in given)
    scaled = [float(v) for v in given if not log_colour or v > 0] if numeric else []
    colour_range = (min(scaled), max(scaled)) if scaled else None
    categories = None if numeric else sorted({str(v) for v in given})
    out = {}
    for dataset in sorted({run["dataset"] for run in runs}):
        mine = [run for run in runs if run["dataset"] == dataset]
        out[dataset] = class_rate_distortion_figure(mine, colour_title, log_colour, colour_range, categories,
                                                    title=dataset, revision=f"{revision}-{dataset}")
    return out
