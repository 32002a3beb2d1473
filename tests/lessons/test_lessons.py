"""Every lesson's claim, checked on real data: each test trains the lesson's own preset and contrast
(and extras) exactly as the app does, for two seeds, and asserts the claim with a margin on a measured
quantity from vae_core.maths.metrics. Runs are shared between tests (tests/lessons/conftest.py).

Run with `-s` to see the measured values.
"""

from __future__ import annotations

import math
import sys

import pytest

import torch

from vae_core.maths import collapse, metrics, quality
from vae_core.config import TrainConfig
from vae_core.maths.models import build_model, parameter_count
from vae_core.maths.objectives import vae_loss
from vae_core.train import Status
from vae_core.views import run_points
from vae_core.views.lessons import LESSONS, Lesson, lesson

TECHNIQUES = {  # every technique of the product has a lesson
    "bce-vs-mse", "beta", "warmup", "cyclical", "capacity", "free-bits", "ae-vs-vae", "adversarial",
    "augmentation", "regularization", "batch-norm", "early-stopping", "lr-schedule", "lr-too-high",
    "normalize-inputs", "conv-vs-mlp", "depth-activation", "optimizers", "l1-vs-l2", "latent-size", "shapes-beta",
}
CPU_SECONDS = 30.0  # a preset must train in the app within this much CPU time
DATA_LIKE_QUANTILE = 0.9  # "as close to a training image as nine in ten unseen real images are"
_measured: dict[int, dict] = {}
_thresholds: dict[int, tuple[object, float]] = {}


def data_like_threshold(data) -> float:
    """The nearest-training-image distance that 90% of the validation images stay within (once per dataset)."""
    if id(data) not in _thresholds:
        _thresholds[id(data)] = (data, metrics.data_like_threshold(data.train, data.val, DATA_LIKE_QUANTILE))
    return _thresholds[id(data)][1]


def measure(run) -> dict[str, float]:
    """The quantities the claims use, for one trained run (computed once)."""
    if id(run) not in _measured:
        model, data = run.model, run.data
        val, train = run.val, run.train
        _measured[id(run)] = {
            "val": val["neg_elbo"], "recon": val["recon"], "kl": val["kl"], "gap": val["neg_elbo"] - train["neg_elbo"],
            "rmse": metrics.reconstruction_rmse(model, data.val),
            "sharpness": metrics.sharpness(metrics.reconstructions(model, data.val)),
            "spread": metrics.reconstruction_spread(model, data.val),
            "prior": metrics.prior_sample_distance(model, data.train),
            # share of decoded prior samples as close to a training image as 90% of unseen real images are
            "data_like": float((metrics.nearest_distance(metrics.prior_samples(model), data.train)
                                <= data_like_threshold(data)).float().mean()),
            "dims": metrics.informative_dimensions(model, data.val),
            "kl_min": float(metrics.kl_per_dimension(model, data.val).min()),  # the least-used dimension's KL
            "epochs": run.epochs_done,
        }
    return _measured[id(run)]


def trained(runs, item: Lesson) -> list[dict[str, object]]:
    """For each seed: {label: run} for every configuration of the lesson, with the measured values printed."""
    runs.prefetch([config.replace(seed=s) for _, config in item.runs for s in runs.seeds_used])
    per_seed = []
    for runs_of_seed in zip(*(runs.seeds(config) for _, config in item.runs)):
        by_label = dict(zip((label for label, _ in item.runs), runs_of_seed))
        for label, run in by_label.items():
            values = measure(run)
            shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
            print(f"[{item.key}] {label} (seed {run.config.seed}, {run.status}, {run.cpu_seconds:.1f} s CPU): {shown}")
        per_seed.append(by_label)
    return per_seed


def test_every_technique_has_exactly_one_lesson_with_a_claim_and_a_metric():
    keys = [item.key for item in LESSONS]
    assert len(keys) == len(set(keys))
    assert set(keys) == TECHNIQUES
    for item in LESSONS:
        assert lesson(item.key) is item
        assert item.claim.strip() and item.look_for.strip() and item.metric.strip(), item.key
        assert len(item.extra) == len(item.extra_labels), item.key
        labels = [label for label, _ in item.runs]
        assert len(labels) == len(set(labels)), item.key
        for _, config in item.runs:
            assert isinstance(config, TrainConfig)
            assert TrainConfig.from_json(config.to_json()) == config  # a full, valid configuration
        assert item.preset != item.contrast, item.key
        assert item.view in ("", "rate-distortion", "weights"), item.key  # the views Compare draws
    with pytest.raises(KeyError):
        lesson("no-such-lesson")


def test_lessons_that_exceed_the_server_limits_are_left_out_instead_of_breaking_the_import(monkeypatch):
    """A teacher sets VAE_LAB_MAX_EPOCHS=20 and VAE_LAB_MAX_LATENT=8: importing the lessons must still work."""
    import importlib.util

    import vae_core.views.lessons

    monkeypatch.setenv("VAE_LAB_MAX_EPOCHS", "20")
    monkeypatch.setenv("VAE_LAB_MAX_LATENT", "8")
    spec = importlib.util.spec_from_file_location("lessons_under_limits", vae_core.views.lessons.__file__)
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)  # dataclasses look their module up there
    spec.loader.exec_module(fresh)  # a separate copy: vae_core.views.lessons itself stays as imported
    kept = {item.key for item in fresh.LESSONS}
    assert kept == {"batch-norm", "depth-activation"}  # at most 20 epochs and 8 latent dimensions: the only ones
    assert set(fresh.UNAVAILABLE) == TECHNIQUES - kept
    assert "epochs" in fresh.UNAVAILABLE["beta"] and "latent_dim" in fresh.UNAVAILABLE["augmentation"]
    with pytest.raises(KeyError, match="not available on this server"):
        fresh.lesson("beta")
    # the presets that remain are exactly the checked ones: no default (which follows the limits) leaks in
    assert fresh.lesson("batch-norm").preset == lesson("batch-norm").preset


def test_beta_trades_reconstruction_for_a_prior_shaped_latent_space(runs):
    for r in trained(runs, lesson("beta")):
        b8, b1, b0 = (measure(r[label]) for label in ("β = 8", "β = 1", "β = 0"))
        # reconstruction: β = 0 best, β = 8 worst
        assert b0["rmse"] < b1["rmse"] - 0.03
        assert b8["rmse"] > b1["rmse"] + 0.05
        # the KL: β = 0 spends far more nats than β = 1, β = 8 none at all
        assert b0["kl"] > 10 * b1["kl"] and b1["kl"] > 1.0 and b8["kl"] < 0.1
        # β = 8: every reconstruction is the same image
        assert b8["spread"] < 0.02 < 0.5 * b1["spread"]
        # β = 0: prior samples land far from the training digits, β = 1's close to them, in absolute terms:
        # at least 4 in 5 of β = 1's are as close to a training digit as 9 in 10 unseen digits, at most 1 in 4
        # of β = 0's
        assert b1["data_like"] >= 0.8 and b0["data_like"] <= 0.25
        assert b0["prior"] > b1["prior"] + 0.03


def test_autoencoder_latent_space_has_holes_where_a_vae_has_digits(runs):
    for r in trained(runs, lesson("ae-vs-vae")):
        ae, vae = r["autoencoder"], r["VAE"]
        data = ae.data
        ae_prior, vae_prior = measure(ae)["prior"], measure(vae)["prior"]
        ae_fitted = metrics.fitted_sample_distance(ae.model, data.train, data.train)
        vae_fitted = metrics.fitted_sample_distance(vae.model, data.train, data.train)
        print(f"[ae-vs-vae] seed {ae.config.seed}: fitted-Gaussian samples: autoencoder {ae_fitted:.3f}, "
              f"VAE {vae_fitted:.3f}")
        assert ae_prior > vae_prior + 0.03
        assert ae_fitted > 1.05 * vae_prior and ae_fitted > 1.05 * vae_fitted
        # and the autoencoder is no worse at what it is trained for: it reconstructs better
        assert measure(ae)["rmse"] < measure(vae)["rmse"] - 0.03


def test_kl_warmup_keeps_information_that_constant_beta_squeezes_out(runs):
    for r in trained(runs, lesson("warmup")):
        warm, constant = measure(r["warm-up over 10 epochs"]), measure(r["constant β = 2"])
        assert constant["kl"] < collapse.ONE_BIT  # collapsed: below one bit (ln 2 nats)
        assert warm["kl"] >= 1.5 * constant["kl"]  # at least one and a half times that KL
        assert warm["val"] < constant["val"] - 0.3  # an ELBO at least 0.3 nats better


def test_too_high_a_learning_rate_blows_up_in_the_first_epoch(runs):
    for r in trained(runs, lesson("lr-too-high")):
        high, low = r["lr = 0.5"], r["lr = 0.01"]
        assert high.status == Status.DIVERGED and "learning rate" in high.message, high.message
        assert high.epochs_done == 0 and high.steps_done < high.trainer.steps_per_epoch
        assert low.status == Status.FINISHED
        curve = [row["val_neg_elbo"] for row in low.epoch_history]
        assert all(math.isfinite(v) for v in curve)
        assert curve[-1] < curve[0] - 1.5 and measure(low)["val"] < 26.5


def test_augmentation_narrows_the_gap_but_costs_validation_loss_on_digits(runs):
    for r in trained(runs, lesson("augmentation")):
        aug, plain = measure(r["augmented"]), measure(r["plain"])
        assert plain["gap"] > 5.0  # the plain model does fit its training digits better than new ones
        assert aug["gap"] < 0.5 * plain["gap"]  # more than halves the gap
        assert aug["val"] > plain["val"] + 10.0  # validation loss over 10 nats worse


def test_mse_sigma_decides_the_blur_bce_has_no_such_knob(runs):
    for r in trained(runs, lesson("bce-vs-mse")):
        bce, wide, narrow = (measure(r[label]) for label in ("BCE", "MSE, σ = 1", "MSE, σ = 0.2"))
        assert wide["kl"] < 0.1 and wide["spread"] < 0.02  # every reconstruction the same image
        assert wide["rmse"] > bce["rmse"] + 0.05 and wide["sharpness"] < bce["sharpness"] - 0.03
        assert narrow["rmse"] < bce["rmse"] - 0.015 and narrow["sharpness"] > bce["sharpness"] + 0.01


def test_cyclical_beta_restarts_raise_the_kl_and_end_above_constant_beta(runs):
    item = lesson("cyclical")
    for r in trained(runs, item):
        cyclical, constant = r["cyclical β"], r["constant β = 2"]
        cycles = metrics.kl_by_cycle(cyclical.step_history, item.preset.beta_cycles)
        print(f"[cyclical] seed {cyclical.config.seed}: (KL at start, KL at end) per cycle "
              + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in cycles))
        for (_, end_before), (start, end) in zip(cycles, cycles[1:]):
            assert start > 2 * end_before  # the KL more than doubles when β drops back to 0
            assert end > end_before  # and each cycle ends with more KL than the one before
        c, k = measure(cyclical), measure(constant)
        assert c["kl"] >= 1.5 * k["kl"]  # at least one and a half times constant β's KL
        assert c["val"] < k["val"] - 0.2  # an ELBO at least 0.2 nats better


def test_capacity_steers_the_kl_to_its_target(runs):
    item = lesson("capacity")
    for r in trained(runs, item):
        c6, c3, choked = (measure(r[label]) for label in ("C = 6, γ = 2", "C = 3, γ = 2", "C = 6, γ = 100"))
        no_code = measure(runs.get(lesson("beta").preset.replace(seed=r["C = 6, γ = 2"].config.seed)))
        assert abs(c6["kl"] - 6.0) < 0.75 and abs(c3["kl"] - 3.0) < 0.75
        assert c6["recon"] < c3["recon"] - 0.5
        # γ = 100: the KL still reaches C, but reconstructions are as poor as with no code at all (β = 8's)
        assert abs(choked["kl"] - 6.0) < 1.0
        assert choked["recon"] > no_code["recon"] - 0.2 and choked["recon"] > c3["recon"] + 3.0


def test_free_bits_keep_every_dimension_in_use(runs):
    item = lesson("free-bits")
    assert item.preset.latent_dim == 16 and item.preset.free_bits == 0.25  # what the claim names
    for r in trained(runs, item):
        free, constant = measure(r["free bits λ = 0.25"]), measure(r["constant β = 2"])
        # every one of the 16 dimensions keeps close to λ: over 0.15 nats (0.6 λ) each
        assert free["kl_min"] > 0.6 * item.preset.free_bits and free["dims"] == 16
        assert constant["dims"] <= 2  # constant β = 2: at most two dimensions above 0.1 nats
        assert free["recon"] < constant["recon"] - 2.0  # reconstructions over 2 nats better


def test_adversarial_term_makes_reconstructions_crisper_at_little_cost_in_elbo(runs):
    for r in trained(runs, lesson("adversarial")):
        adv, plain = measure(r["adversarial weight 20"]), measure(r["no adversarial term"])
        assert adv["sharpness"] > plain["sharpness"] + 0.01
        assert abs(adv["val"] - plain["val"]) < 1.0


def test_dropout_and_weight_decay_narrow_the_gap_but_cost_validation_loss(runs):
    for r in trained(runs, lesson("regularization")):
        plain = measure(r["plain"])
        assert plain["gap"] > 5.0
        for label in ("dropout 0.3", "AdamW, weight decay 1"):
            reg = measure(r[label])
            assert reg["gap"] < plain["gap"] - 1.0, label  # the gap narrows by over a nat
            assert reg["val"] > plain["val"] + 5.0, label  # validation loss over 5 nats worse


def test_batch_norm_lets_a_deep_network_learn_a_code(runs):
    for r in trained(runs, lesson("batch-norm")):
        bn, plain = measure(r["batch norm"]), measure(r["no batch norm"])
        assert plain["kl"] < 0.1 and plain["spread"] < 0.02
        assert bn["kl"] > 1.0
        assert bn["val"] < plain["val"] - 1.5


def test_early_stopping_saves_epochs_at_a_small_cost(runs):
    for r in trained(runs, lesson("early-stopping")):
        stopped, full = r["early stopping, patience 3"], r["all 60 epochs"]
        assert stopped.status == Status.EARLY_STOPPED and "Early stopping" in stopped.message
        assert full.status == Status.FINISHED and full.epochs_done == 60
        assert 20 <= stopped.epochs_done <= 40
        # the kept weights are the best epoch's: their validation loss is the lowest recorded
        assert measure(stopped)["val"] == pytest.approx(min(row["val_neg_elbo"] for row in stopped.epoch_history))
        assert 0.0 < measure(stopped)["val"] - measure(full)["val"] < 1.0


def test_one_cycle_schedule_gets_more_out_of_a_high_learning_rate(runs):
    for r in trained(runs, lesson("lr-schedule")):
        cycle, constant = measure(r["one-cycle, peak 0.01"]), measure(r["constant 0.01"])
        assert cycle["val"] < constant["val"] - 0.5  # an ELBO over half a nat better
        assert cycle["kl"] >= 1.25 * constant["kl"]  # a code that carries at least a quarter more KL


def first_epoch_below(run, nats: float) -> int:
    """The first epoch whose validation −ELBO is below `nats` (one past the last when none is)."""
    return next((row["epoch"] for row in run.epoch_history if row["val_neg_elbo"] < nats), run.epochs_done + 1)


def val_at(run, epoch: int) -> float:
    return run.epoch_history[epoch - 1]["val_neg_elbo"]


def test_standardised_inputs_help_sgd_and_leave_adam_alone(runs):
    item = lesson("normalize-inputs")
    for r in trained(runs, item):
        sgd_std = r["standardised, SGD"]
        adam_std, adam_raw = measure(r["standardised, Adam"]), measure(r["raw, Adam"])
        below = {label: first_epoch_below(r[label], 26.5) for label in ("standardised, SGD", "raw, SGD")}
        print(f"[normalize-inputs] seed {sgd_std.config.seed}: first epoch below 26.5 nats {below}")
        assert below["standardised, SGD"] <= below["raw, SGD"] - 2  # at least two epochs sooner
        assert abs(adam_std["val"] - adam_raw["val"]) < 0.5  # Adam: under half a nat apart
    # the targets stay pixels in [0, 1]; what the encoder sees does not
    data = sgd_std.data
    standardised = (data.train - sgd_std.model.input_mean) / sgd_std.model.input_std
    assert 0.0 <= float(data.train.min()) and float(data.train.max()) <= 1.0
    assert float(standardised.min()) < -1.0 and float(standardised.max()) > 10.0


def test_conv_reconstructs_better_than_fully_connected_at_the_same_budget(runs):
    item = lesson("conv-vs-mlp")
    shape = runs.get(item.preset).data.sample_shape
    counts = [parameter_count(build_model(config, shape)) for config in (item.preset, item.contrast)]
    assert counts == [101_401, 102_224]  # as the claim says; within 10 % of each other
    for r in trained(runs, item):
        conv, mlp = r["convolutional, 38 and 76 channels"], r["fully connected, 256 and 128"]
        print(f"[conv-vs-mlp] seed {conv.config.seed}: after 5 epochs {val_at(conv, 5):.2f} against "
              f"{val_at(mlp, 5):.2f}")
        assert measure(conv)["recon"] < measure(mlp)["recon"] - 0.3
        assert val_at(conv, 5) < val_at(mlp, 5) - 0.4


def gradient_ratio(config: TrainConfig, data) -> float:
    """At initialisation: the gradient norm of the encoder's first layer's weights over the decoder's last layer's,
    on 256 digits."""
    torch.manual_seed(config.seed)
    model = build_model(config, data.sample_shape)
    x = data.train[:256]
    raw, mu, logvar, _ = model(x, torch.Generator().manual_seed(0))
    vae_loss(raw, x, mu, logvar, config, model.is_image, config.beta, 0.0).loss.backward()
    first, last = (next(m for m in layers if isinstance(m, torch.nn.Linear))
                   for layers in (model.encoder, reversed(model.decoder)))
    return float(first.weight.grad.norm() / last.weight.grad.norm())


def test_a_deep_relu_network_stays_flat_where_gelu_learns(runs):
    item = lesson("depth-activation")
    for r in trained(runs, item):
        gelu, relu = r["4 × 256, GELU"], r["4 × 256, ReLU"]
        data = relu.data
        deep, shallow = gradient_ratio(relu.config, data), gradient_ratio(relu.config.replace(hidden=[256, 128]), data)
        deep_gelu = gradient_ratio(gelu.config, data)
        curve = [row["val_neg_elbo"] for row in relu.epoch_history]
        print(f"[depth-activation] seed {relu.config.seed}: first/last layer gradient at start: deep {deep:.2e}, "
              f"two layers {shallow:.2e}, deep GELU {deep_gelu:.2e}; ReLU's curve {min(curve):.2f} to {max(curve):.2f}")
        assert deep < 0.01 and 0.01 < shallow < 0.04  # over 100 times smaller, against about 50 times
        assert deep_gelu < 0.01  # GELU starts with gradients as small
        assert max(curve) - min(curve) < 0.5 and measure(relu)["kl"] < 0.1  # flat, and no code
        assert measure(gelu)["val"] < measure(relu)["val"] - 0.5 and measure(gelu)["kl"] > 0.5
        assert 6 <= first_epoch_below(gelu, 27.0) <= 14  # GELU leaves the plateau after about 10 epochs


def test_adaptive_optimisers_leave_the_plateau_before_sgd(runs):
    item = lesson("optimizers")
    for r in trained(runs, item):
        below = {label: first_epoch_below(r[label], 26.5) for label, _ in item.runs}
        print(f"[optimizers] seed {r['Adam, lr 0.002'].config.seed}: first epoch below 26.5 nats {below}")
        sgd = below.pop("SGD + momentum, lr 0.01")
        assert all(sgd >= epoch + 2 for epoch in below.values())
        adam = measure(r["Adam, lr 0.002"])["val"]
        assert all(adam < measure(r[label])["val"] - 0.2 for label in ("SGD + momentum, lr 0.01", "RMSprop, lr 0.001"))


def test_l1_zeroes_weights_where_l2_only_shrinks_them(runs):
    item = lesson("l1-vs-l2")
    for r in trained(runs, item):
        weights = {label: run_points.weights_of(r[label].model) for label, _ in item.runs}
        share = {label: run_points.near_zero_share(w) for label, w in weights.items()}
        size = {label: float(abs(w).mean()) for label, w in weights.items()}
        print(f"[l1-vs-l2] seed {r['no penalty'].config.seed}: share below 0.001 {share}; mean |w| {size}")
        assert share["L1, 0.0001"] > 0.4
        assert share["L2, weight decay 0.1"] < 0.03 and share["no penalty"] < 0.03
        assert size["L2, weight decay 0.1"] < 0.9 * size["no penalty"]  # L2 shrinks them by over a tenth
        plain = measure(r["no penalty"])["val"]
        assert all(abs(measure(r[label])["val"] - plain) < 0.3 for label in ("L1, 0.0001", "L2, weight decay 0.1"))


def test_more_latent_dimensions_raise_the_rate_and_stop_helping_reconstruction(runs):
    item = lesson("latent-size")
    for r in trained(runs, item):
        two, eight, many = (measure(r[f"latent {n}"]) for n in (2, 8, 32))
        assert eight["kl"] > two["kl"] + 1.0 and many["kl"] > eight["kl"] + 1.0  # the rate rises at each step
        assert eight["recon"] < two["recon"] - 30.0  # 2 → 8: far better reconstructions
        assert many["recon"] > eight["recon"] - 1.0  # 8 → 32: no better
        assert many["dims"] <= 20
        assert two["data_like"] > 0.9 and eight["data_like"] < 0.85 and many["data_like"] < 0.85  # samples change


def test_larger_beta_does_not_disentangle_the_shapes_at_this_budget(runs):
    """Not through `trained`: its distances to the nearest of 6,000 training shapes (1,024 pixels each) cost
    more than the runs, and this claim needs only the KL and the MIG."""
    item = lesson("shapes-beta")
    for four, one in zip(runs.seeds(item.preset), runs.seeds(item.contrast)):
        mig = {label: quality.model_disentanglement(run.model, run.data).mig for label, run in (("β = 4", four),
                                                                                              ("β = 1", one))}
        print(f"[shapes-beta] seed {four.config.seed} ({four.cpu_seconds:.1f} and {one.cpu_seconds:.1f} s CPU): "
              f"validation KL {four.val['kl']:.2f} and {one.val['kl']:.2f}; MIG {mig}")
        assert four.val["kl"] < 2 / 3 * one.val["kl"]
        assert max(mig.values()) < 0.15 and mig["β = 4"] < mig["β = 1"] + 0.05


def test_every_preset_trains_within_30_seconds_of_cpu(runs):
    """Runs after the claim tests, so every configuration is already trained (seed 0 as in the app)."""
    for item in LESSONS:
        for label, config in item.runs:
            run = runs.get(config)
            print(f"[cpu] {item.key} / {label}: {run.cpu_seconds:.1f} s")
            assert run.cpu_seconds < CPU_SECONDS, (item.key, label)
