"""The replay section on Explore (a saved run's, and one without a replay) and on the Train page after a run."""

import json

from page_parts import errors

from pages.ui.replay import NONE_KEPT, TITLE
from vae_core.config import TrainConfig
from vae_core.jobs import replay

TWO = TrainConfig(epochs=2, hidden=[32])


def _replay_chart(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == key).proto.spec)


def _open_in_explore(app, name: str) -> None:
    app.run()
    app.switch_page("pages/explore.py").run()
    app.selectbox(key="explore_run").set_value(name).run()
    assert not app.exception, app.exception
    assert not errors(app)


def test_explore_replays_a_saved_run_epoch_by_epoch(app, train_run):
    run = train_run(TWO)
    _open_in_explore(app, run.name)
    assert TITLE in [s.value for s in app.subheader]
    figure = _replay_chart(app, f"replay-explore-{run.name}")
    assert [f["name"] for f in figure["frames"]] == ["0", "1", "2"]
    buttons = figure["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in buttons] == ["▶ Play", "❚❚ Pause"] and buttons[0]["method"] == "animate"
    first, last = figure["frames"][0]["data"][0], figure["frames"][-1]["data"][0]
    assert first["x"] != last["x"]  # the latent points moved between epochs


def test_explore_says_a_run_without_a_replay_has_none(app, train_run):
    """A run saved before replays existed still opens, with every other section."""
    old = train_run()
    (old / replay.REPLAY).unlink()
    _open_in_explore(app, old.name)
    subheaders = [s.value for s in app.subheader]
    assert TITLE in subheaders and "Interpolation from A to B" in subheaders
    assert NONE_KEPT in [i.value for i in app.info]
    assert not [c for c in app.get("plotly_chart") if c.key.startswith("replay-")]


def test_explore_says_why_a_damaged_replay_is_not_shown(app, train_run):
    damaged = train_run()
    (damaged / replay.REPLAY).write_bytes(b"not a replay")
    _open_in_explore(app, damaged.name)
    (warning,) = [w.value for w in app.warning if w.value.startswith("The replay cannot be shown: ")]
    assert warning.startswith(f"The replay cannot be shown: {damaged.name}/{replay.REPLAY} is not a valid "
                              "safetensors file (")


def test_the_train_page_shows_the_replay_once_the_run_has_ended(app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    app.button(key="start").click().run()
    job = session_work(app)
    assert job.join(60)
    app.run()
    assert not app.exception, app.exception
    figure = _replay_chart(app, f"replay-train-{job.id}")
    assert [f["name"] for f in figure["frames"]] == ["0", "1"]
