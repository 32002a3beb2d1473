"""Presenter mode: the Train page for a projector (no settings, larger type) with slow motion that reaches the job."""

import json

from page_parts import button
from polling import wait_until

from pages.ui import charts, presenter


def _html(app) -> str:
    return "".join(element.proto.body for element in app.get("html"))


def _chart_font(app) -> int | None:
    """The loss chart's font size, as the page sends it (None: Plotly's default)."""
    chart = next(e for e in app.get("bidi_component") if e.proto.id.endswith("-loss_chart"))
    figure = json.loads(json.loads(chart.proto.json)["figure"])
    return figure["layout"].get("font", {}).get("size")


def test_presenter_mode_hides_the_settings_enlarges_the_type_and_stays_in_the_link(app):
    app.run()
    assert app.sidebar.number_input(key="cfg_beta") is not None and "font-size" not in _html(app)
    app.toggle(key="presenter_toggle").set_value(True).run()
    assert not app.exception
    assert not app.sidebar.number_input and not app.sidebar.selectbox  # no settings drawn
    assert presenter.CSS in _html(app)  # the sidebar hidden, the type larger
    assert "font-size: 22px" in presenter.CSS and '[data-testid="stSidebar"]' in presenter.CSS
    assert _chart_font(app) == charts.PRESENTER_FONT  # the charts' own text too
    assert app.query_params["present"] == "1"
    assert button(app, "start") is not None and not button(app, "start").disabled  # the run can still start
    app.switch_page("pages/learn.py").run()  # kept while another page shows
    app.switch_page("pages/train.py").run()
    assert app.toggle(key="presenter_toggle").value and not app.sidebar.number_input
    app.toggle(key="presenter_toggle").set_value(False).run()
    assert app.sidebar.number_input(key="cfg_beta") is not None and "present" not in app.query_params
    assert _chart_font(app) != charts.PRESENTER_FONT


def test_a_link_with_present_1_opens_in_presenter_mode_and_keeps_its_settings(app):
    app.query_params.update({"present": "1", "beta": "4"})
    app.run()
    assert not app.exception and not app.sidebar.number_input and presenter.CSS in _html(app)
    assert app.session_state["draft"]["beta"] == 4.0
    assert dict(app.query_params) == {"present": "1", "beta": "4.0"}


def test_slow_motion_reaches_the_running_job_and_back_to_full_speed(any_backend, app, session_work):
    app.query_params["present"] = "1"
    app.run()
    app.select_slider(key="presenter_slider").set_value(0.5).run()
    button(app, "start").click().run()
    job = session_work(app)
    assert wait_until(lambda: job.view().pace == 0.5 and job.view().step > 0)  # through the worker process too
    app.run()
    assert "slow motion, 0.5 s a step" in app.get("progress")[0].proto.text
    app.select_slider(key="presenter_slider").set_value(0.0).run()
    assert wait_until(lambda: job.view().pace == 0.0)
    app.select_slider(key="presenter_slider").set_value(1.0).run()
    assert wait_until(lambda: job.view().pace == 1.0)
    app.toggle(key="presenter_toggle").set_value(False).run()  # leaving presenter mode leaves slow motion too
    assert wait_until(lambda: job.view().pace == 0.0)
    button(app, "stop").click().run()
    assert job.join(30)
