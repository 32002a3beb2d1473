"""Explore on 2-D points: views made for points (the decoded latent mesh, each point's arrow to its
reconstruction, the density of decoded samples), each with its sentence, and the picked samples as a table."""

import json

from vae_core.config import TrainConfig

MOONS = dict(dataset="moons", recon_loss="mse", epochs=1, hidden=[32])


def _ok(at):
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def _charts(at) -> dict[str, dict]:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def _open(app):
    app.run()
    app.switch_page("pages/explore.py").run()
    _ok(app)


def test_a_2d_latent_model_of_points_shows_its_mesh_arrows_and_density(app, train_run):
    train_run(TrainConfig(latent_dim=2, **MOONS))
    _open(app)
    assert not app.json  # no raw JSON of the picked samples
    (table,) = [d.value for d in app.dataframe]
    assert list(table["sample"]) == ["A: #0", "B: #1"] and "reconstructed x₁" in table
    assert "The model in the data plane" in [s.value for s in app.subheader]
    assert "The latent plane, decoded" not in [s.value for s in app.subheader]  # the rainbow of rows is gone
    charts = _charts(app)
    mesh = charts["mesh_points"]["data"]
    assert [t["name"] for t in mesh] == ["data", "latent grid, decoded"]  # one colour, two legend entries
    assert len(mesh[1]["x"]) == 2 * 11 * 41  # 11 lines each way, 40 points and a gap each
    arrows = charts["field_points"]["data"][1]
    assert arrows["marker"]["symbol"] == "arrow" and len(arrows["x"]) == 3 * 300
    assert charts["density_points"]["data"][0]["type"] == "histogram2dcontour"
    captions = " ".join(c.value for c in app.caption)
    for sentence in ("decoded: where the mesh crowds", "An arrow from each data point", "The density of 2,000"):
        assert sentence in captions
    app.slider(key="mesh_lines").set_value(5).run()
    _ok(app)
    assert len(_charts(app)["mesh_points"]["data"][1]["x"]) == 2 * 5 * 41


def test_points_with_more_latent_dimensions_get_the_arrows_and_density_without_a_mesh(app, train_run):
    train_run(TrainConfig(latent_dim=3, **MOONS))
    _open(app)
    charts = _charts(app)
    assert {"field_points", "density_points"} <= set(charts) and "mesh_points" not in charts
