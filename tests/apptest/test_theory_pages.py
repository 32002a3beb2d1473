"""The theory on the Learn page and the Train page's way there: each formula under its anchor, each setting it names
shown on the Train page by the label it gives, and that setting's help linking to it."""

from vae_core.views.theory import FORMULAS, LABELS, LEARN_PATH


def _learn(app):
    app.run()
    app.switch_page("pages/learn.py").run()
    assert not app.exception
    return app


def test_every_formula_is_shown_under_its_anchor_naming_its_settings(app):
    _learn(app)
    anchors = [heading.proto.anchor for heading in app.subheader]
    assert [formula.anchor for formula in FORMULAS] == [a for a in anchors if a]  # in the theory's order
    shown = [latex.value.strip("$\n") for latex in app.latex]  # st.latex sends $$ … $$
    assert len(shown) == sum(len(formula.latex) for formula in FORMULAS)
    captions = [caption.value for caption in app.caption]
    for formula in FORMULAS:
        assert all(tex in shown for tex in formula.latex), formula.anchor
        assert any(formula.text in markdown.value for markdown in app.markdown), formula.anchor
        if formula.controls:
            names = ", ".join(f"**{LABELS[field]}**" for field in formula.controls)
            assert f"On the Train page: {names}" in captions
    contents = next(m.value for m in app.markdown if "](#elbo)" in m.value)
    assert all(f"](#{formula.anchor})" in contents for formula in FORMULAS)


def _settings_widgets(app) -> dict:
    """The Train page's settings widgets drawn now, by setting."""
    widgets = [*app.number_input, *app.selectbox, *app.checkbox, *app.radio]
    return {w.key.removeprefix("cfg_"): w for w in widgets if w.key and w.key.startswith("cfg_")}


def test_each_setting_a_formula_names_has_its_label_and_links_to_it(app):
    app.run()
    seen = set()
    # Settings show only where they do something: the mixed loss and warm-up, then cyclical β, then capacity
    # (which hides β and its schedules).
    app.selectbox(key="cfg_recon_loss").set_value("mixed")
    for change in ("warmup", "cyclical", "capacity"):
        if change == "capacity":
            app.checkbox(key="cfg_capacity").check().run()
        else:
            app.selectbox(key="cfg_beta_schedule").set_value(change).run()
        assert not app.exception
        widgets = _settings_widgets(app)
        for field in LABELS.keys() & widgets.keys():
            seen.add(field)
            assert widgets[field].label == LABELS[field]
            for formula in (f for f in FORMULAS if field in f.controls):
                assert f"]({LEARN_PATH}#{formula.anchor})" in widgets[field].help, field
        if change == "warmup":  # and the β field that changes a running job, while β is used
            assert f"]({LEARN_PATH}#beta-vae)" in app.number_input(key="live_beta").help
    assert seen == set(LABELS)
