"""The Train page's "Show the code": the script of the current settings, changing with them, and its download."""

from page_parts import errors as _errors


def _script(app) -> str:
    (code,) = [c.value for c in app.code if c.value.startswith('"""Train a VAE on')]
    return code


def _download(app):
    (button,) = [d for d in app.get("download_button") if "train_vae" in d.label]
    return button


def test_the_code_follows_the_settings_and_downloads(app):
    app.run()
    assert not app.exception and not _errors(app)
    script = _script(app)
    assert "EPOCHS = 30" in script and "8×8 digits" in script and "recon + 1.0 * kl" in script
    assert "import vae_core" not in script and "from vae_core" not in script
    button = _download(app)
    assert button.label == "Download train_vae.py"
    assert button.proto.deferred_file_id and button.proto.ignore_rerun  # built on click; no rerun of a live view
    app.sidebar.number_input(key="cfg_beta").set_value(4.0).run()
    assert "recon + 4.0 * kl" in _script(app) and "recon + 1.0 * kl" not in _script(app)
    app.sidebar.selectbox(key="cfg_beta_schedule").set_value("warmup").run()
    assert "KL warm-up" in _script(app) and "beta_at(step)" in _script(app)


def test_a_generated_set_downloads_with_its_data(app):
    app.query_params.update({"dataset": "moons", "recon_loss": "mse"})
    app.run()
    assert not app.exception and not _errors(app)
    assert "data.npz" in _script(app) and "2-D points" in _script(app)
    assert _download(app).label == "Download train_vae.zip"
