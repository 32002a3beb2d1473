"""The Train page in AppTest: settings become the config and the URL; Start trains and shows the results."""

import base64
import io
import threading

import numpy as np
from page_parts import button as _button
from page_parts import errors as _errors
from page_parts import figure as _figure
from polling import wait_until

from pages.ui import text
from vae_core.train import Status


def test_renders_with_the_default_settings(app):
    app.run()
    assert not app.exception and not _errors(app)
    assert app.session_state["draft"]["dataset"] == "digits" and app.session_state["draft"]["latent_dim"] == 2
    assert app.query_params == {}
    assert not _button(app, "start").disabled and _button(app, "stop").disabled
    assert app.progress[0].value == 0 and app.progress[0].text.startswith("Ready: press Start")
    assert not app.get("plotly_chart")  # the schedule previews are SVG: no Plotly before the live charts load it
    svgs = [base64.b64decode(image.proto.imgs[0].url.split(",", 1)[1]).decode() for image in app.get("image")
            if image.proto.imgs[0].url.startswith("data:image/svg+xml;base64,")]
    assert [svg[svg.index("<title>") + 7:svg.index("</title>")] for svg in svgs] == [
        "β over the training epochs", "learning rate over the training epochs"]
    assert [c.key for c in app.get("bidi_component")] == ["loss_chart", "latent", "kl"]  # live charts
    assert _figure(app, "loss_chart")["data"][0]["x"] == []


def test_beta_input_changes_the_config_and_the_url(app):
    app.run()
    app.sidebar.number_input(key="cfg_beta").set_value(4.0).run()
    assert not app.exception and not _errors(app)
    assert app.session_state["draft"]["beta"] == 4.0
    assert app.query_params == {"beta": "4.0"}
    app.sidebar.selectbox(key="cfg_beta_schedule").set_value("warmup").run()
    assert app.sidebar.number_input(key="cfg_beta_warmup_epochs").value == 5.0
    assert app.query_params == {"beta": "4.0", "beta_schedule": "warmup"}


def test_a_shared_link_opens_with_its_settings(app):
    app.query_params.update({"beta": "2.5", "latent_dim": "8", "hidden": "64,32", "batch_norm": "true"})
    app.run()
    assert not app.exception and not app.warning
    assert app.sidebar.number_input(key="cfg_beta").value == 2.5
    assert app.sidebar.number_input(key="cfg_latent_dim").value == 8
    assert app.sidebar.text_input(key="cfg_hidden").value == "64, 32"
    assert app.sidebar.checkbox(key="cfg_batch_norm").value is True
    assert app.query_params == {"beta": "2.5", "latent_dim": "8", "hidden": "64,32", "batch_norm": "true"}


def test_bad_link_values_are_named_and_fall_back_to_defaults(app):
    app.query_params.update({"beta": "lots", "latent_dim": "999", "activation": "sigmoid", "lr": "0.01",
                             "dataset": "../../etc/passwd", "nonsense": "1"})
    app.run()
    assert not app.exception and not _errors(app)
    warnings = " ".join(w.value for w in app.warning)
    for name in ("beta", "latent_dim", "activation", "dataset"):
        assert name in warnings
    draft = app.session_state["draft"]
    assert (draft["beta"], draft["latent_dim"], draft["activation"], draft["dataset"]) == (1.0, 2, "relu", "digits")
    assert draft["lr"] == 0.01


def test_an_invalid_setting_is_an_error_naming_the_field(app):
    app.run()
    app.sidebar.number_input(key="cfg_beta").set_value(5000.0).run()
    assert not app.exception
    assert any("beta" in e for e in _errors(app))
    assert _button(app, "start").disabled
    app.sidebar.text_input(key="cfg_hidden").set_value("256, lots").run()
    assert any(e.startswith("Invalid setting — hidden") for e in _errors(app))


def test_points_datasets_switch_to_a_loss_that_fits_them(app):
    app.run()
    app.sidebar.selectbox(key="cfg_dataset").set_value("moons").run()
    assert not app.exception and not _errors(app)
    assert app.session_state["draft"]["recon_loss"] == "mse"
    assert app.query_params == {"dataset": "moons", "recon_loss": "mse"}


def test_start_trains_and_shows_the_results(any_backend, app, session_work, runs_dir):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(2).run()
    _button(app, "start").click().run()
    assert not app.exception
    job = session_work(app)
    assert job is not None and job.join(60)
    app.run()
    assert not app.exception and not _errors(app)
    assert job.view().status == Status.FINISHED and len(job.view().epoch_history) == 2
    assert any(s.value == "Finished." for s in app.success)
    assert app.progress[0].value == 100 and app.progress[0].text.startswith("Epoch 2 of 2 · step")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Validation −ELBO"] != "–" and float(metrics["Learning rate"]) == 0.002
    assert len(app.image) >= 2  # originals against reconstructions, and prior samples
    losses = _figure(app, "loss_chart")["data"]
    assert losses[0]["name"] == "−ELBO = reconstruction + KL" and losses[1]["name"] == f"{losses[0]['name']} (val)"
    assert len(losses[0]["x"]) == job.view().step and len(losses[1]["x"]) == 2  # every step; 2 validations
    assert _figure(app, "loss_chart")["layout"]["yaxis"]["type"] == "linear"
    app.toggle(key="loss_log").set_value(True).run()  # the loss chart's log scale
    logged = _figure(app, "loss_chart")
    assert not app.exception and logged["layout"]["yaxis"]["type"] == "log"
    assert logged["data"][0]["y"] == losses[0]["y"]  # the same curves, drawn on a log axis
    app.toggle(key="loss_log").set_value(False).run()
    assert _figure(app, "loss_chart")["layout"]["yaxis"]["type"] == "linear"
    assert len(_figure(app, "latent")["data"]) == 10  # one trace per digit
    assert [d.label for d in app.get("download_button")  # PNG: an image grid's; train_vae: "Show the code"
            if d.label != "PNG" and "train_vae" not in d.label] == [
        "Download the run (zip)", "Download metrics (CSV)"]
    assert len(list(runs_dir.iterdir())) == 1
    assert _button(app, "start").label == "Start" and _button(app, "reset").disabled is False
    zoom_keys = {key: _figure(app, key)["layout"]["uirevision"] for key in ("loss_chart", "latent")}
    _button(app, "start").click().run()  # a new run: the charts drop the last run's zoom
    assert all(_figure(app, key)["layout"]["uirevision"] != old for key, old in zoom_keys.items())
    assert session_work(app).join(60)
    app.run()
    _button(app, "reset").click().run()  # an ended run is cleared at once
    assert session_work(app) is None


def test_restart_and_reset_ask_first_while_a_run_trains(app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(200).run()
    assert _button(app, "start").proto.type == "primary" and _button(app, "pause").proto.type == "secondary"
    _button(app, "start").click().run()
    job = session_work(app)
    assert wait_until(lambda: job.view().step > 0)
    app.run()
    start, pause, stop = _button(app, "start"), _button(app, "pause"), _button(app, "stop")
    assert start.label == "Restart" and start.proto.type == "secondary"  # Pause and Stop stand out instead
    assert pause.proto.type == "primary" and stop.proto.type == "primary"
    start.click().run()
    assert session_work(app) is job and job.alive  # nothing happened yet
    (warning,) = [w.value for w in app.warning if "still training" in w.value]
    assert "Restart stops it and starts a new run" in warning
    _button(app, "confirm_no").click().run()
    assert session_work(app) is job and job.alive and not [w for w in app.warning if "still training" in w.value]
    _button(app, "reset").click().run()
    assert session_work(app) is job and job.alive
    assert any("Reset stops it and clears this view" in w.value for w in app.warning)
    _button(app, "confirm_yes").click().run()
    assert session_work(app) is None and job.join(30) and job.view().status == Status.STOPPED
    _button(app, "start").click().run()
    second = session_work(app)
    assert wait_until(lambda: second.view().step > 0)
    app.run()
    _button(app, "start").click().run()
    _button(app, "confirm_yes").click().run()
    third = session_work(app)
    assert third is not second and second.join(30) and second.view().status == Status.STOPPED
    third.stop()
    assert third.join(30)


def test_pause_resume_stop_and_live_lr_and_beta_control_the_job(any_backend, app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(200).run()
    _button(app, "start").click().run()
    job = session_work(app)
    assert wait_until(lambda: job.view().step > 0)
    app.run()
    _button(app, "pause").click().run()
    assert wait_until(lambda: job.view().status == "paused")
    app.run()
    assert not _button(app, "resume").disabled and _button(app, "pause").disabled
    # Changed while paused: both wait for the next step, which Resume lets happen.
    app.number_input(key="live_lr").set_value(0.001)
    app.number_input(key="live_beta").set_value(3.0)
    app.button(key="FormSubmitter:live-Apply to the running job").click().run()
    assert not app.exception and job.view().beta_now == 1.0 and not job.view().live_changes
    _button(app, "resume").click().run()
    assert wait_until(lambda: job.view().status == "running" and job.view().live_changes)
    view = job.view()
    assert view.live_changes[0]["lr"] == 0.001 and view.live_changes[0]["beta"] == 3.0
    assert (view.lr, view.beta_now) == (0.001, 3.0)
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Learning rate"], metrics["β now"]) == ("1e-3", "3")
    assert _button(app, "resume").disabled and not _button(app, "pause").disabled
    # Changed while it runs: applied at the next step.
    app.number_input(key="live_beta").set_value(0.5)
    app.button(key="FormSubmitter:live-Apply to the running job").click().run()
    assert wait_until(lambda: len(job.view().live_changes) >= 2 and job.view().beta_now == 0.5)
    later = {k: v for change in job.view().live_changes[1:] for k, v in change.items() if k in ("lr", "beta")}
    assert later == {"lr": 0.001, "beta": 0.5}  # the form sends both (they may land on two steps)
    assert job.view().status == "running"
    app.run()
    assert {m.label: m.value for m in app.metric}["β now"] == "0.5"
    _button(app, "stop").click().run()
    assert job.join(10) and job.view().status == "stopped"


def _npz(count: int = 12, side: int = 10) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, images=(rng.random((count, side, side)) * 255).astype(np.uint8),
             labels=np.arange(count) % 2)
    return buffer.getvalue()


def test_an_uploaded_npz_becomes_the_dataset(app):
    app.run()
    app.file_uploader(key="upload_file").set_value(("blobs.npz", _npz(), "application/octet-stream")).run()
    next(b for b in app.button if b.label == "Use this data").click().run()
    assert not app.exception and not _errors(app)
    assert app.session_state["draft"]["dataset"] == "upload:blobs.npz"
    assert any(text.plain("blobs.npz (uploaded)") in m.value for m in app.markdown)  # an upload's name is text


def test_a_bad_upload_is_explained_plainly(app):
    app.run()
    app.file_uploader(key="upload_file").set_value(("broken.npz", b"not a zip at all", "application/octet-stream"))
    app.run()
    next(b for b in app.button if b.label == "Use this data").click().run()
    assert not app.exception
    assert any(e.startswith("Could not use broken.npz: broken.npz: ") for e in _errors(app))
    assert app.session_state["draft"]["dataset"] == "digits"


def test_a_failed_run_is_explained_in_plain_words(any_backend, app, session_work):
    app.query_params.update({"optimizer": "sgd", "lr": "1000", "epochs": "2"})
    app.run()
    _button(app, "start").click().run()
    assert session_work(app).join(60)
    app.run()
    assert not app.exception
    assert any("the learning rate (1000) is too high" in e for e in _errors(app))
    assert app.progress[0].text.startswith("Epoch 1 of 2")


def test_a_run_that_is_still_building_its_model_says_so_and_can_be_paused(app, session_work, monkeypatch):
    """A first run on a fresh server can take a second or two to build its model: no "step 0 of 0". Pause
    then holds it before its first step."""
    import vae_core.jobs.job

    building, built, real = threading.Event(), threading.Event(), vae_core.jobs.job.Trainer

    def slow_trainer(*args, **kwargs):
        building.set()
        built.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(vae_core.jobs.job, "Trainer", slow_trainer)
    app.run()
    _button(app, "start").click().run()
    job = session_work(app)
    try:
        assert building.wait(10) and job.view().status == "queued" and job.view().total_steps == 0  # a slot, no model
        assert app.progress[0].text == "Loading the data and building the model…", app.progress[0].text
        _button(app, "pause").click().run()
        assert app.progress[0].text == ("Loading the data and building the model… Paused: it will not train until "
                                        "you press Resume.")
        assert not _button(app, "resume").disabled and _button(app, "pause").disabled
        built.set()
        assert wait_until(lambda: job.view().status == "paused")  # held before its first step
        assert job.view().step == 0
        _button(app, "resume").click().run()
        assert wait_until(lambda: job.view().step > 0)
    finally:
        built.set()
        job.stop()
        job.join(10)


def test_a_paused_run_gives_its_slot_away_and_on_resume_says_it_waits_for_one(app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(200).run()
    _button(app, "start").click().run()
    job = session_work(app)
    holders = []
    try:
        assert wait_until(lambda: job.view().step > 0)
        _button(app, "pause").click().run()
        assert wait_until(lambda: job.view().status == "paused")
        while job.pool.running < job.pool.limit:  # other sessions' runs take every slot
            holders.append(object())
            assert job.pool.acquire(holders[-1], threading.Event())
        _button(app, "resume").click().run()
        assert wait_until(lambda: job.view().status == "queued")
        app.run()
        assert app.progress[0].text.endswith(" left · waiting for a free training slot: number 1 in the queue"), \
            app.progress[0].text
        assert not _button(app, "pause").disabled and _button(app, "resume").disabled
    finally:
        for holder in holders:
            job.pool.release(holder)
    assert wait_until(lambda: job.view().status == "running")
    job.stop()
    assert job.join(10)


def test_a_pace_that_changes_during_the_page_run_does_not_rerun_the_page_again(app, session_work, monkeypatch):
    """Sessions starting at once change the pace between the page's own reading of it and the live view's:
    the page must still draw the run, not rerun itself again and again."""
    from vae_core.views import pacing

    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(200).run()
    calls = []
    monkeypatch.setattr(pacing, "redraw_seconds", lambda live, cost=None: calls.append(1) or 0.6 + len(calls))
    _button(app, "start").click().run()
    job = session_work(app)
    try:
        assert not app.exception and job is not None and job.alive
        assert wait_until(lambda: job.view().status == "running")  # its model built (the page waits 0.6 s at most)
        app.run()
        assert app.progress[0].text.startswith("Epoch"), app.progress[0].text  # the run is drawn
        assert "redrawn every" in app.progress[0].text  # at the pace the page run chose
    finally:
        job.stop()
        job.join(10)


def test_the_sample_quality_row_fills_in_once_an_epoch_has_ended(any_backend, app, session_work):
    app.run()
    metrics = {m.label: m for m in app.metric}
    labels = ("Sample sharpness", "Sample diversity", "Distance to nearest training example")
    assert all(metrics[label].value == "–" for label in labels)  # the same row before a run
    assert "real digits" in metrics["Sample diversity"].help
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    _button(app, "start").click().run()
    assert session_work(app).join(60)
    app.run()
    metrics = {m.label: m for m in app.metric}
    assert not app.exception
    sharp, diverse = (float(metrics[label].value.removesuffix(" × real")) for label in labels[:2])
    assert 0 < sharp < 2 and 0 < diverse < 2
    nearest = metrics["Distance to nearest training example"]
    assert 0 < float(nearest.value) < 1 and "against 0.1" in nearest.help  # real digits lie ≈ 0.135 from theirs
