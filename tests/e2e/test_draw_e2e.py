"""Draw a digit in a real browser: strokes on Explore's canvas reach the server as a PNG, which is prepared, encoded
and marked with a star on the latent scatter, beside each chosen point's σ ellipse; Clear empties it again."""

import pytest

pytestmark = pytest.mark.e2e

PLOT = ".st-key-explore_latent .js-plotly-plot"
TRACES = f"() => Array.from(document.querySelector('{PLOT}')._fullData || [], t => [t.name, t.fill || ''])"


def test_a_drawn_digit_is_encoded_and_starred_on_the_scatter(page, server, shoot, train_on_page):
    train_on_page(page, server.url + "/?epochs=2&hidden=32", "Final score on the held-out test split")
    page.get_by_role("link", name="Explore").click()
    page.wait_for_function(f"() => (document.querySelector('{PLOT}') || {{}})._fullData")
    page.get_by_text("Show each point's uncertainty (σ)").click()
    page.wait_for_function(f"() => ({TRACES})().some(([name, fill]) => fill === 'toself')")

    canvas = page.locator(".st-key-draw_canvas canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 70, box["y"] + 60)  # a 7: the bar, then the stroke down
    page.mouse.down()
    for t in range(1, 11):
        page.mouse.move(box["x"] + 70 + 14 * t, box["y"] + 60)
    for t in range(1, 11):
        page.mouse.move(box["x"] + 210 - 9 * t, box["y"] + 60 + 17 * t)
    page.mouse.up()
    page.get_by_text("Marked ★ on the latent scatter above").wait_for()
    page.get_by_text("your drawing, as given").wait_for()
    page.wait_for_function(f"() => ({TRACES})().some(([name]) => name === 'yours')")
    shoot(page, "explore-draw")

    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the canvas (or upload a photo of one)").wait_for()
    page.wait_for_function(f"() => !({TRACES})().some(([name]) => name === 'yours')")
