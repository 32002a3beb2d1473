"""vae_core.views.run_points: a sweep's end points in the rate–distortion plane, and weight histograms."""

import numpy as np
import pytest

from vae_core.config import TrainConfig
from vae_core.maths.models import build_model
from vae_core.views import run_points


def test_one_labelled_point_per_run_at_its_last_epoch_joined_in_order_of_rate():
    runs = {"latent 32": {"val_kl": 17.0, "val_recon": -25.0}, "latent 2": {"val_kl": 6.5, "val_recon": 24.4},
            "latent 8": {"val_kl": 13.9, "val_recon": -33.3}, "stopped at once": {"epoch": 0},
            "<b>NaN</b>": {"val_kl": float("nan"), "val_recon": 1.0}}
    figure = run_points.rate_distortion_points_figure(runs)
    line, *points = figure["data"]
    assert line["x"] == [6.5, 13.9, 17.0] and line["y"] == [24.4, -33.3, -25.0]  # sorted by rate
    assert [p["text"] for p in points] == [["latent 2"], ["latent 8"], ["latent 32"]]
    assert [(p["x"], p["y"]) for p in points] == [([6.5], [24.4]), ([13.9], [-33.3]), ([17.0], [-25.0])]
    # each keeps the colour of its place among the runs, as in Compare's other charts
    assert points[0]["marker"]["color"] != points[2]["marker"]["color"]
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("rate")
    assert figure["layout"]["yaxis"]["title"]["text"].startswith("distortion")
    empty = run_points.rate_distortion_points_figure({"none": {}})
    assert len(empty["data"]) == 1 and empty["data"][0]["x"] == []  # st.plotly_chart needs a trace


def test_weights_of_takes_matrices_and_kernels_not_biases():
    model = build_model(TrainConfig(latent_dim=3, hidden=[8], batch_norm=True), (1, 2, 2))
    weights = run_points.weights_of(model)
    matrices = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    assert len(weights) == sum(p.numel() for p in matrices)  # batch norm's scale (1-D) left out
    conv = build_model(TrainConfig(latent_dim=3, hidden=[4], architecture="conv"), (1, 4, 4))
    assert len(run_points.weights_of(conv)) == sum(p.numel() for n, p in conv.named_parameters()
                                                   if n.endswith("weight"))


def test_near_zero_share_and_the_histogram_of_weight_sizes():
    weights = np.array([0.0, 1e-5, -5e-4, 2e-3, -0.1, 0.5, 1.0, 20.0])
    assert run_points.near_zero_share(weights) == pytest.approx(3 / 8)
    assert run_points.near_zero_share(np.array([])) == 0.0
    figure = run_points.weight_histogram_figure({"L1": weights, "plain": np.full(4, 0.05), "empty": np.array([])})
    l1, plain = figure["data"]
    assert sum(l1["y"]) == pytest.approx(1.0) and sum(plain["y"]) == pytest.approx(1.0)  # shares of all weights
    assert "38% near 0" in l1["name"] and "0% near 0" in plain["name"]
    x = np.array(l1["x"])
    assert x[np.argmax(plain["y"])] == pytest.approx(0.05, rel=0.13)  # the bin that holds 0.05
    # 0 (in the first bin), 1e-5 and 5e-4
    assert np.array(l1["y"])[x < run_points.NEAR_ZERO].sum() == pytest.approx(3 / 8)
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert figure["layout"]["shapes"][0]["x0"] == run_points.NEAR_ZERO

