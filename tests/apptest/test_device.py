"""The Train page's Device select (Model settings) and the device its progress line names."""

import pytest
from page_parts import button as _button
from page_parts import errors as _errors

from vae_core import devices

NO_GPU = devices.available() == ["cpu"]
pytestmark = pytest.mark.skipif(not NO_GPU, reason="these read the page of a server without a GPU")


def _captions(app) -> str:
    return " ".join(c.value for c in app.sidebar.caption)


def test_the_device_select_offers_auto_and_this_servers_devices(app):
    app.run()
    select = app.sidebar.selectbox(key="cfg_device")
    assert select.value == "auto" and select.options == ["auto (the CPU here)", "cpu"]
    assert "This server has no GPU (CUDA or Apple's MPS): runs train on the CPU." in _captions(app)
    select.set_value("cpu").run()
    assert not app.exception and not _errors(app)
    assert app.session_state["draft"]["device"] == "cpu" and app.query_params == {"device": "cpu"}


def test_a_link_asking_for_a_gpu_this_server_lacks_falls_back_to_auto(app):
    app.query_params.update({"device": "cuda", "beta": "2.0"})
    app.run()
    assert not app.exception and not _errors(app)
    assert "These settings asked for cuda, but this" in _captions(app) and "auto is used instead" in _captions(app)
    assert app.sidebar.selectbox(key="cfg_device").value == "auto"
    assert app.session_state["draft"]["device"] == "auto" and app.query_params == {"beta": "2.0"}


def test_the_progress_line_says_where_the_run_trains(any_backend, app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    app.sidebar.text_input(key="cfg_hidden").set_value("16").run()
    _button(app, "start").click().run()
    job = session_work(app)
    assert job is not None and job.join(60)
    app.run()
    assert not app.exception and not _errors(app)
    assert job.view().device == "the CPU"
    text = app.progress[0].text
    assert text.startswith("Epoch 1 of 1 · step ") and " · on the CPU · took " in text, text
