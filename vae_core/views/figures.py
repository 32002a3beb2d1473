"""Plotly figures and image mosaics from plain numbers: what the app draws, without the app.

A figure is plain data, {"data": [traces], "layout": {...}}, as plotly.js takes it: Plotly's validating
Figure objects cost ten times as much, and a live view redraws three figures every second or so for every
student watching (bench/README.md, "Figures as plain data").
`st.plotly_chart` takes these dicts too (tests read them back through `go.Figure`, which validates).
Every figure sets `uirevision`, so a live update keeps the user's zoom and legend choices (a y zoom
only while the y scale stays linear or log: a range kept from one scale is meaningless in the other).
Images are (N, C, H, W) floats in [0, 1]; 2-D point data is (N, 2).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Figure = dict  # {"data": [...], "layout": {...}}

LEGEND_CHARS = 28  # a legend entry's name is cut to this (with "…"), its full name shown on hover
SLIDE_WIDTH = 1600  # pixels: a grid's PNG export is enlarged (pixels repeated) to about this width
THUMBNAIL_BYTES = 1_500_000  # at most this much of hover images (PNG data URIs) per scatter
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")

# The look of Plotly's "plotly_white" template, set directly: a template is copied into every figure
# and sent with it (10 KB).
_AXIS = dict(automargin=True, gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8", zerolinewidth=2,
             ticks="")
_STYLE = dict(template={}, plot_bgcolor="white", paper_bgcolor="white", hovermode="closest",
              hoverlabel=dict(align="left"), colorway=["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A",
                                                       "#19d3f3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52"],
              font=dict(family='"Source Sans", "Source Sans Pro", sans-serif', color="#2a3f5f"))


def to_json(figure: Figure) -> str:
    """The figure as compact JSON for plotly.js."""
    return json.dumps(figure, separators=(",", ":"), ensure_ascii=False)


def _numbers(values) -> list:
    """Plain floats for JSON; NaN and infinities as None (a gap in the line)."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [v if v is None or math.isfinite(v) else None for v in values]


def _axis(title: str | None = None, **extra) -> dict:
    return {**_AXIS, "title": {"text": title, "standoff": 15}, **extra}


def _figure(traces: list[dict], revision: str, height: int, xaxis: dict, yaxis: dict, title: str | None = None,
            **extra) -> Figure:
    # The toolbar (shown on hover) stands upright in the right margin: across the top it covered the legend.
    layout = dict(uirevision=revision, height=height, margin=dict(l=10, r=40, t=40 if title else 10, b=10),
                  **_STYLE, xaxis=xaxis, yaxis=yaxis, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                  modebar=dict(orientation="v"))
    if title:
        layout["title"] = dict(text=title, x=0, font=dict(size=14))
    # st.plotly_chart refuses a figure without traces (runs stopped before their first epoch have no points)
    return {"data": traces or [dict(type="scatter", x=[], y=[], showlegend=False)], "layout": {**layout, **extra}}


def _y_scale(log_y: bool, revision: str) -> dict:
    """The y-axis type, with a y-axis `uirevision` of its own per type."""
    scale = "log" if log_y else "linear"
    return dict(type=scale, uirevision=f"{revision}-{scale}")


def _round_ticks(end: float) -> list[float]:
    """Ticks from 0 at a round step (1, 2, 2.5 or 5 × 10^k, whole below 10) to the first multiple of it at or
    past `end`, 2 to 4 steps, the shortest axis: a β curve sampled to epoch 600 and a learning rate to 598 both
    end at 600."""
    steps = [m * 10.0 ** k for k in range(-3, 7) for m in (1, 2, 2.5, 5) if m != 2.5 or k > 0]
    fits = [(math.ceil(end / step - 1e-9) * step, math.ceil(end / step - 1e-9), step) for step in steps
            if 2 <= math.ceil(end / step - 1e-9) <= 4]
    last, count, step = min(fits)
    return [i * step for i in range(count + 1)]


def schedule_svg(epochs: list[float], values: list[float], name: str) -> str:
    """A small line chart of a schedule (β or learning rate) over training, x in epochs as the settings are,
    as SVG (from 0 up; epochs at round ticks, values at both ends and the middle). The browser draws it at once:
    as the Train page's first Plotly charts these two made its Start button appear 0.8 s later in headless
    Chromium."""
    width, height, left, right, top, bottom = 210, 150, 56, 14, 8, 36  # the sidebar is about 210 px wide
    ticks = _round_ticks(max(epochs, default=0) or 1)
    x_end, y_end = ticks[-1], max(values, default=0.0) or 1.0

    def x(epoch: float) -> float:
        return left + epoch / x_end * (width - left - right)

    def y(value: float) -> float:
        return top + (1 - value / y_end) * (height - top - bottom)

    ink = 'font-family="sans-serif" font-size="11" fill="#2a3f5f"'
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img"><title>{name} over the training epochs</title>']
    for value in (0.0, y_end / 2, y_end):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     'stroke="#e5ecf6"/>')
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" {ink}>{value:.3g}</text>')
    for epoch in ticks:
        parts.append(f'<text x="{x(epoch):.1f}" y="{height - bottom + 14}" text-anchor="middle" {ink}>'
                     f'{epoch:g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle" {ink}>'
                 'epoch</text>')
    parts.append(f'<text transform="translate(11 {(top + height - bottom) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle" {ink}>{name}</text>')
    points = " ".join(f"{x(epoch):.1f},{y(value):.1f}" for epoch, value in zip(epochs, values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#9467bd" stroke-width="2"/></svg>')
    return "".join(parts)


def mosaic(images: np.ndarray, cols: int | None = None, pad: int = 1, scale: int = 1) -> np.ndarray:
    """One uint8 image from many: (N, C, H, W) in rows of `cols`, or a grid (R, K, C, H, W) as R rows.

    Every pixel is repeated `scale` times each way (sharp when shown enlarged), then tiles are set
    `pad` white pixels apart. Returns (H', W') for grey or (H', W', 3) for RGB."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 5:
        cols = images.shape[1]
        images = images.reshape(-1, *images.shape[2:])
    if images.ndim != 4:
        raise ValueError(f"mosaic needs (N, C, H, W) or (R, K, C, H, W) images, got shape {images.shape}")
    if scale > 1:
        images = images.repeat(scale, 2).repeat(scale, 3)
    n, c, h, w = images.shape
    cols = max(1, min(cols or int(np.ceil(np.sqrt(n))), n))
    rows = int(np.ceil(n / cols))
    tiles = np.ones((rows * cols, c, h, w), dtype=np.float32)
    tiles[:n] = np.clip(images, 0, 1)
    tiles = np.pad(tiles.reshape(rows, cols, c, h, w), ((0, 0), (0, 0), (0, 0), (0, pad), (0, pad)),
                   constant_values=1.0)
    out = tiles.transpose(0, 3, 1, 4, 2).reshape(rows * (h + pad), cols * (w + pad), c)
    out = out[:rows * (h + pad) - pad, :cols * (w + pad) - pad]
    out = (out * 255 + 0.5).astype(np.uint8)
    return out[..., 0] if c == 1 else out


def pair_mosaic(originals: np.ndarray, reconstructions: np.ndarray, cols: int = 8, scale: int = 1,
                labels: tuple[str, str] | None = None) -> np.ndarray:
    """Originals and their reconstructions in alternating rows of `cols`: row 1 originals, row 2 theirs...
    With `labels` (say ("original", "reconstruction")), each row is named on its left (see `label_rows`)."""
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    n = len(originals)
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    blank = np.ones((rows * cols - n, *originals.shape[1:]), dtype=np.float32)
    a = np.concatenate([originals, blank]).reshape(rows, 1, cols, *originals.shape[1:])
    b = np.concatenate([reconstructions, blank]).reshape(rows, 1, cols, *originals.shape[1:])
    out = mosaic(np.concatenate([a, b], 1).reshape(2 * rows, cols, *originals.shape[1:]), pad=1, scale=scale)
    return out if labels is None else label_rows(out, list(labels) * rows)


ROW_LABEL_PX = 14  # type size of row labels: read at a mosaic's own pixel size, as the pages show it


def label_rows(image: np.ndarray, labels: list[str], pad: int = 1) -> np.ndarray:
    """A mosaic (uint8, grey or RGB) with a white band on its left naming each of its rows, a label per row
    (rows of equal height `pad` pixels apart, as `mosaic` lays them out), so a grid read on a slide or a
    projector says which row is which without a caption to look up."""
    font = ImageFont.load_default(size=ROW_LABEL_PX)  # Pillow's own font: no file, no network
    band = max(int(font.getlength(text)) for text in labels) + 10
    rows = len(labels)
    row_height = (image.shape[0] + pad) / rows - pad
    canvas = Image.new("RGB", (band + image.shape[1], image.shape[0]), "white")
    canvas.paste(Image.fromarray(image).convert("RGB"), (band, 0))
    draw = ImageDraw.Draw(canvas)
    for row, text in enumerate(labels):
        draw.text((band - 6, row * (row_height + pad) + row_height / 2), text, fill="#2a3f5f", font=font,
                  anchor="rm")
    return np.asarray(canvas)


def png_bytes(image: np.ndarray, width: int = SLIDE_WIDTH) -> bytes:
    """A mosaic as PNG bytes for a slide: each pixel repeated (nearest neighbour, stays sharp) up to about
    `width` pixels wide, never shrunk."""
    scale = max(1, width // image.shape[1])
    buffer = io.BytesIO()
    Image.fromarray(image.repeat(scale, 0).repeat(scale, 1)).save(buffer, "PNG")
    return buffer.getvalue()


def thumbnails(images: np.ndarray, max_bytes: int = THUMBNAIL_BYTES) -> list[str | None]:
    """Each image (N, C, H, W) as a PNG data URI at its own pixel size, for the image shown when the pointer
    is over its point. Images past `max_bytes` of URIs in all get None (no image): that caps what a page
    sends for a scatter of large images (a thousand 8×8 digits take about 0.2 MB, 28×28 ones about 0.4)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"thumbnails need (N, C, H, W) images, got shape {images.shape}")
    pixels = (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)
    out, total = [], 0
    for tile in pixels:
        if total > max_bytes:
            out.append(None)
            continue
        buffer = io.BytesIO()
        Image.fromarray(tile[0] if len(tile) == 1 else tile.transpose(1, 2, 0)).save(buffer, "PNG")
        uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        total += len(uri)
        out.append(uri if total <= max_bytes else None)
    return out


def tile_scale(side: int, target: int = 56) -> int:
    """How many times to enlarge an image of `side` pixels so it shows about `target` pixels wide."""
    return max(1, round(target / side))


def points_figure(data: np.ndarray, overlay: np.ndarray, overlay_name: str, connect: bool = False,
                  revision: str = "points") -> Figure:
    """2-D data (grey) with reconstructions or samples on top; `connect` draws each point to its partner."""
    data, overlay = np.asarray(data), np.asarray(overlay)
    traces = [dict(type="scatter", x=_numbers(data[:, 0]), y=_numbers(data[:, 1]), mode="markers", name="data",
                   marker=dict(color="#b0b0b0", size=4))]
    if connect:
        n = min(len(data), len(overlay))
        xs = np.column_stack([data[:n, 0], overlay[:n, 0], np.full(n, np.nan)]).ravel()
        ys = np.column_stack([data[:n, 1], overlay[:n, 1], np.full(n, np.nan)]).ravel()
        traces.append(dict(type="scatter", x=_numbers(xs), y=_numbers(ys), mode="lines", name="error",
                           hoverinfo="skip", line=dict(color="rgba(214,39,40,0.25)", width=1)))
    traces.append(dict(type="scatter", x=_numbers(overlay[:, 0]), y=_numbers(overlay[:, 1]), mode="markers",
                       name=overlay_name, marker=dict(color="#d62728", size=4)))
    return _figure(traces, revision, 320, _axis(), _axis(scaleanchor="x", scaleratio=1))


def latent_figure(latent: np.ndarray, labels: np.ndarray | None, class_names: tuple[str, ...] | None = None,
                  axis_titles: tuple[str, str] = ("z₁", "z₂"), highlight: dict[str, int] | None = None,
                  prior: bool = False, revision: str = "latent", height: int = 420) -> Figure:
    """Latent means as a scatter, one trace per label, `customdata` = the point's index (for picking, and for
    the image shown on hover: see `thumbnails`). A click is an event only: no point is left selected.

    `highlight` maps a name ("A", "B") to an index to draw as a large labelled marker. With `prior`, the axes
    span at least the prior's ±3 and a circle marks where 95 % of N(0, I) lies (radius 2.45), so a code that
    has collapsed to a dot looks like one instead of being auto-scaled into a cloud."""
    latent = np.asarray(latent)
    index = np.arange(len(latent))
    groups = [(None, index)] if labels is None else [(k, index[labels == k]) for k in np.unique(labels)]
    traces = []
    for k, idx in groups:
        name = "inputs" if k is None else (class_names[k] if class_names and k < len(class_names) else str(k))
        name = _plain(name)  # an uploaded dataset's class names are its folder names
        traces.append(dict(type="scatter", x=_numbers(latent[idx, 0]), y=_numbers(latent[idx, 1]), mode="markers",
                           name=name, customdata=idx.tolist(), meta=name,
                           marker=dict(size=5, opacity=0.75, color=PALETTE[int(k or 0) % len(PALETTE)]),
                           hovertemplate="%{meta}<br>#%{customdata}<extra></extra>"))
    for name, i in (highlight or {}).items():
        traces.append(dict(type="scatter", x=_numbers(latent[i, :1]), y=_numbers(latent[i, 1:2]),
                           mode="markers+text", text=[name], textposition="top center", name=f"{name}: #{i}",
                           hoverinfo="skip",
                           marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="black", width=2))))
    axes, extra = ({}, {}), {}
    if prior:
        axes = tuple(dict(range=_span(latent[:, i] if len(latent) else np.zeros(0))) for i in (0, 1))
        extra["shapes"] = [dict(type="circle", xref="x", yref="y", x0=-PRIOR_95, y0=-PRIOR_95, x1=PRIOR_95,
                                y1=PRIOR_95, line=dict(color="#7f7f7f", width=1, dash="dot"), layer="below")]
        extra["annotations"] = [dict(x=0, y=PRIOR_95, xref="x", yref="y", text="95 % of the prior",
                                     showarrow=False, yanchor="bottom", font=dict(size=11, color="#7f7f7f"))]
    figure = _figure(traces, revision, height, _axis(axis_titles[0], **axes[0]), _axis(axis_titles[1], **axes[1]),
                     clickmode="event", dragmode="zoom", **extra)
    figure["layout"]["legend"] = dict(orientation="v", x=1.02, y=1, yanchor="top")
    # The legend runs down the right from the plot's top: the toolbar lies across a top margin of its own above.
    figure["layout"].update(modebar=dict(orientation="h"), margin={**figure["layout"]["margin"], "t": 36})
    return figure


PRIOR_95 = 2.448  # radius holding 95 % of a 2-D standard normal: sqrt(chi2.ppf(0.95, 2))


def _span(values: np.ndarray) -> list[float]:
    """An axis range holding the prior's ±3 and every finite value, with a margin."""
    finite = values[np.isfinite(values)]
    lo, hi = min(-3.0, float(finite.min(initial=0.0))), max(3.0, float(finite.max(initial=0.0)))
    pad = 0.05 * (hi - lo)
    return [lo - pad, hi + pad]


KL_RANGE = 0.5  # nats: the KL bars' y axis spans at least this, so a collapsed code's 0.001-nat bars stay flat


def kl_figure(kl_per_dim: np.ndarray, informative: np.ndarray | None = None, threshold: float | None = None,
              revision: str = "kl") -> Figure:
    """KL of each latent dimension as bars, the `informative` units (a boolean per dimension, as
    vae_core.maths.collapse decides them) coloured and counted, and the KL an informative unit must exceed
    as a dashed line."""
    kl = np.asarray(kl_per_dim, dtype=float)
    known = informative is not None
    mask = np.asarray(informative, bool) if known else np.zeros(len(kl), bool)
    bars = dict(type="bar", x=[f"z{d + 1}" for d in range(len(kl))], y=_numbers(kl),
                marker=dict(color=np.where(mask, "#2ca02c", "#c7c7c7").tolist()),
                hovertemplate="%{x}: %{y:.3f} nats<extra></extra>")
    top = max(KL_RANGE, 1.1 * float(np.nanmax(kl, initial=0.0)))
    title = "KL per dimension" + (f"<br><sup>{mask.sum()} of {len(kl)} units informative</sup>" if known else "")
    shapes = [] if threshold is None else [dict(type="line", xref="paper", x0=0, x1=1, y0=threshold, y1=threshold,
                                                line=dict(color="#7f7f7f", dash="dash", width=1))]
    return _figure([bars], revision, 260, _axis(), _axis("KL (nats)", range=[0, top]), title=title,
                   showlegend=False, shapes=shapes)


def points_path_figure(data: np.ndarray, paths: np.ndarray, names: list[str],
                       revision: str = "path") -> Figure:
    """Decoded paths through 2-D data space (interpolations or traversals): one line per path (K, S, 2)."""
    data = np.asarray(data)
    traces = [dict(type="scatter", x=_numbers(data[:, 0]), y=_numbers(data[:, 1]), mode="markers", name="data",
                   marker=dict(color="#d0d0d0", size=4))]
    for i, (path, name) in enumerate(zip(np.asarray(paths), names)):
        traces.append(dict(type="scatter", x=_numbers(path[:, 0]), y=_numbers(path[:, 1]), mode="lines+markers",
                           name=name, line=dict(color=PALETTE[i % len(PALETTE)])))
    return _figure(traces, revision, 360, _axis(), _axis(scaleanchor="x", scaleratio=1))


def rate_distortion_figure(runs: dict[str, list[dict]], revision: str = "rate-distortion") -> Figure:
    """Each run as its path over epochs in the plane of validation KL (rate) against reconstruction (distortion)."""
    traces = []
    for i, (label, epochs) in enumerate(runs.items()):
        rows = [r for r in epochs if "val_kl" in r and "val_recon" in r]
        if not rows:
            continue
        name = _plain(label)  # a student's title
        colour = PALETTE[i % len(PALETTE)]
        traces.append(dict(type="scatter", x=_numbers(r["val_kl"] for r in rows),
                           y=_numbers(r["val_recon"] for r in rows), name=_legend_name(label), mode="lines+markers",
                           line=dict(color=colour), marker=dict(size=5), customdata=[int(r["epoch"]) for r in rows],
                           legendgroup=name, meta=name, hovertemplate="%{meta}<br>epoch %{customdata}<br>KL %{x:.2f}"
                                                                      "<br>recon %{y:.2f}<extra></extra>"))
        traces.append(dict(type="scatter", x=_numbers([rows[-1]["val_kl"]]), y=_numbers([rows[-1]["val_recon"]]),
                           mode="markers", marker=dict(size=13, color=colour, symbol="star"), legendgroup=name,
                           showlegend=False, hoverinfo="skip"))
    return _figure(traces, revision, 420, _axis("rate: KL (nats)"), _axis("distortion: reconstruction (nats)"))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(text: str) -> str:
    """Students' text for Plotly, which reads some HTML in names and hover text: shown as typed."""
    return html.escape(str(text), quote=False)


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut in the middle: a run's name starts with its title and ends
    with what tells it from its siblings (a lesson's side, its live changes, whose it is)."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head].rstrip() + "…" + text[len(text) - (limit - 1 - head):].lstrip()


def _legend_name(text: str) -> str:
    """A run's name cut for the legend: five long titles stacked into a legend taller than the chart."""
    return _plain(shorten(text, LEGEND_CHARS))


def runs_figure(runs: dict[str, list[dict]], key: str, label: str | None = None, log_y: bool = False,
                revision: str = "runs") -> Figure:
    """One per-epoch metric (e.g. "val_neg_elbo") of several runs, overlaid; `label` names the y-axis."""
    traces = []
    for i, (name, epochs) in enumerate(runs.items()):
        rows = [r for r in epochs if key in r]
        traces.append(dict(type="scatter", x=[r["epoch"] for r in rows], y=_numbers(r[key] for r in rows),
                           name=_legend_name(name), mode="lines+markers", line=dict(color=PALETTE[i % len(PALETTE)]),
                           meta=_plain(name), hovertemplate="%{meta}<br>epoch %{x}: %{y:.4g}<extra></extra>"))
    last = max((r["epoch"] for rows in runs.values() for r in rows), default=0)
    xaxis = _axis("epoch", **({"dtick": 1} if last <= 12 else {}))
    return _figure(traces, f"{revision}-{key}", 360, xaxis,
                   _axis(label or key, **_y_scale(log_y, f"{revision}-{key}")))
