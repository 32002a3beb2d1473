"""Explore's "Draw a digit": a drawing, or a photo of a digit on paper, prepared as the dataset's digits are
(vae_core.data.drawing), then encoded: its μ and σ, its reconstruction, and a star on the latent scatter.

The canvas is a component of our own on Streamlit's components v2 API: inline HTML and JavaScript, no build
step and no package. streamlit-drawable-canvas, the usual choice, is no longer maintained and broke with
Streamlit 1.41 (it imported a function Streamlit moved; its issues #156 and #157), so a plain upload is there too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from pages.ui import charts
from vae_core.config import TrainConfig
from vae_core.data import DataError, Dataset, drawing
from vae_core.maths.models import VAE
from vae_core.views import explore, figures

CANVAS, UPLOAD, PREPARE = "draw_canvas", "explore_upload", "draw_prepare"  # widget keys
SIDE = 280  # the canvas's pixels; its pen is 22 wide, so a digit drawn across most of it gets MNIST's strokes

# On each stroke's end the canvas sends itself as a PNG (state "png"); Clear sends null. A redrawn page (a
# reload) gets the last PNG back in `data` and paints it, so the canvas shows what was encoded.
_CANVAS_JS = """
export default function ({ data, parentElement, setStateValue }) {
  if (parentElement.querySelector("canvas")) return;
  parentElement.innerHTML = `<canvas width="${data.side}" height="${data.side}" aria-label="drawing canvas"
    style="display:block;border:1px solid #c8d4e3;border-radius:4px;touch-action:none;cursor:crosshair"></canvas>
    <button type="button" style="margin-top:6px;padding:4px 14px;border:1px solid #c8d4e3;border-radius:6px;
    background:white;cursor:pointer;font:inherit">Clear</button>`;
  const canvas = parentElement.querySelector("canvas"), pen = canvas.getContext("2d");
  const blank = () => { pen.fillStyle = "white"; pen.fillRect(0, 0, canvas.width, canvas.height); };
  blank();
  Object.assign(pen, { lineWidth: 22, lineCap: "round", lineJoin: "round", strokeStyle: "black" });
  let last = null;
  const at = (e) => {
    const box = canvas.getBoundingClientRect();
    return [(e.clientX - box.left) * canvas.width / box.width, (e.clientY - box.top) * canvas.height / box.height];
  };
  const line = (to) => { pen.beginPath(); pen.moveTo(...last); pen.lineTo(...to); pen.stroke(); last = to; };
  canvas.addEventListener("pointerdown", (e) => { canvas.setPointerCapture(e.pointerId); last = at(e); line(last); });
  canvas.addEventListener("pointermove", (e) => { if (last) line(at(e)); });
  const end = () => { if (last) { last = null; setStateValue("png", canvas.toDataURL("image/png")); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  parentElement.querySelector("button").addEventListener("click", () => { blank(); setStateValue("png", null); });
  if (data.png) { const img = new Image(); img.onload = () => pen.drawImage(img, 0, 0); img.src = data.png; }
}
"""
_canvas = st.components.v2.component("vae_lab_draw", js=_CANVAS_JS)


@dataclass(frozen=True)
class Refused:
    """A picture that cannot be encoded, and why in plain words; `empty` when it holds nothing (not an error)."""
    message: str
    empty: bool


@dataclass(frozen=True)
class Drawn:
    """What the student gave, as read and as the model sees it, and its posterior."""
    where: str  # "your drawing", or the photo's file name
    picture: np.ndarray  # grey (height, width), as read
    x: torch.Tensor  # the model's input (C, H, W)
    mu: np.ndarray
    logvar: np.ndarray


def current(model: VAE, data: Dataset) -> Drawn | Refused | None:
    """The photo, or else the drawing, this student gave, encoded; read from the widgets' state before they
    are drawn, so that the scatter above them can mark it. A picture that cannot be used gives its error."""
    file = st.session_state.get(UPLOAD)
    png = (st.session_state.get(CANVAS) or {}).get("png")
    if file is None and not png:
        return None
    where = file.name if file is not None else "your drawing"
    try:
        picture = (drawing.read_image(file.getvalue(), where) if file is not None
                   else drawing.read_data_url(png, where))
        x = torch.from_numpy(drawing.prepare(picture, data.name, data.sample_shape)
                             if st.session_state.get(PREPARE, True) else drawing.as_it_is(picture, data.sample_shape))
    except drawing.NoInk as exc:
        return Refused(f"Nothing to encode in {where}: {exc}", empty=True)
    except DataError as exc:
        return Refused(f"Could not read {where} as an image: {exc}", empty=False)
    mu, logvar = explore.encode(model, x[None])
    return Drawn(where, picture, x, mu[0].numpy(), logvar[0].numpy())


def section(model: VAE, config: TrainConfig, data: Dataset, drawn: Drawn | Refused | None) -> None:
    thing = {"digits": "a digit", "mnist": "a digit", "fashion-mnist": "a piece of clothing"}.get(data.name, "a shape")
    st.subheader(f"Draw {thing}, or upload a photo of one")
    pad, preview, numbers = st.columns([1.1, 1, 1.3], gap="medium")
    with pad:
        png = (st.session_state.get(CANVAS) or {}).get("png")
        # Streamlit keeps a component's state only for the names given a change callback: nothing else to do here.
        _canvas(data={"side": SIDE, "png": png}, key=CANVAS, default={"png": None}, on_png_change=lambda: None,
                width=SIDE + 2)
        st.file_uploader(f"…or a photo of {thing} on paper (PNG or JPEG)", type=["png", "jpg", "jpeg"], key=UPLOAD,
                         help="A photo is used while it is here: remove it to encode your drawing.")
        st.toggle("Prepare it as the dataset's images are", True, key=PREPARE,
                  help="Invert dark ink on light paper, drop faint marks, crop to the ink, scale and centre it "
                       "as the dataset did. Off: the picture is only shrunk to the model's input, as it is.")
    if drawn is None:
        preview.info(f"Draw {thing} on the canvas (or upload a photo of one): the model encodes it here.",
                     icon=":material/draw:")
        return
    if isinstance(drawn, Refused):
        (preview.warning if drawn.empty else preview.error)(drawn.message)
        return
    recon = explore.decode(model, torch.from_numpy(drawn.mu)[None]).numpy()
    side = data.sample_shape[-1]
    with preview:
        st.image(np.clip(drawn.picture, 0, 1), caption=f"{drawn.where}, as given", width=140)
        charts.image(figures.mosaic(np.stack([drawn.x.numpy(), recon[0]]), cols=2,
                                    scale=figures.tile_scale(side, 112)),
                     "Your image and its reconstruction: as the model sees it (left), decoded from μ (right)")
        st.caption(_how(data.name) if st.session_state.get(PREPARE, True) else
                   "Shrunk as it is: no inversion, no cropping, no centring.")
    with numbers:
        st.dataframe({"dimension": [f"z{d + 1}" for d in range(config.latent_dim)], "μ": drawn.mu.round(3),
                      "σ": np.exp(0.5 * drawn.logvar).round(3)}, hide_index=True)  # ten rows, then a scroll
        st.caption("Marked ★ on the latent scatter above" + (", on its two principal axes" if config.latent_dim > 2
                                                              else "") + ".")


def _how(dataset: str) -> str:
    """How the picture was prepared, in a sentence, for this dataset."""
    layout = drawing.FRAMES.get(dataset)
    if layout is None:
        return "Prepared: inverted where the ground is light, faint marks dropped, cropped to the ink, scaled to fill."
    if layout.block > 1:
        cells = layout.block**2
        return (f"Prepared as scikit-learn's digits: ink light on black, cropped, scaled to fill {layout.side}×"
                f"{layout.side}, then the ink counted in {layout.block}×{layout.block} blocks (0 to {cells}, over "
                f"{cells}).")
    centred = "its centre of mass at the centre" if layout.centre == "mass" else "centred"
    return (f"Prepared as {dataset}: ink light on black, cropped, its longer side scaled to {layout.box} pixels, "
            f"{centred} of {layout.side}×{layout.side}.")
