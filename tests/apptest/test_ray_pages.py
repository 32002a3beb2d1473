"""The pages through the Ray backend ($VAE_LAB_TRAINER=ray): they do not know where their runs train."""

from pathlib import Path

from page_parts import button, errors, figure
from polling import wait_until

from vae_core.train import Status


def test_train_pause_steer_finish_and_explore_through_ray(ray_cluster, app, session_work, runs_dir, monkeypatch):
    from vae_core.jobs import cluster
    monkeypatch.setattr(cluster, "WARM", 0)  # this page's backend lives on: no idle actor of it holds a CPU
    monkeypatch.setenv("VAE_LAB_TRAINER", "ray")
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(60).run()
    button(app, "start").click().run()
    job = session_work(app)
    assert wait_until(lambda: job.view().step > 0, timeout=120), job.view()
    button(app, "pause").click().run()
    assert wait_until(lambda: job.view().status == Status.PAUSED, timeout=30)
    app.number_input(key="live_beta").set_value(2.0)
    app.button(key="FormSubmitter:live-Apply to the running job").click().run()
    button(app, "resume").click().run()
    assert wait_until(lambda: job.view().beta_now == 2.0, timeout=30)
    button(app, "stop").click().run()
    assert job.join(60)
    app.run()
    assert not app.exception and not errors(app)
    view = job.view()
    assert view.status == Status.STOPPED and view.live_changes[0]["beta"] == 2.0
    assert len(figure(app, "loss_chart")["data"][0]["x"]) == len(view.step_history) > 0
    assert Path(view.run_dir).parent == runs_dir and (Path(view.run_dir) / "meta.json").is_file()  # came back
    app.switch_page("pages/explore.py").run()
    assert not app.exception
    assert app.selectbox(key="explore_run").value == "This session's run" and len(app.image) >= 4
