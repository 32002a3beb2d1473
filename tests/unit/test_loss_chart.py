"""vae_core.views.loss_chart: every curve is a term the run's objective computed, named for that objective."""

import copy
import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from vae_core.classroom import cards
from vae_core.config import TrainConfig
from vae_core.data import load_dataset
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.maths.objectives import capacity_at, vae_loss
from vae_core.runs import load_run
from vae_core.train import Status, Trainer, fit
from vae_core.views import figures, loss_chart

SMALL = dict(hidden=[32], latent_dim=4, batch_size=64, epochs=2)
OBJECTIVES = {  # name -> (settings, the KL term's name in the chart)
    "β-VAE": (dict(beta=4.0), "β·KL"),
    "capacity": (dict(capacity=True, capacity_max=5.0, capacity_ramp_epochs=1.0), "γ·|KL − C|"),
    "free bits": (dict(free_bits=0.5), "β·Σⱼ max(KLⱼ, λ)"),
    "warm-up": (dict(beta_schedule="warmup", beta_warmup_epochs=1.0), "β·KL"),
    "adversarial": (dict(adv_weight=0.5), None),
    "L1": (dict(l1=1e-4), None),
    "autoencoder": (dict(mode="ae"), None),
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _drawable(fig: dict) -> go.Figure:
    """The figure as the browser gets it (strict JSON), read back through Plotly's validating Figure."""
    return go.Figure(json.loads(figures.to_json(fig), parse_constant=lambda name: pytest.fail(f"{name} in JSON")))


def _by_name(fig: go.Figure) -> dict:
    return {trace.name: trace for trace in fig.data}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_the_chart_draws_the_terms_the_loss_function_returned_on_each_step(digits, name):
    settings, term = OBJECTIVES[name]
    config = TrainConfig(**SMALL, **settings)
    trainer = Trainer(config, digits)
    rows, expected = [], []
    for x in list(trainer.batches())[:4]:
        # the loss function on the same batch, weights and noise, before the step
        model, gen = copy.deepcopy(trainer.model), torch.Generator().set_state(trainer.generator.get_state())
        raw, mu, logvar, _ = model(x, gen)
        terms = vae_loss(raw, x, mu, logvar, config, model.is_image, trainer.beta_now(),
                         capacity_at(trainer.step, config, trainer.steps_per_epoch))
        expected.append({"recon": terms.recon.item(), "kl": terms.kl.item(), "kl_term": terms.kl_term.item()})
        rows.append(trainer.train_step(x))
    fig = _drawable(loss_chart.loss_figure(rows, [], config))
    traces = _by_name(fig)
    np.testing.assert_allclose(traces["reconstruction"].y, [e["recon"] for e in expected], rtol=1e-5)
    if config.mode == "ae":
        assert [t.name for t in fig.data] == ["reconstruction", "reconstruction (val)"]  # no KL, β or ELBO
        return
    np.testing.assert_allclose(traces["KL"].y, [e["kl"] for e in expected], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traces["−ELBO = reconstruction + KL"].y, [e["recon"] + e["kl"] for e in expected],
                               rtol=1e-5)
    if term is not None:
        np.testing.assert_allclose(traces[term].y, [e["kl_term"] for e in expected], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(traces[f"objective = reconstruction + {term}"].y,
                                   [e["recon"] + e["kl_term"] for e in expected], rtol=1e-5)
    if name == "capacity":  # C on its own axis, as the step used it; β is not drawn: the objective ignores it
        assert traces["C: the KL target"].yaxis == "y2"
        np.testing.assert_allclose(traces["C: the KL target"].y,
                                   [capacity_at(s, config, trainer.steps_per_epoch) for s in range(4)])
        assert "β" not in traces
    else:
        assert traces["β"].yaxis == "y2" and list(traces["β"].y) == [r["beta_now"] for r in rows]
    if name == "adversarial":  # the generator and critic losses, on an axis of their own
        gen_trace = next(t for n, t in traces.items() if n.startswith("generator loss"))
        assert gen_trace.yaxis == traces["critic loss"].yaxis == "y3"
        assert list(gen_trace.y) == [r["adv_g"] for r in rows]
        # everything backpropagated = the objective + its weight × the generator loss
        np.testing.assert_allclose([r["loss"] for r in rows],
                                   [r["recon"] + r["kl_term"] + 0.5 * r["adv_g"] for r in rows], rtol=1e-5)
    if name == "L1":
        assert list(traces["L1 penalty (training only)"].y) == [r["l1"] for r in rows]
        np.testing.assert_allclose([r["loss"] for r in rows], [r["recon"] + r["kl_term"] + r["l1"] for r in rows],
                                   rtol=1e-5)


def test_a_plain_vae_draws_the_elbo_once_and_validation_measures_what_training_does(digits):
    """β = 1 throughout: the objective is the −ELBO, one line; validation's curves are training's quantities."""
    config = TrainConfig(**SMALL, adv_weight=0.5)
    rows, epochs = [], []
    fit(Trainer(config, digits), on_step=rows.append, on_epoch=lambda e: epochs.append(e.row))
    traces = _by_name(_drawable(loss_chart.loss_figure(rows, epochs, config)))
    assert [n for n in traces if not n.startswith(("generator", "critic", "β")) and "(val)" not in n] == \
        ["−ELBO = reconstruction + KL", "reconstruction", "KL"]
    per_epoch = rows[-1]["step"] // 2
    val = [t for t in _drawable(loss_chart.loss_figure(rows, epochs, config)).data if t.line.dash == "dash"]
    assert [list(t.x) for t in val] == [[per_epoch, 2 * per_epoch]] * 3
    assert [t.legendgroup for t in val] == ["−ELBO = reconstruction + KL", "reconstruction", "KL"]
    np.testing.assert_allclose(val[0].y, [e["val_neg_elbo"] for e in epochs])
    # the training total drawn leaves the generator loss out, as validation does: no false gap between them
    elbo = _by_name(_drawable(loss_chart.loss_figure(rows, epochs, config)))["−ELBO = reconstruction + KL"]
    assert abs(np.mean(elbo.y[-per_epoch:]) - epochs[-1]["val_neg_elbo"]) < 3.0


def test_log_scale_is_refused_with_the_curve_that_goes_below_zero():
    config = TrainConfig(dataset="moons", recon_loss="mse", mse_sigma=0.1, hidden=[16], latent_dim=2)
    steps = [{"step": 1, "recon": -1.2, "kl": 0.5, "kl_term": 0.5, "beta_now": 1.0}]
    problem = loss_chart.log_scale_problem(steps, [], config)
    assert problem and "−ELBO" in problem
    fig = loss_chart.loss_figure(steps, [], config)
    assert fig["layout"]["yaxis"]["title"]["text"] == "nats per sample (can be < 0)"  # a density can exceed 1
    positive = [{"step": 1, "recon": 30.0, "kl": 2.0, "kl_term": 2.0, "beta_now": 1.0}]
    assert loss_chart.log_scale_problem(positive, [], TrainConfig()) is None
    assert loss_chart.loss_figure(positive, [], TrainConfig())["layout"]["yaxis"]["title"]["text"] == "nats per sample"


def test_events_mark_schedule_boundaries_live_changes_and_the_end(digits):
    cyclical = TrainConfig(epochs=8, beta_schedule="cyclical", beta_cycles=4)
    assert [(e.step, e.text) for e in loss_chart.events(cyclical, 10)] == [(20, "cycle 2"), (40, "cycle 3"),
                                                                           (60, "cycle 4")]
    warm = TrainConfig(epochs=8, beta_schedule="warmup", beta_warmup_epochs=3)
    changes = ({"step": 19, "beta": 4.0, "beta_was": 1.0}, {"step": 30, "lr": 1e-4, "lr_was": 2e-3})
    marks = loss_chart.events(warm, 10, changes, "early-stopped", 50, best_epoch=3)
    assert [(e.step, e.text) for e in marks] == [(30, "warm-up ends"), (19, "β 1 → 4"), (30, "LR 0.002 → 0.0001"),
                                                 (50, "early stop (epoch 3 restored)")]
    assert [e.text for e in loss_chart.events(TrainConfig(), 10, (), "diverged", 2)] == ["diverged"]
    fig = _drawable(loss_chart.loss_figure([], [], warm, marks))
    assert [s.x0 for s in fig.layout.shapes] == [30, 19, 30, 50]
    assert [a.text for a in fig.layout.annotations] == [e.text for e in marks]


def test_a_live_change_shows_in_the_label_and_the_chart_and_a_cyclical_run_ends_on_its_last_beta(digits, tmp_path):
    """β 1 → 4, asked before the first step: marked on the chart and in the saved run's label; "β now" at the
    end is the β of the last step (it read 0: the next step's, a new cycle's)."""
    config = TrainConfig(**SMALL, beta_schedule="cyclical", beta_cycles=1)
    job = TrainingJob(config, digits, runs_dir=tmp_path, pool=SlotPool(1))
    job.set_beta(4.0)
    job.start()
    assert job.join(120) and job.view().status == Status.FINISHED, job.view().message
    view = job.view()
    assert view.live_changes == ({"step": 0, "beta": 4.0, "beta_was": 1.0},)
    assert view.beta_now == view.step_history[-1]["beta_now"] == 4.0  # the last step's β, at the cycle's top
    per_epoch = math.ceil(len(digits.train) / config.batch_size)
    marks = loss_chart.events(config, per_epoch, view.live_changes, view.status, view.step)
    assert [(m.step, m.text) for m in marks] == [(0, "β 1 → 4")]
    assert cards.label(load_run(view.run_dir)).endswith(" · β 1 → 4 at epoch 1")


def test_a_diverged_run_shows_the_step_that_blew_up_and_says_so_in_its_label(digits, tmp_path):
    config = TrainConfig(**SMALL, lr=10.0)
    job = TrainingJob(config, digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(120)
    view = job.view()
    assert view.status == Status.DIVERGED and view.step_history, view.message
    last = view.step_history[-1]
    assert not math.isfinite(last["loss"]) or last["loss"] > 1e6 * max(1.0, abs(view.step_history[0]["loss"]))
    assert cards.label(load_run(view.run_dir)).endswith("diverged before epoch 1")
