"""Explore's latent scatter with each point's σ ellipse, and "Draw a digit": a drawing (the canvas's state, as its
JavaScript would send it) or a photo, encoded, with its μ, σ, reconstruction and star on the scatter."""

import base64
import io
import json

import numpy as np
from PIL import Image

from vae_core.config import TrainConfig
from vae_core.data import load_dataset
from vae_core.views import ellipses

TINY = TrainConfig(epochs=1, hidden=[32])


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def _scatter(at) -> list[dict]:
    chart = next(c for c in at.get("bidi_component") if c.key == "explore_latent")
    return json.loads(json.loads(chart.proto.json)["figure"])["data"]


def _photo() -> bytes:
    """A dark "1" drawn small and off-centre on light grey paper, as a phone would photograph it."""
    paper = np.full((120, 160), 215, np.uint8)
    paper[20:60, 100:106] = 30
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, "JPEG")
    return buffer.getvalue()


def _open(app, train_run, config=TINY):
    train_run(config)
    app.run()
    app.switch_page("pages/explore.py").run()
    _ok(app)


def test_the_scatter_shows_each_chosen_points_ellipse_when_asked(app, train_run):
    _open(app, train_run, TINY.replace(latent_dim=3))
    assert not [t for t in _scatter(app) if t.get("fill") == "toself"]  # off by default
    app.toggle(key="explore_sigma").set_value(True).run()
    _ok(app)
    outlines = [t for t in _scatter(app) if t.get("fill") == "toself"]
    labels = load_dataset("digits", seed=TINY.seed).val_labels.numpy()
    assert len(outlines) == len({*ellipses.chosen(labels), 0, 1}) >= 6  # one input per class (six), A and B
    assert [t["showlegend"] for t in outlines].count(True) == 1 and outlines[0]["name"] == "1σ of q(z|x)"
    caption = next(c.value for c in app.caption if "Each ellipse holds its input's code within 1 σ" in c.value)
    assert "projected onto the scatter's two principal axes" in caption  # three latent dimensions, drawn in two
    app.segmented_control(key="explore_sigma_n").set_value(2.0).run()
    assert [t["name"] for t in _scatter(app) if t.get("showlegend") and t.get("fill")] == ["2σ of q(z|x)"]


def test_a_photo_is_prepared_encoded_and_marked_on_the_scatter(app, train_run):
    _open(app, train_run)
    assert any("Draw a digit on the canvas" in i.value for i in app.info)
    app.file_uploader(key="explore_upload").set_value(("one.jpg", _photo(), "image/jpeg")).run()
    _ok(app)
    table = app.dataframe[0].value
    assert list(table.columns) == ["dimension", "μ", "σ"] and len(table) == 2 and (table["σ"] > 0).all()
    captions = " ".join(c.value for c in app.caption)
    assert "Your image and its reconstruction" in captions and "Prepared as scikit-learn's digits" in captions
    assert any(t.get("name") == "yours" and t["marker"]["symbol"] == "star" for t in _scatter(app))
    app.toggle(key="draw_prepare").set_value(False).run()  # as it is: the model gets a grey square
    _ok(app)
    assert "Shrunk as it is" in " ".join(c.value for c in app.caption)


def test_a_drawing_from_the_canvas_is_encoded_and_bad_pictures_are_refused_in_plain_words(app, train_run):
    _open(app, train_run)
    canvas = next(c for c in app.get("bidi_component") if c.key == "draw_canvas")
    assert json.loads(canvas.proto.json)["side"] == 280
    ink = np.full((280, 280), 255, np.uint8)
    ink[60:220, 130:150] = 0
    buffer = io.BytesIO()
    Image.fromarray(ink).save(buffer, "PNG")
    app.session_state["draw_canvas"] = {"png": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()}
    app.run()
    _ok(app)
    assert len(app.dataframe[0].value) == 2
    assert any(t.get("name") == "yours" for t in _scatter(app))
    app.session_state["draw_canvas"] = {"png": "data:image/png;base64,bm90IGEgcG5n"}
    app.run()
    assert not app.exception and any("Could not read your drawing as an image" in e.value for e in app.error)
    blank = io.BytesIO()
    Image.new("L", (280, 280), 255).save(blank, "PNG")
    app.session_state["draw_canvas"] = {"png": "data:image/png;base64," + base64.b64encode(blank.getvalue()).decode()}
    app.run()
    assert not app.exception and any("no ink found" in w.value for w in app.warning)
