"""The Train page says what the run's objective makes irrelevant, and when a code has collapsed."""

import base64
import dataclasses

from page_parts import button as _button
from page_parts import errors as _errors
from page_parts import figure as _figure
from polling import wait_until

from vae_core.jobs.snapshots import SnapshotMaker
from vae_core.maths.models import build_model
from vae_core.train import Status


def test_a_collapsed_posterior_is_warned_about_with_its_remedies(app, session_work):
    """β = 20 on 8 latent units collapses digits within 2 epochs (KL about 0.0003 nats, no unit active;
    seeds 0-2 measured, a quarter of a second each); the warning speaks from epoch 3 (vae_core.maths.collapse)."""
    app.query_params.update({"beta": "20", "latent_dim": "8", "epochs": "3"})
    app.run()
    assert not app.exception and not app.warning  # no run, no warning
    _button(app, "start").click().run()
    job = session_work(app)
    assert job.join(60)
    app.run()
    assert not app.exception and not _errors(app)
    view = job.view()
    assert view.status == Status.FINISHED and view.snapshot.active_units == 0
    (warning,) = [w.value for w in app.warning if "Posterior collapse" in w.value]
    assert "no latent unit of 8 is informative" in warning and "the decoder ignores z" in warning
    assert "0 of 8 units informative" in _figure(app, "kl")["layout"]["title"]["text"]
    for remedy in ("a lower β", "a β warm-up (β schedule → warmup)", "free bits", "the capacity objective",
                   "a weaker decoder"):
        assert remedy in warning


def test_no_collapse_warning_from_the_untrained_models_snapshot(app, session_work, digits):
    """The live view can still hold the first snapshot, of the untrained model (no unit active), after an epoch
    of training: a snapshot is judged only once its own epoch is late enough to tell."""
    app.query_params.update({"epochs": "15"})  # KL about 2 nats by then
    app.run()
    _button(app, "start").click().run()
    job = session_work(app)
    assert job.join(60)
    view = job.view()
    untrained = SnapshotMaker(digits.val, digits.val_labels, job.config.latent_dim, 0).take(
        build_model(job.config, digits.sample_shape), 0, 0)
    assert untrained.active_units == 0 and view.step_history[-1]["kl"] > 0.5
    job.view = lambda: dataclasses.replace(view, snapshot=untrained)
    app.run()
    assert not app.exception and not [w for w in app.warning if "Posterior collapse" in w.value]


def test_no_collapse_warning_in_the_early_epochs_of_a_healthy_run(app, session_work):
    """A plain run's code carries under one bit for its first few epochs (measured: until epoch 5 to 7 of 30),
    as a collapsed one does: the warning waits for half the run. Stopped at epoch 3, it has not spoken."""
    app.query_params.update({"epochs": "30"})
    app.run()
    _button(app, "start").click().run()
    job = session_work(app)
    assert wait_until(lambda: (snap := job.view().snapshot) is not None and snap.epoch >= 3, timeout=60)
    job.stop()
    assert job.join(60)
    app.run()
    assert 3 <= job.view().snapshot.epoch < 15 and job.view().status == Status.STOPPED
    assert not app.exception and not [w for w in app.warning if "Posterior collapse" in w.value]


def _captions(at) -> list[str]:
    return [c.value for c in at.sidebar.caption]


def test_controls_that_do_nothing_are_hidden_with_the_reason_and_their_values_kept(app):
    app.run()
    assert app.sidebar.number_input(key="cfg_beta").value == 1.0
    keys = {w.key for w in app.sidebar.number_input}
    assert "cfg_mse_sigma" not in keys and "cfg_momentum" not in keys and "cfg_capacity_gamma" not in keys
    assert "Momentum: not used: Adam keeps its own (β₁ = 0.9)." in _captions(app)
    app.sidebar.number_input(key="cfg_beta").set_value(4.0).run()
    app.sidebar.checkbox(key="cfg_capacity").check().run()
    keys = {w.key for w in app.sidebar.number_input}
    assert "cfg_beta" not in keys and "cfg_free_bits" not in keys and "cfg_capacity_gamma" in keys
    assert any(c.startswith("β, its schedule and free bits: not used: the capacity objective") for c in _captions(app))
    previews = [base64.b64decode(image.proto.imgs[0].url.split(",", 1)[1]).decode() for image in app.get("image")
                if image.proto.imgs[0].url.startswith("data:image/svg+xml;base64,")]
    assert ["<title>learning rate" in svg for svg in previews] == [True]  # no β preview: β is not used
    app.sidebar.checkbox(key="cfg_capacity").uncheck().run()
    assert app.sidebar.number_input(key="cfg_beta").value == 4.0  # β comes back as it was
    app.sidebar.radio(key="cfg_mode").set_value("ae").run()
    assert not app.exception and "cfg_beta" not in {w.key for w in app.sidebar.number_input}
    assert "cfg_capacity" not in {w.key for w in app.sidebar.checkbox}
    assert any("an autoencoder has no KL term" in c for c in _captions(app))
    assert app.session_state["draft"]["beta"] == 4.0


def test_flips_on_digits_show_only_when_the_user_insists(app):
    app.run()
    app.sidebar.checkbox(key="cfg_augment").check().run()
    assert "cfg_aug_flip" not in {w.key for w in app.sidebar.checkbox}
    assert "Horizontal flips: off for digits: a mirrored digit is no digit." in _captions(app)
    app.sidebar.button(key="insist_aug_flip").click().run()
    app.sidebar.checkbox(key="cfg_aug_flip").check().run()
    assert not app.exception and app.session_state["draft"]["aug_flip"] is True
