"""vae_core.views.figures: the charts and mosaics the pages show, built from short real runs as the pages build them."""

import base64
import io
import json
import math
import re
from xml.etree import ElementTree

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from vae_core.maths import collapse, metrics
from vae_core.views import explore, figures
from vae_core.config import TrainConfig
from vae_core.data import load_dataset
from vae_core.jobs.job import TrainingJob
from vae_core.maths.objectives import beta_at
from vae_core.runs import list_runs
from vae_core.maths.schedules import lr_curve
from vae_core.jobs.slots import SlotPool
from vae_core.train import Status

# β = 0.1 for 3 epochs leaves 4 of the 8 latent units active (seed 0): both kinds for the KL chart
DIGITS_RUN = TrainConfig(hidden=[64, 32], latent_dim=8, epochs=3, batch_size=32, beta=0.1)
MOONS_RUN = TrainConfig(dataset="moons", recon_loss="mse", hidden=[32, 32], latent_dim=2, epochs=1, batch_size=64)
GREY = (np.arange(8 * 8).reshape(8, 8) / 63.0).astype(np.float32)  # a gradient tile, for exact pixel checks


def _train(config, data, runs_dir=None) -> TrainingJob:
    job = TrainingJob(config, data, runs_dir=runs_dir, pool=SlotPool(1)).start()
    assert job.join(120), "the run did not finish in 2 minutes"
    assert job.view().status == Status.FINISHED, job.view().message
    return job


class _Validated:
    """vae_core.views.figures with each figure (plain data) read back through Plotly's validating Figure class:
    an invalid property fails the test, and the tests read traces and layout as attributes."""

    def __getattr__(self, name):
        build = getattr(figures, name)

        def validated(*args, **kwargs):
            out = build(*args, **kwargs)
            return go.Figure(out) if isinstance(out, dict) else out
        return validated


drawn = _Validated()


def _drawable(fig: dict) -> go.Figure:
    """The figure after the JSON the live charts send (strict: NaN is not JSON), validated."""
    return go.Figure(json.loads(figures.to_json(fig), parse_constant=lambda name: pytest.fail(f"{name} in JSON")))


def _pixels(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def digits_job(digits, runs_dir):
    """The Train page's job, finished and saved in runs_dir."""
    return _train(DIGITS_RUN, digits, runs_dir)


@pytest.fixture(scope="module")
def compared(digits, digits_job, runs_dir):
    """The Compare page's series: each saved run (β = 0.1 and β = 1) -> its epochs as read back from disk."""
    _train(DIGITS_RUN.replace(beta=1.0), digits, runs_dir)
    return {f"β = {run.config.beta:g}": run.epochs for run in list_runs(runs_dir)}


@pytest.fixture(scope="module")
def moons():
    return load_dataset("moons")


@pytest.fixture(scope="module")
def moons_job(moons):
    return _train(MOONS_RUN, moons)


# --- the Train page ---------------------------------------------------------------------------------
def test_live_figures_keep_their_uirevision_from_the_empty_view_to_a_finished_run(digits, digits_job, moons,
                                                                                  moons_job):
    """Same uirevision on every redraw, so Plotly keeps the user's zoom and legend clicks while a run trains."""
    view, moons_snap = digits_job.view(), moons_job.view().snapshot
    snap = view.snapshot
    empty, axes = np.zeros((0, 2)), ("PC 1", "PC 2")
    pairs = [
        (drawn.latent_figure(empty, None, digits.class_names, axes),
         drawn.latent_figure(snap.latent_2d, snap.labels, digits.class_names, axes)),
        (drawn.kl_figure(np.zeros(DIGITS_RUN.latent_dim)),
         drawn.kl_figure(snap.kl_per_dim, collapse.informative(snap.kl_per_dim, snap.latent_mu))),
        (drawn.points_figure(moons.val[:300].numpy(), empty, "reconstructions", connect=True, revision="recon"),
         drawn.points_figure(moons_snap.originals[:300], moons_snap.reconstructions[:300], "reconstructions",
                               connect=True, revision="recon")),
    ]
    for before, after in pairs:
        assert before.layout.uirevision is not None
        assert (before.layout.uirevision, before.layout.yaxis.uirevision) == \
               (after.layout.uirevision, after.layout.yaxis.uirevision)


def _polyline(svg: str) -> list[tuple[float, float]]:
    """The (x, y) points of an SVG chart's line, in the SVG's pixels."""
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1)
    return [tuple(map(float, point.split(","))) for point in points.split()]


def test_schedule_charts_draw_the_beta_warm_up_and_the_cosine_learning_rate(digits):
    config = TrainConfig(beta=4.0, beta_schedule="warmup", beta_warmup_epochs=2, lr_schedule="cosine", epochs=10)
    steps_per_epoch = math.ceil(len(digits.train) / config.batch_size)
    total = config.epochs * steps_per_epoch
    steps = np.linspace(0, total, min(total, 300) + 1).astype(int).tolist()
    betas = [beta_at(s, config.beta, config, steps_per_epoch) for s in steps]
    beta_svg = drawn.schedule_svg([s / steps_per_epoch for s in steps], betas, "β")
    ElementTree.fromstring(beta_svg)  # well-formed
    line = _polyline(beta_svg)
    assert len(line) == 301 and [x for x, _ in line] == sorted(x for x, _ in line)
    warm = 2 * steps_per_epoch * 300 // total  # the point where the warm-up ends
    assert line[0][1] > line[warm // 2][1] > line[warm + 2][1] == line[-1][1]  # rises (SVG y points down), then flat
    assert ">4<" in beta_svg and ">0<" in beta_svg and ">5<" in beta_svg and ">10<" in beta_svg  # epochs, as set
    assert ">epoch<" in beta_svg and "β over the training epochs" in beta_svg

    lr_steps, lrs = lr_curve(config, steps_per_epoch)
    lr_svg = drawn.schedule_svg([s / steps_per_epoch for s in lr_steps], lrs, "learning rate")
    ys = [y for _, y in _polyline(lr_svg)]
    assert ys[0] == min(ys) and ys[-1] == pytest.approx(max(ys), abs=1.5)  # from the top down to about zero
    assert all(a <= b + 1e-9 for a, b in zip(ys, ys[1:]))  # cosine: never rises
    assert f">{config.lr:.3g}<" in lr_svg and "learning rate over the training epochs" in lr_svg
    assert _polyline(drawn.schedule_svg([0, 10], [0.0, 0.0], "β"))  # a constant 0 still draws
    empty = ElementTree.fromstring(drawn.schedule_svg([], [], "β"))  # nothing to draw: still a chart
    assert empty.find("{http://www.w3.org/2000/svg}polyline").get("points") == ""


def test_latent_figure_colours_the_scatter_by_digit_and_keeps_each_points_index(digits, digits_job):
    snap = digits_job.view().snapshot
    fig = drawn.latent_figure(snap.latent_2d, snap.labels, digits.class_names, ("PC 1", "PC 2"))
    assert [t.name for t in fig.data] == list(digits.class_names)
    assert len({t.marker.color for t in fig.data}) == 10
    for trace in fig.data:
        index = np.flatnonzero(snap.labels == int(trace.name))
        np.testing.assert_array_equal(trace.customdata, index)
        np.testing.assert_allclose(np.column_stack([trace.x, trace.y]), snap.latent_2d[index])
    assert sum(len(t.x) for t in fig.data) == len(digits.val)
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("PC 1", "PC 2")


def test_latent_figure_names_classes_on_the_2d_preview_and_draws_unlabelled_inputs_as_one_set(moons):
    points, labels = moons.train[:1000].numpy(), moons.train_labels[:1000].numpy()
    fig = drawn.latent_figure(points, labels, moons.class_names, ("x₁", "x₂"), revision="preview", height=260)
    assert [t.name for t in fig.data] == ["upper moon", "lower moon"]
    assert [len(t.x) for t in fig.data] == np.bincount(labels).tolist()
    assert fig.layout.xaxis.title.text == "x₁" and fig.layout.height == 260

    (inputs,) = drawn.latent_figure(points, None).data
    assert inputs.name == "inputs" and list(inputs.customdata) == list(range(1000))


def test_latent_figure_marks_the_two_samples_picked_on_the_explore_page(digits, digits_job):
    mu, _ = explore.encode(digits_job.trainer.model, digits.val)
    points = metrics.project_2d(mu.numpy())
    fig = drawn.latent_figure(points, digits.val_labels.numpy(), digits.class_names, ("PC 1", "PC 2"),
                                highlight={"A": 3, "B": 17}, revision="explore")
    *classes, a, b = fig.data
    assert len(classes) == 10 and (a.name, b.name) == ("A: #3", "B: #17")
    assert (a.text, b.text) == (("A",), ("B",))
    assert (a.x[0], a.y[0]) == tuple(points[3]) and (b.x[0], b.y[0]) == tuple(points[17])
    assert fig.layout.clickmode == "event" and fig.layout.uirevision == "explore"  # a click picks, selects nothing


def _decoded(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))))


def test_thumbnails_are_each_points_sample_as_a_png_for_the_explore_scatters_hover(digits, digits_job):
    """Explore shows the image of the scatter point under the pointer: thumbnails[i] is validation sample i,
    the sample behind the point whose customdata is i."""
    x = digits.val.numpy()
    thumbs = figures.thumbnails(x)
    assert len(thumbs) == len(x) == 270
    for i in (0, 41, 269):
        np.testing.assert_array_equal(_decoded(thumbs[i]), _pixels(x[i, 0]))  # exact pixels, at 8×8
    assert sum(map(len, thumbs)) < 80_000  # about 0.2 KB a digit
    snap = digits_job.view().snapshot
    scatter = drawn.latent_figure(snap.latent_2d, snap.labels, digits.class_names)
    for trace in scatter.data:
        i = trace.customdata[-1]
        assert digits.val_labels[i] == int(trace.name) and thumbs[i] == figures.thumbnails(x[i:i + 1])[0]


def test_thumbnails_keep_colour_and_stop_at_the_size_cap():
    rgb = np.stack([GREY, 1 - GREY, np.zeros_like(GREY)])[None].repeat(5, 0)
    thumbs = figures.thumbnails(rgb)
    assert len(thumbs) == 5
    np.testing.assert_array_equal(_decoded(thumbs[2]), _pixels(rgb[2].transpose(1, 2, 0)))
    one = len(thumbs[0])
    capped = figures.thumbnails(rgb, max_bytes=2 * one + 10)
    assert capped[:2] == thumbs[:2] and capped[2:] == [None, None, None]  # past the cap: no image for the rest
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        figures.thumbnails(GREY)


def test_kl_figure_tells_informative_from_other_units(digits_job):
    snap = digits_job.view().snapshot
    informative = collapse.informative(snap.kl_per_dim, snap.latent_mu)
    assert 0 < informative.sum() < DIGITS_RUN.latent_dim, "the run should leave some units informative, some not"
    fig = drawn.kl_figure(snap.kl_per_dim, informative, collapse.NATS_PER_UNIT)
    (bars,) = fig.data
    assert list(bars.x) == [f"z{d}" for d in range(1, 9)]
    np.testing.assert_allclose(bars.y, snap.kl_per_dim)
    colours = np.array(bars.marker.color)
    assert len(set(colours[informative])) == len(set(colours[~informative])) == 1
    assert colours[informative][0] != colours[~informative][0]
    assert f"{informative.sum()} of 8 units informative" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "KL (nats)"
    assert fig.layout.shapes[0].y0 == fig.layout.shapes[0].y1 == 0.1  # the line an informative unit must pass

    before = drawn.kl_figure(np.zeros(8))  # before the first snapshot: nothing known, nothing counted
    assert set(before.data[0].marker.color) == {colours[~informative][0]}
    assert "informative" not in before.layout.title.text


def test_kl_bars_of_a_collapsed_code_stay_flat():
    """A fixed minimum range: 0.0008-nat bars must not fill the plot as if they carried something."""
    tiny = drawn.kl_figure(np.full(16, 0.0008), np.zeros(16, bool))
    assert tuple(tiny.layout.yaxis.range) == (0, figures.KL_RANGE)
    assert drawn.kl_figure(np.array([0.2, 3.0])).layout.yaxis.range[1] == pytest.approx(3.3)


def test_points_figure_links_each_2d_point_to_its_reconstruction(moons, moons_job):
    snap = moons_job.view().snapshot
    originals, recon = snap.originals[:300], snap.reconstructions[:300]
    fig = drawn.points_figure(originals, recon, "reconstructions", connect=True, revision="recon")
    assert [t.name for t in fig.data] == ["data", "error", "reconstructions"]
    data, error, overlay = fig.data
    np.testing.assert_allclose(np.column_stack([data.x, data.y]), originals)
    np.testing.assert_allclose(np.column_stack([overlay.x, overlay.y]), recon)
    segments = np.stack([np.asarray(error.x, float), np.asarray(error.y, float)], -1).reshape(300, 3, 2)
    np.testing.assert_allclose(segments[:, 0], originals)
    np.testing.assert_allclose(segments[:, 1], recon)
    assert np.isnan(segments[:, 2]).all()  # a break between segments
    assert fig.layout.yaxis.scaleanchor == "x"  # equal aspect: the data's shape is not distorted

    samples = drawn.points_figure(moons.val.numpy(), snap.samples, "prior samples", revision="samples")
    assert [t.name for t in samples.data] == ["data", "prior samples"]
    assert [len(t.x) for t in samples.data] == [len(moons.val), len(snap.samples)]


# --- the Explore page (2-D data) -------------------------------------------------------------------
def test_points_path_figure_draws_interpolations_traversals_and_the_plane_over_the_data(moons, moons_job):
    model, val = moons_job.trainer.model, moons.val
    path = explore.interpolate(model, val[0], val[1], 10).numpy()
    fig = drawn.points_path_figure(val.numpy(), path[None], ["A → B"], revision="interp")
    assert [t.name for t in fig.data] == ["data", "A → B"] and len(fig.data[0].x) == len(val)
    np.testing.assert_allclose(np.column_stack([fig.data[1].x, fig.data[1].y]), path)

    grid = explore.traverse(model, val[0], [0, 1], 3.0, 7).numpy()
    fig = drawn.points_path_figure(val.numpy(), grid, ["z1", "z2"], revision="traverse")
    assert [t.name for t in fig.data] == ["data", "z1", "z2"]
    assert [len(t.x) for t in fig.data[1:]] == [7, 7] and fig.data[1].line.color != fig.data[2].line.color

    plane = explore.latent_grid(model, 5, 2.5).numpy()
    fig = drawn.points_path_figure(val.numpy(), plane, [f"row {i + 1}" for i in range(5)], revision="plane")
    assert [t.name for t in fig.data[1:]] == ["row 1", "row 2", "row 3", "row 4", "row 5"]
    np.testing.assert_allclose(fig.data[5].y, plane[4, :, 1])
    assert fig.layout.yaxis.scaleanchor == "x"


# --- the Compare page --------------------------------------------------------------------------------
def test_rate_distortion_figure_draws_each_saved_run_as_a_path_ending_in_a_star(compared):
    fig = drawn.rate_distortion_figure(compared)
    assert len(fig.data) == 2 * len(compared) == 4
    for name, epochs in compared.items():
        path, star = [t for t in fig.data if t.legendgroup == name]
        assert path.name == name and list(path.customdata) == [1, 2, 3]
        np.testing.assert_allclose(path.x, [r["val_kl"] for r in epochs])
        np.testing.assert_allclose(path.y, [r["val_recon"] for r in epochs])
        assert star.marker.symbol == "star" and star.showlegend is False and star.marker.color == path.line.color
        assert (star.x[0], star.y[0]) == (epochs[-1]["val_kl"], epochs[-1]["val_recon"])
    assert fig.data[0].line.color != fig.data[2].line.color
    assert fig.layout.xaxis.title.text == "rate: KL (nats)"
    assert fig.layout.yaxis.title.text == "distortion: reconstruction (nats)"


def test_runs_figure_overlays_one_metric_of_the_saved_runs_per_epoch(compared):
    fig = drawn.runs_figure(compared, "val_neg_elbo", "validation −ELBO")
    assert [t.name for t in fig.data] == list(compared)
    for trace, epochs in zip(fig.data, compared.values()):
        assert list(trace.x) == [1, 2, 3] and list(trace.y) == [r["val_neg_elbo"] for r in epochs]
    assert fig.data[0].line.color != fig.data[1].line.color
    assert (fig.layout.xaxis.title.text, fig.layout.xaxis.dtick) == ("epoch", 1)
    assert fig.layout.yaxis.title.text == "validation −ELBO" and fig.layout.yaxis.type == "linear"

    log = drawn.runs_figure(compared, "val_neg_elbo", "validation −ELBO", log_y=True)
    assert log.layout.yaxis.type == "log" and log.layout.yaxis.uirevision != fig.layout.yaxis.uirevision
    assert log.layout.uirevision == fig.layout.uirevision
    assert drawn.runs_figure(compared, "val_kl").layout.uirevision != fig.layout.uirevision  # a new metric


# --- empty inputs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda: figures.points_figure(np.zeros((0, 2)), np.zeros((0, 2)), "reconstructions", connect=True),
    lambda: figures.latent_figure(np.zeros((0, 2)), None, ("0", "1"), ("z₁", "z₂")),
    lambda: figures.latent_figure(np.zeros((0, 2)), np.zeros(0, int), ("0", "1")),
    lambda: figures.kl_figure(np.zeros(0), np.zeros(0, bool)),
    lambda: figures.points_path_figure(np.zeros((0, 2)), np.zeros((0, 7, 2)), []),
    lambda: figures.rate_distortion_figure({}),
    lambda: figures.rate_distortion_figure({"a run with no epoch yet": []}),
    lambda: figures.runs_figure({}, "val_kl"),
    lambda: figures.runs_figure({"a run with no epoch yet": []}, "val_kl", log_y=True),
], ids=["points", "latent", "latent-labelled", "kl", "paths", "rate-distortion",
        "rate-distortion-no-epochs", "runs", "runs-no-epochs"])
def test_empty_inputs_give_an_empty_but_drawable_figure(build):
    fig = _drawable(build())
    assert all(len(t.x) == 0 for t in fig.data)
    assert fig.layout.uirevision is not None


# --- image mosaics -----------------------------------------------------------------------------------
def test_mosaic_lays_out_the_training_preview_enlarged_and_separated_by_white(digits):
    images = digits.train[:16].numpy()
    scale = figures.tile_scale(8, 40)
    side = 8 * scale
    out = figures.mosaic(images, cols=8, scale=scale)
    assert out.dtype == np.uint8 and out.shape == (2 * side + 1, 8 * side + 7)
    image_9 = out[side + 1:, side + 1:2 * side + 1]  # second row, second column
    np.testing.assert_array_equal(image_9, _pixels(images[9, 0]).repeat(scale, 0).repeat(scale, 1))
    assert (out[side] == 255).all() and (out[:, side] == 255).all()


def test_mosaic_draws_a_traversal_grid_as_rows_and_fills_a_short_last_row_with_white(digits, digits_job):
    grid = explore.traverse(digits_job.trainer.model, digits.val[0], [0, 1, 2], 3.0, 5).numpy()
    out = figures.mosaic(grid)
    assert out.shape == (3 * 9 - 1, 5 * 9 - 1)
    np.testing.assert_array_equal(out[18:, 36:], _pixels(grid[2, 4, 0]))

    short = figures.mosaic(np.stack([GREY[None]] * 6), cols=4)
    assert short.shape == (2 * 9 - 1, 4 * 9 - 1)
    np.testing.assert_array_equal(short[9:, 9:17], _pixels(GREY))
    assert (short[9:, 18:] == 255).all()


def test_mosaic_keeps_colour_channels_and_refuses_other_shapes():
    rgb = np.stack([GREY, 1 - GREY, np.zeros_like(GREY)])[None].repeat(3, 0)
    out = figures.mosaic(rgb, cols=3)
    assert out.shape == (8, 3 * 9 - 1, 3)
    np.testing.assert_array_equal(out[:, :8], _pixels(rgb[0].transpose(1, 2, 0)))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        figures.mosaic(GREY)


def test_pair_mosaic_puts_each_reconstruction_under_its_original(digits_job):
    snap = digits_job.view().snapshot
    assert len(snap.originals) == 16 and not np.allclose(snap.originals, snap.reconstructions)
    out = figures.pair_mosaic(snap.originals, snap.reconstructions, cols=8)
    assert out.shape == (4 * 9 - 1, 8 * 9 - 1)

    def tile(row, col):
        return out[row * 9:row * 9 + 8, col * 9:col * 9 + 8]
    for row, images, first in ((0, snap.originals, 0), (1, snap.reconstructions, 0), (2, snap.originals, 8),
                               (3, snap.reconstructions, 8)):
        np.testing.assert_array_equal(tile(row, 5), _pixels(images[first + 5, 0]))

    five = figures.pair_mosaic(np.stack([GREY[None]] * 5), np.stack([1 - GREY[None]] * 5), cols=4, scale=2)
    assert five.shape == (4 * 17 - 1, 4 * 17 - 1)
    assert (five[34:, 17:] == 255).all()  # the second pair of rows holds one image each


@pytest.mark.parametrize("side, target, scale", [(8, 56, 7), (28, 56, 2), (8, 40, 5), (28, 48, 2), (200, 56, 1)])
def test_tile_scale_enlarges_images_to_about_the_target_width_and_never_shrinks_them(side, target, scale):
    assert figures.tile_scale(side, target) == scale


def test_runs_without_a_validated_epoch_still_give_a_figure_streamlit_accepts():
    """A run stopped in its first epoch is listed in Compare with no epoch rows: its charts are empty, not
    an exception."""
    from plotly.tools import return_figure_from_figure_or_data
    for figure in (figures.rate_distortion_figure({"stopped early": []}),
                   figures.runs_figure({"stopped early": []}, "val_neg_elbo")):
        return_figure_from_figure_or_data(figure, validate_figure=True)  # what st.plotly_chart does with it
        assert all(not trace.get("x") for trace in figure["data"])
