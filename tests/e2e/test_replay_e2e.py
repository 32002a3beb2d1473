"""A run's replay in a real browser: train a short run, open Explore, press Play and move the slider: the latent
points move between frames, in the browser (Plotly's animation), on axes that stay put."""

import pytest

pytestmark = pytest.mark.e2e

PLOT = ".st-key-replay-explore-current .js-plotly-plot"
# The first label's latent x positions as drawn now, the x axis's range, the slider's step and the image panels'
# PNGs (null while the chart is not drawn).
STATE = f"""() => {{ const g = document.querySelector('{PLOT}');
  if (!g || !g._fullData) return null;
  const t = g._fullData.find(t => t.customdata);
  return {{x: Array.from(t.x), range: g._fullLayout.xaxis.range.slice(),
           slider: g._fullLayout.sliders[0].active,
           images: Array.from(g.querySelectorAll('image')).map(i => i.getAttribute('href'))}}; }}"""


def state(page) -> dict:
    return page.wait_for_function(STATE, polling=50).json_value()


def test_play_and_the_slider_move_the_latent_points(page, server, shoot, train_on_page):
    # the replay shows on the Train page once the run has ended
    train_on_page(page, server.url + "/?epochs=3&hidden=32", "Replay: how the latent space formed")
    page.get_by_role("link", name="Explore").click()
    page.locator(PLOT).wait_for()
    first = state(page)
    assert first["slider"] == 0

    page.locator(f"{PLOT} .updatemenu-button").first.click()  # ▶ Play
    page.wait_for_function(f"x0 => {{ const s = ({STATE})(); return s && s.slider === 3 "
                           "&& JSON.stringify(s.x) !== JSON.stringify(x0); }", arg=first["x"], polling=50)
    page.wait_for_function(f"() => ({STATE})().images.length === 2")  # redrawn once the frame is shown
    played = state(page)
    assert played["range"] == first["range"]  # fixed axes: the points moved, not the axes
    assert all(src.startswith("data:image/png;base64,") for src in played["images"])
    assert played["images"] != first["images"]  # the reconstructions and samples changed too
    shoot(page, "replay-played")

    # The slider back to its first step (epoch 0): the first frame's positions again.
    rail = page.locator(f"{PLOT} .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"x0 => {{ const s = ({STATE})(); return s && s.slider === 0 "
                           "&& JSON.stringify(s.x) === JSON.stringify(x0); }", arg=first["x"], polling=50)
