"""The final score on the pages: the Train page shows it when a run ends; Compare has its columns and sorts by
it, the student's own runs first."""

import json
import math

from students import student

from vae_core.classroom.cards import new_card, write_card
from vae_core.classroom.identity import new_token, owner_of
from vae_core.maths import score


def test_the_train_page_shows_the_final_score_when_the_run_ends(app, session_work):
    app.run()
    app.sidebar.number_input(key="cfg_epochs").set_value(1).run()
    app.button(key="start").click().run()
    job = session_work(app)
    assert job is not None and job.join(60)
    app.run()
    assert not app.exception
    final = job.view().score
    shown = [m.value for m in app.markdown if "Final score on the held-out test split" in m.value]
    assert len(shown) == 1 and f"test −ELBO {final['neg_elbo']:.2f} nats per sample" in shown[0]
    assert f"test −IWAE bound (k = 50) {final['neg_iwae']:.2f} nats per sample" in shown[0]


def _score(run_dir, neg_elbo):
    """Give a saved run a chosen test −ELBO, or none (a run saved before scores)."""
    path = run_dir / "meta.json"
    meta = json.loads(path.read_text())
    if neg_elbo is None:
        del meta["score"]
    else:
        meta["score"]["neg_elbo"] = neg_elbo
    path.write_text(json.dumps(meta))


def test_compare_shows_the_final_score_and_sorts_by_it_after_the_students_own_runs(app, train_run):
    worse, better, old, classmate = (train_run() for _ in range(4))
    for run_dir, neg_elbo, owner in ((worse, 90.0, student(app)), (better, 10.0, student(app)),
                                     (old, None, student(app)), (classmate, 5.0, owner_of(new_token()))):
        _score(run_dir, neg_elbo)
        write_card(run_dir, new_card(owner, run_dir.name))  # titles apart: the run picker names runs by title
    app.run()
    app.switch_page("pages/compare.py").run()
    app.radio(key="compare_scope").set_value("class").run()
    app.multiselect(key="compare_runs").set_value([r.name for r in (old, classmate, worse, better)]).run()
    assert not app.exception and not [e.value for e in app.error]
    table = app.dataframe[0].value
    elbo = [None if math.isnan(v) else v for v in table[score.ELBO_NAME]]
    assert elbo == [10.0, 90.0, None, 5.0]  # own runs by test −ELBO, the unscored one last; then the classmate's
    assert list(table["owner"])[:3] == ["you"] * 3 and list(table["owner"])[3] != "you"
    assert [math.isnan(v) for v in table[score.iwae_name()]] == [False, False, True, False]
