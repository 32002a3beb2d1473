"""A setting's help on the Train page links to its formula: in a real browser the link opens the Learn page in a new
tab, scrolled to that formula's heading, with every formula typeset by KaTeX."""

import pytest

from vae_core.views.theory import FORMULAS

pytestmark = pytest.mark.e2e

HEADING_TOP = ("a => document.getElementById(a)?.closest('[data-testid=stHeading]')?.getBoundingClientRect().top"
               " ?? null")


def test_the_help_link_opens_the_formula_in_view(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(server.url + "/")
        page.locator(".st-key-cfg_free_bits [data-testid=stTooltipHoverTarget]").hover()
        link = page.get_by_test_id("stTooltipContent").get_by_role("link", name="Free bits")
        link.hover()  # the tooltip stays open while the pointer is on it
        with context.expect_page() as opened:
            link.click()
        learn = opened.value
        learn.set_default_timeout(30_000)
        assert learn.url.endswith("/learn#free-bits")
        # The heading lands below the navigation bar, and stays there while the page settles (the page scrolls
        # again while formulas above it still change height).
        learn.wait_for_function(f"() => {{ const t = ({HEADING_TOP})('free-bits'); "
                                "return t !== null && t > 40 && t < 120; }")
        learn.wait_for_function(f"() => document.querySelectorAll('.katex-display').length >= "
                                f"{sum(len(f.latex) for f in FORMULAS)}")
        assert learn.locator(".katex-error").count() == 0
        learn.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")
        learn.wait_for_timeout(1500)  # the page's own scrolling ends 1 s after the heading last moved
        assert 40 < learn.evaluate(HEADING_TOP, "free-bits") < 120
    finally:
        context.close()
