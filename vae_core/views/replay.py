"""A run's replay as one Plotly figure: the latent scatter, reconstructions and prior samples at each kept epoch,
as animation frames with a Play button and an epoch slider. Plotly plays them in the browser, so playing costs
the server nothing (no reruns). The axes are fixed across frames, so points move rather than the axes jumping."""

from __future__ import annotations

import base64

import numpy as np

from vae_core.jobs.replay import Frame, Replay
from vae_core.views import figures

FRAME_MS = 600  # each epoch's frame shows this long when playing
MOVE_MS = 300  # of which the points move this long from where they were
HEIGHT = 600
LATENT_WIDTH = 0.56  # of the figure's width: the scatter on the left, the images on the right


def replay_figure(replay: Replay, class_names: tuple[str, ...] | None = None,
                  axis_titles: tuple[str, str] = ("z₁", "z₂"), prior: bool = False,
                  revision: str = "replay") -> figures.Figure:
    """The first kept frame drawn, and every kept frame as an animation frame named by its epoch."""
    frames = replay.frames
    figure = figures.latent_figure(_short(frames[0].latent), replay.labels, class_names, axis_titles, prior=prior,
                                   revision=revision, height=HEIGHT)
    groups = [trace["customdata"] for trace in figure["data"]]  # one trace per label, as latent_figure made them
    every = _f64(np.concatenate([f.latent for f in frames]))
    layout = figure["layout"]
    layout["xaxis"].update(domain=[0, LATENT_WIDTH], range=_range(every[:, 0], prior), autorange=False)
    layout["yaxis"].update(range=_range(every[:, 1], prior), autorange=False)
    axes, titles = _panel_axes(replay)
    layout.update(axes, legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
                  margin=dict(l=10, r=10, t=70, b=10), annotations=layout.get("annotations", []) + titles)

    def moving(frame: Frame) -> list[dict]:
        return [dict(x=_numbers(frame.latent[idx, 0]), y=_numbers(frame.latent[idx, 1])) for idx in groups] \
            + _panel_traces(replay, frame)

    under = _data_traces(replay)  # drawn first: below the moving points
    moved = list(range(len(under), len(under) + len(groups) + 2))
    animated = [dict(name=str(f.epoch), traces=moved, data=moving(f)) for f in frames]
    layout["sliders"] = [dict(active=0, x=0.16, len=0.84, y=0, yanchor="top", pad=dict(t=45),
                              currentvalue=dict(prefix="Epoch ", font=dict(size=14)),
                              font=dict(size=12 if len(frames) <= 30 else 9),  # a step's label each
                              steps=[dict(method="animate", label=frame["name"],
                                          args=[[frame["name"]], _animation(0, 0, mode="immediate")])
                                     for frame in animated])]
    layout["updatemenus"] = [dict(type="buttons", direction="left", showactive=False, x=0, y=0, xanchor="left",
                                  yanchor="top", pad=dict(t=55), buttons=[
                                      dict(label="▶ Play", method="animate",
                                           args=[None, _animation(FRAME_MS, MOVE_MS, fromcurrent=True)]),
                                      dict(label="❚❚ Pause", method="animate",
                                           args=[[None], _animation(0, 0, mode="immediate")])])]
    layout["height"] = HEIGHT + 90  # the slider and buttons below the plots
    data = under + figure["data"] + _panel_traces(replay, frames[0])
    return {"data": data, "layout": layout, "frames": animated}


def _animation(frame_ms: int, move_ms: int, **extra) -> dict:
    return dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=move_ms), **extra)


def _f64(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _short(values: np.ndarray) -> np.ndarray:
    """float16 values to 3 decimals (float16 holds about as many digits): short JSON numbers."""
    return np.round(_f64(values), 3)


def _numbers(values: np.ndarray) -> list:
    return figures._numbers(_short(values))


def _range(values: np.ndarray, prior: bool) -> list[float]:
    """An axis range holding every finite value of every frame (and the prior's ±3 for a VAE), with a margin."""
    finite = values[np.isfinite(values)]
    lo, hi = float(finite.min(initial=0.0)), float(finite.max(initial=0.0))
    if prior:
        lo, hi = min(lo, -3.0), max(hi, 3.0)
    pad = 0.05 * (hi - lo) or 1.0
    return [lo - pad, hi + pad]


def _panel_axes(replay: Replay) -> tuple[dict, list[dict]]:
    """Axes 2 (reconstructions, top right) and 3 (prior samples, bottom right), and their titles."""
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    right = dict(domain=[LATENT_WIDTH + 0.06, 1], **hidden)
    axes = {"xaxis2": dict(anchor="y2", **right), "yaxis2": dict(anchor="x2", domain=[0.56, 0.94], **hidden),
            "xaxis3": dict(anchor="y3", **right), "yaxis3": dict(anchor="x3", domain=[0.0, 0.38], **hidden)}
    if replay.is_image:
        names = ("Originals (odd rows) and their reconstructions", "Decoded samples of fixed prior draws")
        for axis in ("yaxis2", "yaxis3"):
            axes[axis].update(scaleanchor=axis.replace("yaxis", "x"), autorange="reversed")
    else:
        names = ("Data (grey) and reconstructions", "Data (grey) and prior samples")
        together = _f64(np.concatenate([replay.originals, *(f.reconstructions for f in replay.frames),
                                        *(f.samples for f in replay.frames)]))
        for axis, col in (("xaxis2", 0), ("yaxis2", 1), ("xaxis3", 0), ("yaxis3", 1)):
            axes[axis].update(range=_range(together[:, col], False), autorange=False)
    titles = [dict(text=f"<b>{name}</b>", xref="paper", yref="paper", x=LATENT_WIDTH + 0.06, y=y, xanchor="left",
                   yanchor="bottom", showarrow=False, font=dict(size=12)) for name, y in zip(names, (0.95, 0.39))]
    return axes, titles


def _panel_traces(replay: Replay, frame: Frame) -> list[dict]:
    """The reconstructions and prior samples of `frame`: PNG mosaics for images, scatters for 2-D points."""
    if replay.is_image:
        # at their own pixel size (small to send): Plotly enlarges them, pixelated
        recon = figures.pair_mosaic(replay.originals / 255.0, frame.reconstructions / 255.0, cols=8)
        samples = figures.mosaic(frame.samples / 255.0, cols=8)
        return [dict(type="image", source=_uri(image), xaxis=x, yaxis=y, hoverinfo="skip")
                for image, x, y in ((recon, "x2", "y2"), (samples, "x3", "y3"))]
    return [dict(type="scatter", mode="markers", name=name, xaxis=x, yaxis=y, showlegend=False, hoverinfo="skip",
                 x=_numbers(points[:, 0]), y=_numbers(points[:, 1]), marker=dict(color="#d62728", size=4))
            for points, x, y, name in ((frame.reconstructions, "x2", "y2", "reconstructions"),
                                       (frame.samples, "x3", "y3", "prior samples"))]


def _data_traces(replay: Replay) -> list[dict]:
    """2-D data's originals in grey under its reconstructions and samples (the same in every frame)."""
    if replay.is_image:
        return []
    return [dict(type="scatter", mode="markers", xaxis=x, yaxis=y, showlegend=False, hoverinfo="skip",
                 x=_numbers(replay.originals[:, 0]), y=_numbers(replay.originals[:, 1]),
                 marker=dict(color="#c7c7c7", size=4)) for x, y in (("x2", "y2"), ("x3", "y3"))]


def _uri(image: np.ndarray) -> str:
    """A mosaic as a PNG data URI at its own pixel size."""
    return "data:image/png;base64," + base64.b64encode(figures.png_bytes(image, width=image.shape[1])).decode()
