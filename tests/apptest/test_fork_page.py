"""Explore's "Open settings in Train" and "Continue / fork…" on a saved run (pages/ui/fork.py)."""

from pathlib import Path

from pages.ui import draft
from page_parts import figure
from students import student
from vae_core import checkpoints, runs
from vae_core.classroom import cards
from vae_core.config import TrainConfig

from conftest import work_of

TWO = TrainConfig(epochs=2, hidden=[32], batch_size=128)


def _explore(app):
    app.session_state["explore_scope"] = "mine"
    app.switch_page("pages/explore.py").run()
    assert not app.exception, app.exception
    return app


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_open_settings_in_train_loads_the_runs_settings(app, train_run):
    app.run()
    run = train_run(TWO.replace(beta=3.0, latent_dim=3))
    _explore(app)
    app.button(key="open_in_train").click().run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Train a VAE"
    assert draft.DRAFT in app.session_state and app.session_state[draft.DRAFT] == runs.load_run(run).config.to_dict()
    assert app.number_input(key="cfg_beta").value == 3.0


def test_a_fork_from_an_epoch_starts_on_the_train_page_and_leaves_the_parent_as_it_was(app, train_run):
    app.run()
    parent = train_run(TWO)
    before = _bytes(parent)
    _explore(app)
    assert app.selectbox(key="fork_epoch").options == ["1", "2"]  # a small run keeps every epoch
    app.selectbox(key="fork_epoch").set_value(1)
    app.number_input(key="fork_beta").set_value(4.0)
    app.number_input(key="fork_epochs").set_value(3)
    next(b for b in app.button if b.label == "Start the fork").click().run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Train a VAE"  # the fork trains live there
    job = work_of(app)
    assert job is not None and job.join(60)
    view = job.view()
    assert view.status == "finished" and [r["epoch"] for r in view.epoch_history] == [1, 2, 3]
    fork = runs.load_run(view.run_dir)
    assert fork.meta["fork"]["parent"] == parent.name and fork.meta["fork"]["epoch"] == 1
    assert fork.config == TWO.replace(beta=4.0, epochs=3) and cards.card(fork)["owner"] == student(app)
    assert checkpoints.kept(fork.path, 3) == [2, 3] and _bytes(parent) == before
    assert app.number_input(key="cfg_beta").value == 4.0  # the Train page shows the fork's settings
    app.switch_page("pages/train.py").run()  # the Train page again, now that the fork has ended
    assert not app.exception, app.exception
    marks = [note["text"] for note in figure(app, "loss_chart")["layout"]["annotations"]]
    assert "fork of epoch 1, β 1 → 4" in marks  # the loss chart marks where the fork went its own way


def test_a_fork_that_cannot_be_is_refused_in_plain_words_and_starts_nothing(app, train_run):
    app.run()
    train_run(TWO)
    _explore(app)
    app.selectbox(key="fork_epoch").set_value(2)
    app.number_input(key="fork_epochs").set_value(2)
    next(b for b in app.button if b.label == "Start the fork").click().run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == ["Not started — The fork must train past epoch 2: set its epochs above 2."]
    assert work_of(app) is None and app.title[0].value.startswith("Explore")
