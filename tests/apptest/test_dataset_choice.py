"""The Train page's dataset menu: which sets are here, how to get one that is not, no other dataset's results
under the one chosen, and each dataset's own settings, kept as the user left them."""

import gzip
import socket
from pathlib import Path

import numpy as np
import pytest
from page_parts import button as _button
from page_parts import errors as _errors
from page_parts import figure as _figure
from streamlit.testing.v1 import AppTest

from vae_core.data import availability, idx

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def no_mnist(no_idx_files):
    return no_idx_files


def _choose(app, name):
    app.sidebar.selectbox(key="cfg_dataset").set_value(name).run()
    assert not app.exception


def _shown(app) -> str:
    return " ".join(e.value for kind in ("warning", "info", "error", "success", "markdown", "caption")
                    for e in getattr(app, kind))


def test_the_menu_says_which_sets_are_not_installed(no_mnist, app):
    app.run()
    options = app.sidebar.selectbox(key="cfg_dataset").options
    assert options[:3] == ["Digits (8×8)", "MNIST (28×28) · not installed", "Fashion-MNIST (28×28) · not installed"]
    assert "Shapes (32×32)" in options and "Two moons (2-D)" in options


def test_the_menu_says_download_on_first_use_when_the_mirror_answers(no_mnist, app, monkeypatch):
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        monkeypatch.setenv("VAE_LAB_DOWNLOAD_URL", f"http://127.0.0.1:{listening.getsockname()[1]}/")
        monkeypatch.setattr(availability, "PROBE_WAIT_S", 60.0)  # wait for the probe's answer: read, not timed
        app.run()
    assert app.sidebar.selectbox(key="cfg_dataset").options[1] == "MNIST (28×28) · downloads on first use"


def test_an_absent_set_explains_how_to_get_it_in_plain_words(no_mnist, app):
    app.run()
    _choose(app, "fashion-mnist")
    (box,) = [w.value for w in app.warning if "not installed here" in w.value]
    assert "sudo apt-get install dataset-fashion-mnist" in box
    assert f"`{no_mnist / 'data' / 'fashion-mnist'}`" in box and "t10k-images-idx3-ubyte.gz" in box
    assert "Upload the four files" in box
    assert not _errors(app)
    assert not any(word in _shown(app) for word in ("Errno", "VAE_LAB_DATA", "environment variable",
                                                      "data directory"))
    assert _button(app, "idx_install").disabled  # until files are chosen
    assert _button(app, "start").disabled
    _choose(app, "mnist")
    (box,) = [w.value for w in app.warning if "not installed here" in w.value]
    assert "apt-get" not in box and f"`{no_mnist / 'data' / 'mnist'}`" in box


def test_another_datasets_run_is_not_shown_under_the_one_chosen(no_mnist, app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    _button(app, "start").click().run()
    job = session_work(app)
    assert job.join(60)
    app.run()
    assert len(_figure(app, "loss_chart")["data"][0]["x"]) > 0 and app.get("download_button")
    _choose(app, "mnist")
    (note,) = [i.value for i in app.info if "is not shown" in i.value]
    assert "Digits" in note and "MNIST" in note and "Explore" in note
    assert _figure(app, "loss_chart")["data"][0]["x"] == []  # the layout, empty: no digits losses under MNIST
    files = [d for d in app.get("download_button") if d.label != "PNG"]  # PNG: an image grid's
    assert not files and not app.success  # nor its files, nor its "Finished."
    assert app.progress[0].value == 0
    _choose(app, "shapes")  # a set that is here: its empty layout, the digits run still elsewhere
    assert [i for i in app.info if "is not shown" in i.value]
    assert _figure(app, "loss_chart")["data"][0]["x"] == []
    _choose(app, "digits")  # back: the run is shown again
    assert not [i for i in app.info if "is not shown" in i.value]
    assert len(_figure(app, "loss_chart")["data"][0]["x"]) > 0


def test_switching_dataset_says_what_changed_and_switching_back_restores(no_mnist, app):
    app.run()
    _choose(app, "shapes")
    app.sidebar.radio(key="cfg_architecture").set_value("conv").run()
    app.sidebar.number_input(key="cfg_beta").set_value(4.0).run()
    _choose(app, "moons")
    (note,) = [i.value for i in app.sidebar.info]
    assert note.startswith("**Two moons") and "loss bce → mse" in note and "architecture conv → mlp" in note
    assert "recommended for this dataset" in note
    assert not app.toast and not _errors(app)
    draft = app.session_state["draft"]
    assert (draft["recon_loss"], draft["architecture"], draft["beta"]) == ("mse", "mlp", 1.0)
    _choose(app, "shapes")
    (note,) = [i.value for i in app.sidebar.info]
    assert "as you left them" in note and "architecture mlp → conv" in note
    assert app.sidebar.radio(key="cfg_architecture").value == "conv"
    assert app.sidebar.number_input(key="cfg_beta").value == 4.0
    assert app.session_state["draft"]["recon_loss"] == "bce"
    _choose(app, "digits")  # digits was never changed: its own settings, not the last dataset's
    draft = app.session_state["draft"]
    assert (draft["architecture"], draft["recon_loss"], draft["beta"]) == ("mlp", "bce", 1.0)


def test_two_students_clicking_in_different_orders_get_the_same_settings(no_mnist, app, runs_dir):
    other = AppTest.from_file(str(APP), default_timeout=30)
    app.run()
    other.run()
    for name in ("moons", "shapes", "circles", "digits"):
        _choose(app, name)
    for name in ("circles", "digits", "shapes", "moons", "digits"):
        _choose(other, name)
    assert app.session_state["draft"] == other.session_state["draft"]
    for name in ("shapes", "moons"):
        _choose(app, name)
        _choose(other, name)
        assert app.session_state["draft"] == other.session_state["draft"]


def test_uploading_the_idx_files_through_the_page_installs_the_set(no_mnist, app):
    def idx_blob(array):
        magic = (0x803 if array.ndim == 3 else 0x801).to_bytes(4, "big")
        return gzip.compress(magic + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes())

    rng = np.random.default_rng(0)
    files = [(idx.FILES[("t10k", "images")] + ".gz", idx_blob(rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)),
              "application/gzip"),
             (idx.FILES[("t10k", "labels")] + ".gz", idx_blob(rng.integers(0, 10, 30, dtype=np.uint8)), "application/gzip")]
    app.run()
    _choose(app, "mnist")
    app.file_uploader(key="idx_files_mnist").set_value(files[:1]).run()
    _button(app, "idx_install").click().run()
    assert any("missing t10k-labels-idx1-ubyte" in e for e in _errors(app))
    assert _button(app, "start").disabled
    app.file_uploader(key="idx_files_mnist").set_value(files).run()
    _button(app, "idx_install").click().run()
    assert not app.exception and not _errors(app)
    assert any("installed in" in s.value and str(no_mnist / "data" / "mnist") in s.value for s in app.success)
    assert app.sidebar.selectbox(key="cfg_dataset").options[1] == "MNIST (28×28)"
    assert not [w for w in app.warning if "not installed here" in w.value]
    assert not _button(app, "start").disabled


def test_in_a_class_only_the_teacher_may_install_a_set_for_the_server(no_mnist, app, monkeypatch):
    """Files uploaded there become everyone's MNIST: with a class (a teacher key), a student sees why not."""
    monkeypatch.setenv("VAE_LAB_TEACHER_KEY", "a-key")
    app.run()
    _choose(app, "mnist")
    assert [u.key for u in app.get("file_uploader")] == ["upload_file"]  # their own upload only
    assert "only your teacher" in _shown(app)
