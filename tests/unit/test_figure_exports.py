"""What the figures give a slide: mosaics with named rows, PNGs enlarged sharply, legends and previews that read."""

import html
import io
import re

import numpy as np
from PIL import Image

from vae_core.views import figures

GREY = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)


def test_pair_mosaic_names_each_row_on_its_left_and_keeps_the_grid_as_it_was():
    originals, recons = np.stack([GREY[None]] * 8), np.stack([1 - GREY[None]] * 8)
    plain = figures.pair_mosaic(originals, recons, cols=4, scale=3)
    named = figures.pair_mosaic(originals, recons, cols=4, scale=3, labels=("original", "reconstruction"))
    band = named.shape[1] - plain.shape[1]
    assert named.shape[0] == plain.shape[0] and band > 40  # wide enough for "reconstruction"
    np.testing.assert_array_equal(named[:, band:, 0], plain)  # the grid itself, pixel for pixel
    row = (plain.shape[0] + 1) // 4  # four rows: original, reconstruction, original, reconstruction
    inked = [(named[r * row:(r + 1) * row - 1, :band] < 128).any(axis=2).sum() for r in range(4)]
    assert all(inked) and inked[0] == inked[2] and inked[1] == inked[3] and inked[1] > inked[0]  # the longer word


def test_png_bytes_enlarge_a_grid_for_a_slide_with_sharp_pixels():
    grid = figures.mosaic(np.stack([GREY[None]] * 4), cols=2)  # 17 × 17 pixels
    png = Image.open(io.BytesIO(figures.png_bytes(grid)))
    assert png.format == "PNG" and png.size == (17 * (figures.SLIDE_WIDTH // 17),) * 2
    pixels, scale = np.asarray(png), figures.SLIDE_WIDTH // 17
    np.testing.assert_array_equal(pixels[::scale, ::scale], grid)  # each pixel a block of its own value
    np.testing.assert_array_equal(pixels[scale - 1::scale, scale - 1::scale], grid)
    wide = np.zeros((10, 2000), np.uint8)
    assert Image.open(io.BytesIO(figures.png_bytes(wide))).size == (2000, 10)  # never shrunk


def _epoch_ticks(svg: str) -> list[str]:
    return re.findall(r'text-anchor="middle" [^>]*>([\d.]+)</text>', svg)


def test_beta_and_learning_rate_previews_share_round_epoch_ticks_and_leave_room_for_their_axis_title():
    beta = figures.schedule_svg([e * 2 for e in range(301)], [1.0] * 301, "β")  # sampled up to epoch 600
    lr = figures.schedule_svg([e * 598 / 300 for e in range(301)], [1e-3] * 301, "learning rate")  # to 598
    assert _epoch_ticks(beta) == _epoch_ticks(lr) == ["0", "200", "400", "600"]
    assert _epoch_ticks(figures.schedule_svg([0, 10], [1, 1], "β")) == ["0", "5", "10"]
    labels_start = min(float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="end"', lr))
    assert labels_start - 6 * 11 * 0.6 > 12  # "0.0005" at 11 px ends right of the rotated title at x = 11


def test_long_run_names_are_cut_in_the_legend_and_whole_on_hover():
    long = "β = 4 disentangling attempt number one, with <b>notes</b>"
    runs = {long: [{"epoch": 1, "val_kl": 2.0, "val_recon": 30.0, "val_neg_elbo": 32.0}]}
    for figure in (figures.runs_figure(runs, "val_neg_elbo"), figures.rate_distortion_figure(runs)):
        trace = figure["data"][0]
        shown = html.unescape(trace["name"])  # cut in the middle: the end tells runs apart
        assert "…" in shown and len(shown) <= figures.LEGEND_CHARS and shown.endswith("<b>notes</b>")
        assert trace["meta"] == "β = 4 disentangling attempt number one, with &lt;b&gt;notes&lt;/b&gt;"
        assert "%{meta}" in trace["hovertemplate"]
        assert figure["layout"]["modebar"] == {"orientation": "v"}  # the toolbar beside the plot, not on the legend
    assert figures.runs_figure({"β = 1": runs[long]}, "val_kl")["data"][0]["name"] == "β = 1"


def test_the_latent_scatters_toolbar_lies_above_its_legend_not_over_it():
    layout = figures.latent_figure(np.zeros((3, 2)), np.array([0, 1, 1]), ("0", "1"))["layout"]
    assert layout["legend"]["y"] == 1 and layout["modebar"] == {"orientation": "h"} and layout["margin"]["t"] >= 30
