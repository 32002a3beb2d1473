"""Sharing from the app: the Train page's link to its settings, and PNGs of charts and image grids for slides."""

import json
from urllib.parse import parse_qs

from students import TOKEN

from pages.ui import charts
from vae_core.config import TrainConfig


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def test_the_train_page_offers_a_link_to_its_settings_that_carries_no_identity(app):
    app.query_params["beta"], app.query_params["latent_dim"] = "4", "8"  # a shared link, opened
    app.run()
    _ok(app)
    (link,) = app.sidebar.get("code")
    assert link.value.startswith("?")  # AppTest has no page URL: a browser shows the app's address before it
    assert parse_qs(link.value[1:]) == {"beta": ["4.0"], "latent_dim": ["8"]}
    notes = " ".join(c.value for c in app.sidebar.caption)
    assert "carries the settings only, never who you are" in notes
    assert app.session_state[TOKEN] not in link.value


def test_compare_offers_each_image_grid_as_a_png(app, train_run):
    train_run(), train_run(TrainConfig(epochs=1, hidden=[32], beta=4.0))
    app.run()
    app.switch_page("pages/compare.py").run()
    _ok(app)
    downloads = app.get("download_button")
    assert len(downloads) == len(app.image) == 4  # each run's reconstructions and samples
    assert len({d.proto.id for d in downloads}) == 4  # two grids of a page never share a button's identity
    assert all(d.proto.deferred_file_id for d in downloads)  # the PNG is made only when the button is pressed
    assert all(d.proto.ignore_rerun for d in downloads)  # pressing it does not rerun a live view


def test_live_charts_keep_plotlys_png_download_at_slide_size(app):
    app.run()
    _ok(app)
    for chart in app.get("bidi_component"):
        config = json.loads(chart.proto.json)["config"]
        assert "toImage" not in config["modeBarButtonsToRemove"]
        assert config["toImageButtonOptions"] == {"format": "png", "scale": 2, "filename": chart.key}
    assert charts.PLOTLY_CONFIG["toImageButtonOptions"]["scale"] == 2
