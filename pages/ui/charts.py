"""Live charts updated in place, and image mosaics."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import streamlit as st

from pages.ui import presenter
from vae_core.views import figures

# st.plotly_chart gives a chart a new identity whenever its figure changes, so a chart redrawn while
# training is remounted on every poll: it blinks and forgets the user's zoom. This component keeps one
# element and updates it with Plotly.react, which honours the figure's uirevision. Half a second after its
# first draw it imports Streamlit's own plotly.js bundle, the module st.plotly_chart loads (the same URL,
# so the same module where a page has both), and draws once window.Plotly is set, trying again (a failed
# import too) for up to a minute.
# Given `images` (a data URI per point index, the points' customdata), the point under the pointer is
# shown beside it, its image above its trace's name and index (instead of Plotly's label); with `pick`,
# a click on a point sends its index (trigger "pick").
_LIVE_JS = """
const loadPlotly = (src) => {
  if (!window.vaeLabPlotly && src) {
    window.vaeLabPlotly = import(new URL(src, document.baseURI).href).catch(() => { window.vaeLabPlotly = null; });
  }
};

const listen = (plot) => {
  const box = plot.parentElement.querySelector(".vae-lab-hover");
  const img = box.querySelector("img"), label = box.querySelector("span");
  const index = (pt) => (Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata);
  plot.on("plotly_hover", (event) => {
    const pt = (event.points || []).find((p) => p.customdata !== undefined);
    if (!pt || !plot.vaeImages) { box.style.display = "none"; return; }
    const src = plot.vaeImages[index(pt)];  // null past the size cap: the label alone
    img.style.display = src ? "block" : "none";
    if (src) img.src = src;
    label.textContent = `${pt.data.name} · #${index(pt)}`;
    box.style.display = "block";
    // Beside the point (left of it where there is room), kept inside the plot area.
    const xa = pt.xaxis, ya = pt.yaxis, w = box.offsetWidth, h = box.offsetHeight;
    const px = xa._offset + xa.l2p(pt.x), py = ya._offset + ya.l2p(pt.y);
    const left = px - w - 12 >= xa._offset ? px - w - 12 : px + 12;
    box.style.left = `${left}px`;
    box.style.top = `${Math.min(Math.max(py - h / 2, ya._offset), ya._offset + ya._length - h)}px`;
  });
  plot.on("plotly_unhover", () => { box.style.display = "none"; });
  plot.parentElement.addEventListener("mouseleave", () => { box.style.display = "none"; });
  plot.on("plotly_click", (event) => {
    const pt = (event.points || []).find((p) => p.customdata !== undefined);
    if (pt && plot.vaePick) plot.vaePick("pick", index(pt));
  });
};

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let plot = parentElement.querySelector(".vae-lab-live-plot");
  if (!plot) {
    const wrap = document.createElement("div");
    wrap.style.position = "relative";
    wrap.innerHTML = '<div class="vae-lab-live-plot"></div>'
      + '<div class="vae-lab-hover" style="display:none;position:absolute;z-index:10;pointer-events:none;'
      + 'background:white;border:1px solid #c8d4e3;border-radius:4px;padding:4px;text-align:center;'
      + 'box-shadow:0 2px 6px rgba(0,0,0,.2);font-size:12px;color:#2a3f5f">'
      + '<img alt="the sample under the pointer" style="display:block;width:96px;height:96px;'
      + 'object-fit:contain;image-rendering:pixelated">'
      + '<span></span></div>';
    parentElement.appendChild(wrap);
    plot = wrap.querySelector(".vae-lab-live-plot");
  }
  plot.vaeImages = data.images || null;  // read by the handlers at each event: the latest data's
  plot.vaePick = data.pick ? setTriggerValue : null;
  const figure = JSON.parse(data.figure);
  // The element keeps the figure's height: left to Plotly's responsive resize, a window resize (a laptop
  // moved to a projector) collapsed it, and the rows below were drawn over the chart.
  if (figure.layout.height) plot.style.height = `${figure.layout.height}px`;
  if (data.images) {  // the box above names the point: no Plotly label as well (hover events still fire)
    figure.data.forEach((trace) => {
      if (trace.customdata) { trace.hoverinfo = "none"; delete trace.hovertemplate; }
    });
  }
  const draw = (tries) => {
    if (window.Plotly) {
      window.Plotly.react(plot, figure.data, figure.layout, data.config)
        .then(() => { if (!plot.vaeListening) { plot.vaeListening = true; listen(plot); } });
    } else if (tries > 0) {
      if (tries <= 1190) loadPlotly(data.plotly);  // after the page's first paint: parsing it takes a while
      setTimeout(() => draw(tries - 1), 50);
    }
  };
  draw(1200);
}
"""
_live_plot = st.components.v2.component("vae_lab_live_plot", js=_LIVE_JS, isolate_styles=False)
# Plotly's options for every chart: its toolbar keeps "Download plot as a PNG", at twice the size, for slides.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "vae-lab-chart"}}
PRESENTER_FONT = 20  # px: a chart's text in presenter mode (Plotly's default is 12)
# Streamlit's own plotly.js bundle (sets window.Plotly when loaded), as a path below the app's address
_PLOTLY_JS = next((f"static/js/{path.name}" for path in
                   (Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js")), None)


def live_chart(figure: figures.Figure, key: str, images: list[str | None] | None = None, on_pick=None) -> None:
    """A Plotly figure that is updated in place on every rerun (see _LIVE_JS); `key` names the element.

    `images`: a data URI (or None) per point index, shown when the pointer is over that point. `on_pick`:
    called when a point is clicked; its index is then `st.session_state[key].pick`."""
    if presenter.active():  # the page's type is larger on a projector: so is the chart's
        layout = figure.get("layout", {})
        figure = {**figure, "layout": {**layout, "font": {**layout.get("font", {}), "size": PRESENTER_FONT}}}
    data = {"figure": figures.to_json(figure), "plotly": _PLOTLY_JS,
            "config": {**PLOTLY_CONFIG, "responsive": True,
                       "toImageButtonOptions": {**PLOTLY_CONFIG["toImageButtonOptions"], "filename": key}}}
    if images is not None:
        data["images"] = images
    if on_pick is None:
        _live_plot(data=data, key=key)
    else:
        _live_plot(data={**data, "pick": True}, key=key, on_pick_change=on_pick)


def image(array: np.ndarray, caption: str | None = None, name: str | None = None) -> None:
    """A mosaic at its own pixel size (at most the container's width); the caption below does not widen it.
    A button under it downloads it as a PNG enlarged for slides, made only when pressed (a live view redraws
    its mosaics every second), the file named from `name` or the caption."""
    st.image(array, width="content")
    if caption:
        st.caption(caption)
    stem = re.sub(r"[^a-z0-9]+", "-", (name or caption or "grid").lower()).strip("-")[:40] or "grid"
    # The file's name is the button's identity: the image's digest keeps two grids of one page apart.
    digest = hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=4).hexdigest()
    st.download_button("PNG", lambda: figures.png_bytes(array), file_name=f"vae-lab-{stem}-{digest}.png",
                       mime="image/png", icon=":material/download:", on_click="ignore", type="tertiary",
                       help="Download this grid as a PNG, enlarged for slides")
