"""Sharing from the app: the Train page's link to its settings, and PNGs of charts and image grids for slides."""

import json

from students import TOKEN

from pages.ui import charts
from vae_core.config import TrainConfig


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def test_the_train_page_offers_a_link_to_its_settings_that_carries_no_identity(app):
    app.run()
    app.sidebar.number_input(key="cfg_beta").set_value(4.0).run()
    _ok(app)
    (link,) = app.sidebar.get("code")
    assert link.value == "?beta=4.0"  # AppTest has no page URL: the browser shows the app's address before it
    notes = " ".join(c.value for c in app.sidebar.caption)
    assert "carries the settings only, never who you are" in notes
    assert app.session_state[TOKEN] not in link.value
    app.sidebar.number_input(key="cfg_latent_dim").set_value(8).run()
    _ok(app)
    assert [c.value for c in app.sidebar.get("code")] == ["?beta=4.0&latent_dim=8"]  # the settings of this run, not the last


def test_other_pages_leave_the_sidebar_empty_and_show_the_name_box_above_the_page(app):
    app.run()
    app.switch_page("pages/learn.py").run()
    _ok(app)
    assert not app.sidebar.children and not app.get("code")  # no grey column holding one button
    assert "Your name" in [t.label for t in app.text_input]


def test_compare_offers_each_reconstruction_grid_as_a_png_and_names_its_rows(app, train_run):
    train_run(), train_run(TrainConfig(epochs=1, hidden=[32], beta=4.0))
    app.run()
    app.switch_page("pages/compare.py").run()
    _ok(app)
    grids = [image for image in app.get("imgs") if image.proto.imgs[0].url.startswith("/media/")]
    downloads = app.get("download_button")
    assert len(downloads) == len(grids) == 2
    names = [d.proto.file_name for d in downloads]
    assert all(n.startswith("vae-lab-") and n.endswith("-reconstructions-" + n.rsplit("-", 1)[1]) for n in names)
    assert len(set(names)) == 2 and all(d.proto.deferred_file_id for d in downloads)  # made only when pressed


def test_live_charts_keep_plotlys_png_download_at_slide_size(app):
    app.run()
    _ok(app)
    for chart in app.get("bidi_component"):
        config = json.loads(chart.proto.json)["config"]
        assert "toImage" not in config["modeBarButtonsToRemove"]
        assert config["toImageButtonOptions"] == {"format": "png", "scale": 2, "filename": chart.key}
    assert charts.PLOTLY_CONFIG["toImageButtonOptions"]["scale"] == 2
