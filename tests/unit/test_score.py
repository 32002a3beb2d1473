"""The final score: test −ELBO and the IWAE bound on a held-out test split apart from validation, saved with
the run, printed by the CLI, capped in time and by Stop."""

import json
import math

import pytest
import torch

from vae_core import runs
from vae_core.__main__ import main
from vae_core.config import TrainConfig
from vae_core.data import load_dataset
from vae_core.jobs.job import TrainingJob
from vae_core.jobs.slots import SlotPool
from vae_core.maths import score
from vae_core.train import Status, Trainer, fit
from vae_core.views import explore


@pytest.fixture(scope="module")
def trained(digits):
    trainer = Trainer(TrainConfig(epochs=10, batch_size=64, lr=3e-3, latent_dim=2), digits)
    assert fit(trainer).status == Status.FINISHED
    return trainer


def _mc_neg_elbo(trainer, x):
    """−ELBO with the KL estimated from the one z per input that `evaluate` draws (seed 0)."""
    result = trainer.evaluate(x)
    mu, logvar = explore.encode(trainer.model, x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    z = mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(0)) * q.scale
    kl_estimate = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(1).mean().item()
    return result, result["recon"] + kl_estimate


def test_iwae_bound_with_one_sample_is_the_elbo_estimate_on_the_same_noise(trained, digits):
    x = digits.val[:200]
    result, mc_neg_elbo = _mc_neg_elbo(trained, x)
    iwae_1 = score.iwae_bound(trained.model, x, trained.config, k=1, seed=0)
    assert iwae_1 == pytest.approx(-mc_neg_elbo, abs=1e-3)
    assert iwae_1 == pytest.approx(-result["neg_elbo"], abs=0.1)  # measured: 0.007 from the closed-form KL


def test_iwae_bound_rises_with_k_and_stays_within_a_nat_of_the_elbo(trained, digits):
    x = digits.val[:200]
    elbo = -trained.evaluate(x)["neg_elbo"]

    def bound(k):  # averaged over 4 seeds, against Monte Carlo noise
        return sum(score.iwae_bound(trained.model, x, trained.config, k=k, seed=s) for s in range(4)) / 4
    one, four, many = bound(1), bound(4), bound(64)
    assert one < four < many
    assert 0 < many - elbo < 0.3  # measured: 0.076 nats; forgetting −log k would add log 64 = 4.2


def test_the_final_score_bounds_the_test_elbo_and_equals_it_at_k_1(trained, digits):
    final = score.final_score(trained, budget=math.inf)
    assert final["split"] == "test" and final["rows"] == final["iwae_rows"] == len(digits.test)
    assert final["neg_elbo"] == pytest.approx(trained.evaluate(digits.test)["neg_elbo"])
    assert final["neg_iwae"] <= final["neg_elbo"] and final["iwae_k"] == score.IWAE_K == 50
    one = score.final_score(trained, k=1, budget=math.inf)
    assert one["neg_iwae"] == pytest.approx(_mc_neg_elbo(trained, digits.test)[1], abs=1e-3)
    assert "test −ELBO" in score.describe(final) and "test −IWAE bound (k = 50)" in score.describe(final)
    assert "nats per sample" in score.describe(final) and score.valid(json.loads(json.dumps(final)))


def test_the_iwae_pass_stops_after_the_chunk_that_goes_over_its_time_cap_or_a_stop(trained, digits, monkeypatch):
    monkeypatch.setattr(score, "CHUNK_VALUES", 50 * 64 * 16)  # 16 digits a chunk at k = 50
    ticks = iter(range(100))
    capped = score.final_score(trained, budget=1.5, clock=lambda: next(ticks))  # a second per look at the clock
    assert capped["iwae_rows"] == 32 < capped["rows"] == len(digits.test)  # at 0 (start), 1 (16 rows), 2 (32): over
    assert "on the first 32 (it stops after 2 s, or on Stop)" in score.describe(capped)
    stopped = score.final_score(trained, lambda: True, budget=math.inf)
    assert stopped["iwae_rows"] == 16 and stopped["neg_elbo"] == capped["neg_elbo"]  # the −ELBO covers all


def test_an_autoencoder_scores_its_test_reconstruction_only_and_an_untrained_model_nothing(digits):
    trainer = Trainer(TrainConfig(mode="ae", epochs=1, hidden=[32]), digits)
    assert score.final_score(trainer) is None  # no epoch done
    fit(trainer)
    final = score.final_score(trainer)
    assert set(final) == {"split", "rows", "recon", "seconds"} and "autoencoder" in score.describe(final)


@pytest.mark.parametrize("name", ["digits", "moons", "circles", "gaussians", "swiss-roll", "shapes"])
def test_every_built_in_split_has_a_test_set_apart_from_validation(name):
    data = load_dataset(name)
    val = {row.numpy().tobytes() for row in data.val}
    assert len(data.test) and not any(row.numpy().tobytes() in val for row in data.test)


def test_the_real_t10k_files_split_8000_1000_1000_with_test_apart_from_validation(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (8000, 1000, 1000)
    val = {row.numpy().tobytes() for row in mnist.val}
    assert not any(row.numpy().tobytes() in val for row in mnist.test)


def test_a_job_saves_its_score_with_the_run_and_an_old_run_without_one_still_loads(digits, tmp_path):
    job = TrainingJob(TrainConfig(epochs=2, hidden=[32]), digits, runs_dir=tmp_path, pool=SlotPool(1)).start()
    assert job.join(60) and job.view().status == Status.FINISHED
    final = job.view().score
    assert final["neg_iwae"] <= final["neg_elbo"] and final["iwae_rows"] == len(digits.test)
    run = runs.load_run(job.view().run_dir)
    assert run.meta["score"] == final
    assert run.epochs[-1]["test_neg_elbo"] == pytest.approx(final["neg_elbo"]) and "test_neg_elbo" not in run.epochs[0]
    meta_path = run.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "score"}))
    assert "score" not in runs.load_run(run.path).meta  # saved before scores existed
    meta_path.write_text(json.dumps(meta | {"score": final | {"neg_elbo": "NaN"}}))
    with pytest.raises(runs.RunError, match="score"):
        runs.load_run(run.path)


def test_the_stop_that_ends_training_still_scores_and_one_while_scoring_cuts_the_iwae_short(digits, tmp_path,
                                                                                            monkeypatch):
    job = TrainingJob(TrainConfig(epochs=3, hidden=[32]), digits, pool=SlotPool(1))
    train_step = Trainer.train_step

    def stop_in_epoch_2(trainer, x):
        if trainer.step == 45:  # 40 steps an epoch
            job.stop()
        return train_step(trainer, x)
    monkeypatch.setattr(Trainer, "train_step", stop_in_epoch_2)
    job.start(runner=lambda run: run())
    assert job.view().status == Status.STOPPED and job.view().score["iwae_rows"] == len(digits.test)

    monkeypatch.setattr(Trainer, "train_step", train_step)
    monkeypatch.setattr(score, "CHUNK_VALUES", 50 * 64 * 16)
    job = TrainingJob(TrainConfig(epochs=1, hidden=[32]), digits, pool=SlotPool(1))
    chunks = score._chunks

    def stop_at_the_first_chunk(*args, **kwargs):
        for item in chunks(*args, **kwargs):
            job.stop()
            yield item
    monkeypatch.setattr(score, "_chunks", stop_at_the_first_chunk)
    job.start(runner=lambda run: run())
    assert job.view().status == Status.FINISHED and job.view().score["iwae_rows"] == 16


def test_a_run_that_diverged_before_an_epoch_has_no_score(digits):
    job = TrainingJob(TrainConfig(lr=1e3, epochs=5, hidden=[32]), digits, pool=SlotPool(1))
    job.start(runner=lambda run: run())
    assert job.view().status == Status.DIVERGED and job.view().epoch == 0 and job.view().score is None


def test_the_cli_prints_and_saves_the_final_score(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--hidden", "32", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (run_dir,) = list(tmp_path.iterdir())
    final = runs.load_run(run_dir).meta["score"]
    assert f"final score: test −ELBO {final['neg_elbo']:.2f} nats per sample on 270 test samples; " \
           f"test −IWAE bound (k = 50) {final['neg_iwae']:.2f} nats per sample on all of them" in out
    assert "test_neg_iwae" in (run_dir / "metrics.csv").read_text().splitlines()[0]
