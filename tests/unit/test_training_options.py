"""Each training option changes what training does: every test here fails if its option is ignored."""

import math
import threading

import pytest
import torch
import torch.nn.functional as F

from vae_core.config import ACTIVATIONS, OPTIMIZERS, TrainConfig
from vae_core.data import Dataset
from vae_core.maths.models import Dropout, parameter_count
from vae_core.maths.schedules import MAX_CURVE_STEPS, LRSchedule, build_optimizer, lr_curve
from vae_core.train import Status, Trainer, fit

FAST = dict(epochs=8, batch_size=64, lr=3e-3, hidden=[128], latent_dim=4)


def trained(config: TrainConfig, data) -> tuple[Trainer, dict]:
    """A run of `config` trained by `fit` to its last epoch, and its validation losses."""
    trainer = Trainer(config, data)
    outcome = fit(trainer)
    assert outcome.status == Status.FINISHED, outcome.message
    return trainer, trainer.evaluate(data.val)


def history(config: TrainConfig, data) -> tuple[Trainer, object, list[dict]]:
    """`fit` of `config` from a fresh trainer: the trainer, its outcome and its epoch rows."""
    trainer, epochs = Trainer(config, data), []
    outcome = fit(trainer, on_epoch=lambda epoch: epochs.append(epoch.row))
    return trainer, outcome, epochs


def test_high_beta_lowers_kl_and_raises_reconstruction_error(digits):
    _, low = trained(TrainConfig(beta=0.0, **FAST), digits)
    _, high = trained(TrainConfig(beta=8.0, **FAST), digits)
    assert high["kl"] < 0.3 * low["kl"]
    assert high["recon"] > low["recon"] + 2


def test_free_bits_keep_each_dimension_near_or_above_lambda(digits):
    from vae_core.views.explore import encode
    from vae_core.maths.objectives import kl_per_dim

    def kl_dims(config):
        trainer, _ = trained(config, digits)
        mu, logvar = encode(trainer.model, digits.val)
        return kl_per_dim(mu, logvar).mean(0)

    config = TrainConfig(beta=8.0, **{**FAST, "epochs": 16})
    with_free_bits, plain = kl_dims(config.replace(free_bits=1.0)), kl_dims(config)
    assert with_free_bits.min() > 0.7, with_free_bits  # measured: 0.80 to 1.03 nats
    assert plain.max() < 0.05, plain  # β = 8 alone collapses every dimension


def test_capacity_objective_keeps_kl_near_its_target(digits):
    config = TrainConfig(capacity=True, capacity_max=6.0, capacity_gamma=50.0, capacity_ramp_epochs=4, **FAST)
    _, result = trained(config, digits)
    assert abs(result["kl"] - 6.0) < 1.0, result
    _, other = trained(config.replace(capacity_max=12.0), digits)
    assert abs(other["kl"] - 12.0) < 1.5, other


def test_validation_loss_is_the_objective_trained_on(digits):
    from vae_core.views.explore import encode
    from vae_core.maths.objectives import capacity_at, kl_per_dim

    config = TrainConfig(capacity=True, capacity_max=6.0, capacity_gamma=50.0, capacity_ramp_epochs=4,
                         **{**FAST, "epochs": 2})
    trainer, val = trained(config, digits)
    c = capacity_at(trainer.step, config, trainer.steps_per_epoch)
    assert c == pytest.approx(3.0)  # half way up the ramp
    assert val["loss"] == pytest.approx(val["recon"] + 50.0 * abs(val["kl"] - c), rel=1e-6)
    assert abs(val["loss"] - val["neg_elbo"]) > 10  # far from recon + β·KL (β = 1)

    trainer, val = trained(TrainConfig(free_bits=1.0, beta=4.0, **{**FAST, "epochs": 2}), digits)
    mu, logvar = encode(trainer.model, digits.val)
    kl_dims = kl_per_dim(mu, logvar).mean(0)
    assert kl_dims.min() < 1.0  # so the floor λ = 1 changes the value
    assert val["loss"] == pytest.approx(val["recon"] + 4.0 * kl_dims.clamp_min(1.0).sum().item(), rel=1e-5)


def test_autoencoder_mode_reports_zero_kl_and_is_deterministic(digits):
    trainer, result = trained(TrainConfig(mode="ae", **FAST), digits)
    assert result["kl"] == 0.0
    x = digits.val[:4]
    trainer.model.train()
    assert torch.equal(trainer.model(x)[0], trainer.model(x)[0])


def test_augmentation_changes_training_batches_only(digits):
    config = TrainConfig(augment=True, aug_rotation=30.0, aug_shift=0.2, **FAST)
    augmented = Trainer(config, digits)
    plain = Trainer(config.replace(augment=False), digits)
    xa, xp = next(augmented.batches()), next(plain.batches())
    assert xa.shape == xp.shape and not torch.allclose(xa, xp, atol=0.05)
    assert 0.0 <= xa.min() and xa.max() <= 1.0
    plain.load_weights(augmented.weights())
    assert augmented.evaluate(digits.val) == plain.evaluate(digits.val)


def test_flip_mirrors_some_images(digits):
    config = TrainConfig(augment=True, aug_rotation=0.0, aug_shift=0.0, aug_zoom=0.0, aug_flip=True, **FAST)
    from vae_core.maths.augment import augment_batch
    x = digits.train[:64]
    out = augment_batch(x, config, torch.Generator().manual_seed(0))
    mirrored = torch.isclose(out, x.flip(-1), atol=1e-4).flatten(1).all(1)
    kept = torch.isclose(out, x, atol=1e-4).flatten(1).all(1)
    assert mirrored.any() and kept.any() and (mirrored | kept).all()


def test_weight_decay_shrinks_weights(digits):
    def norm(config):
        trainer, _ = trained(config, digits)
        return sum(p.norm() ** 2 for n, p in trainer.model.named_parameters() if "weight" in n).sqrt()

    plain = norm(TrainConfig(**FAST))
    assert norm(TrainConfig(optimizer="adam", weight_decay=0.1, **FAST)) < 0.5 * plain  # L2 in the gradient
    assert norm(TrainConfig(optimizer="adamw", weight_decay=1.0, **FAST)) < 0.85 * plain  # decoupled decay


def test_l1_makes_weights_sparser(digits):
    plain, _ = trained(TrainConfig(**FAST), digits)
    sparse, _ = trained(TrainConfig(l1=1e-3, **FAST), digits)
    small = lambda t: torch.cat([p.flatten().abs() < 1e-2 for n, p in t.model.named_parameters()  # noqa: E731
                                 if "weight" in n]).float().mean()
    assert small(sparse) > small(plain) + 0.1


def test_dropout_and_batch_norm_make_training_mode_differ(digits):
    for options in ({"dropout": 0.5}, {"batch_norm": True}):
        trainer = Trainer(TrainConfig(mode="ae", **FAST, **options), digits)
        x = digits.val[:32]
        trainer.model.train()
        train_out = trainer.model(x)[0]
        trainer.model.eval()
        assert not torch.allclose(train_out, trainer.model(x)[0]), options
    plain = Trainer(TrainConfig(mode="ae", **FAST), digits).model
    assert not any(isinstance(m, (Dropout, torch.nn.BatchNorm1d)) for m in plain.modules())


def test_dropout_masks_come_from_the_runs_own_generator(digits):
    """Two identical dropout runs trained at once, next to a third run, give the same losses as one alone."""
    config = TrainConfig(dropout=0.5, **{**FAST, "epochs": 1})
    losses = {}

    def train(key, config):
        trainer = Trainer(config, digits)
        losses[key] = [trainer.train_step(x)["loss"] for _ in range(3) for x in trainer.batches()]

    train("alone", config)
    threads = [threading.Thread(target=train, args=args)
               for args in (("a", config), ("other", config.replace(seed=1)), ("b", config))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert losses["a"] == losses["b"] == losses["alone"] != losses["other"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains(name, digits):
    config = TrainConfig(optimizer=name, **{**FAST, "lr": 0.05 if name == "sgd" else 3e-3})
    trainer = Trainer(config, digits)
    assert type(trainer.optimizer).__name__.lower() == name
    before = trainer.evaluate(digits.val)["neg_elbo"]
    for _ in range(3):
        for x in trainer.batches():
            trainer.train_step(x)
    assert trainer.evaluate(digits.val)["neg_elbo"] < before - 5


def test_input_normalisation_standardises_the_encoder_input(digits):
    trainer = Trainer(TrainConfig(normalize_inputs=True, **FAST), digits)
    assert torch.allclose(trainer.model.input_mean, digits.train.mean(0))
    assert not torch.allclose(Trainer(TrainConfig(**FAST), digits).model.input_std, trainer.model.input_std)
    x = digits.val[:8]
    normalised = trainer.model.encode(x)[0]
    trainer.model.normalize_inputs = False
    assert not torch.allclose(normalised, trainer.model.encode(x)[0])


def test_gradient_clipping_bounds_the_gradient_norm(digits):
    trainer = Trainer(TrainConfig(grad_clip=0.5, **FAST), digits)
    trainer.train_step(next(trainer.batches()))
    norm = torch.cat([p.grad.flatten() for p in trainer.model.parameters()]).norm()
    assert norm <= 0.5 + 1e-4


def test_adversarial_term_trains_a_discriminator(digits):
    trainer = Trainer(TrainConfig(adv_weight=1.0, **FAST), digits)
    before = [p.clone() for p in trainer.discriminator.parameters()]
    row = trainer.train_step(next(trainer.batches()))
    assert {"adv_g", "adv_d"} <= row.keys()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))
    assert Trainer(TrainConfig(**FAST), digits).discriminator is None
    plain = Trainer(TrainConfig(**FAST), digits)
    x = next(plain.batches())
    adv = Trainer(TrainConfig(adv_weight=1.0, **FAST), digits)
    plain.train_step(x), adv.train_step(x)
    assert not torch.equal(plain.model.to_mu.weight, adv.model.to_mu.weight)


def test_convolutional_model_trains_on_images(digits):
    config = TrainConfig(architecture="conv", hidden=[16, 32], epochs=3, batch_size=64, lr=3e-3, latent_dim=4)
    trainer = Trainer(config, digits)
    assert any(isinstance(m, torch.nn.Conv2d) for m in trainer.model.modules())
    before = trainer.evaluate(digits.val)["neg_elbo"]
    _, after = trained(config, digits)
    assert after["neg_elbo"] < before - 5


def test_same_config_and_seed_give_the_same_losses(digits):
    a, b = Trainer(TrainConfig(**FAST), digits), Trainer(TrainConfig(**FAST), digits)
    c = Trainer(TrainConfig(**{**FAST, "lr": 3e-3}, seed=1), digits)
    rows = [[t.train_step(x)["loss"] for x in t.batches()] for t in (a, b, c)]
    assert rows[0] == rows[1] and rows[0] != rows[2]


def test_lr_schedules_have_their_shapes():
    spe = 10
    base = TrainConfig(epochs=20, lr=1e-2)
    _, constant = lr_curve(base, spe, points=10_000)
    assert set(constant) == {1e-2}
    _, step = lr_curve(base.replace(lr_schedule="step", lr_step_epochs=5, lr_gamma=0.5), spe, 10_000)
    assert step[49] == pytest.approx(1e-2) and step[50] == pytest.approx(5e-3) and step[150] == pytest.approx(1.25e-3)
    _, exp = lr_curve(base.replace(lr_schedule="exponential", lr_gamma=0.5), spe, 10_000)
    assert exp[10] == pytest.approx(5e-3) and exp[20] == pytest.approx(2.5e-3)
    _, cos = lr_curve(base.replace(lr_schedule="cosine"), spe, 10_000)
    assert cos[0] == pytest.approx(1e-2) and cos[100] == pytest.approx(5e-3, rel=0.02) and cos[-1] < 1e-4
    _, one = lr_curve(base.replace(lr_schedule="onecycle"), spe, 10_000)
    peak = max(range(len(one)), key=one.__getitem__)
    assert one[0] < 1e-3 and one[peak] == pytest.approx(1e-2, rel=0.01) and 40 <= peak <= 80 and one[-1] < 1e-5
    _, warm = lr_curve(base.replace(lr_schedule="cosine", lr_warmup_epochs=2), spe, 10_000)
    assert warm[0] == pytest.approx(1e-4) and warm[10] == pytest.approx(5.05e-3, rel=0.01)
    assert max(warm) == pytest.approx(1e-2) and warm[-1] < 1e-4


CURVES = {"constant": {}, "step": dict(lr_schedule="step", lr_step_epochs=3),
          "exponential": dict(lr_schedule="exponential"), "cosine": dict(lr_schedule="cosine"),
          "onecycle": dict(lr_schedule="onecycle"),
          "warm-up": dict(lr_schedule="cosine", lr_warmup_epochs=0.3),
          "plateau": dict(lr_schedule="plateau", lr_warmup_epochs=1.5)}


def every_step(config: TrainConfig, spe: int) -> list[float]:
    """The LR before each step of a real run, every step simulated."""
    optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], config)
    schedule, lrs = LRSchedule(optimizer, config, spe), []
    for _ in range(config.epochs * spe):
        lrs.append(schedule.lr)
        optimizer.step()
        schedule.after_step()
    return lrs


@pytest.mark.parametrize("name", list(CURVES))
def test_lr_curve_of_a_run_within_the_cap_is_every_step_exactly(name):
    config, spe = TrainConfig(epochs=10, lr=1e-2, **CURVES[name]), MAX_CURVE_STEPS // 10
    full = every_step(config, spe)
    steps, lrs = lr_curve(config, spe)
    assert steps == list(range(0, len(full), len(full) // 400)) and lrs == [full[s] for s in steps]


def with_scheduler_steps(monkeypatch, call):
    """call()'s result, and the number of LR scheduler steps it took."""
    calls, real = [], LRSchedule.after_step

    def counted(self):
        calls.append(1)
        real(self)
    monkeypatch.setattr(LRSchedule, "after_step", counted)
    result = call()
    monkeypatch.undo()
    return result, len(calls)


@pytest.mark.parametrize("name", list(CURVES))
def test_lr_curve_of_a_longer_run_is_bounded_and_keeps_its_shape(name, monkeypatch):
    config, spe = TrainConfig(epochs=10, lr=1e-2, **CURVES[name]), 1257  # 12,570 steps, 2.514 per simulated one
    full = every_step(config, spe)
    (steps, lrs), taken = with_scheduler_steps(monkeypatch, lambda: lr_curve(config, spe, points=10_000))
    assert taken <= MAX_CURVE_STEPS
    assert steps[0] == 0 and len(full) - 3 <= steps[-1] < len(full) and steps == sorted(set(steps))
    assert lrs[0] == pytest.approx(full[0]) and lrs[-1] == pytest.approx(full[-1], rel=0.05, abs=1e-7)
    for step, lr in zip(steps, lrs):  # each LR is one the real run gives within one simulated step
        near = full[max(0, step - 3):step + 4]
        assert min(near) * (1 - 1e-9) <= lr <= max(near) * (1 + 1e-9), step
    if name == "step":
        drops = [s for s, before, after in zip(steps[1:], lrs, lrs[1:]) if after < before]
        assert drops == [3 * spe, 6 * spe, 9 * spe]


def test_lr_curve_of_the_longest_valid_run_simulates_a_bounded_number_of_steps(monkeypatch):
    config = TrainConfig(epochs=500, lr=1e-2, lr_schedule="cosine")
    (steps, lrs), taken = with_scheduler_steps(monkeypatch, lambda: lr_curve(config, 1257))  # 628,500 steps
    assert taken <= MAX_CURVE_STEPS
    assert steps[0] == 0 and steps[-1] > 628_500 - 1257 and lrs[0] == 1e-2 and lrs[-1] < 1e-6


def test_plateau_schedule_cuts_the_lr_when_validation_stalls(digits):
    trainer = Trainer(TrainConfig(lr_schedule="plateau", lr_patience=1, lr_gamma=0.1, **FAST), digits)
    for loss in (10.0, 9.0, 9.0, 9.0):
        trainer.end_epoch(loss)
    assert trainer.schedule.lr == pytest.approx(3e-4)


def test_live_lr_change_keeps_optimiser_state_and_schedule_shape(digits):
    trainer = Trainer(TrainConfig(lr_schedule="cosine", **FAST), digits)
    batches = trainer.batches()
    for _ in range(5):
        trainer.train_step(next(batches))
    state = trainer.optimizer.state[trainer.model.to_mu.weight]["exp_avg"].clone()
    lr_before = trainer.schedule.lr
    trainer.set_lr(3e-4)
    assert trainer.schedule.lr == pytest.approx(lr_before / 10)
    assert torch.equal(trainer.optimizer.state[trainer.model.to_mu.weight]["exp_avg"], state)
    trainer.train_step(next(batches))
    assert trainer.schedule.lr < lr_before / 10  # still annealing


def test_early_stopping_restores_the_best_weights(digits):
    # A tiny training set and a large model overfit: validation loss turns up, and the run stops.
    small = Dataset("digits-small", "image", digits.train[:60], digits.val, digits.test, None, None, None, None)
    config = TrainConfig(epochs=300, batch_size=20, lr=3e-3, hidden=[512, 512], latent_dim=16, early_stopping=True,
                         patience=5, beta=0.1)
    trainer, outcome, epochs = history(config, small)
    assert outcome.status == Status.EARLY_STOPPED and "Early stopping" in outcome.message
    vals = [row["val_neg_elbo"] for row in epochs]
    best = min(range(len(vals)), key=vals.__getitem__)
    assert len(vals) < 300 and best < len(vals) - 1 and outcome.best_epoch == best + 1
    assert f"restored the best weights (epoch {best + 1})" in outcome.message
    final = trainer.evaluate(small.val)["neg_elbo"]
    assert final == pytest.approx(vals[best], rel=1e-6)
    assert final < vals[-1]


# --- one option at a time, each against its exact expected value or a measured difference ----------

REFERENCE_ACTIVATIONS = {"relu": F.relu, "leaky_relu": lambda h: F.leaky_relu(h, 0.2), "elu": F.elu,
                         "tanh": torch.tanh, "gelu": F.gelu}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_is_the_one_chosen_in_encoder_and_decoder(name, digits):
    model = Trainer(TrainConfig(activation=name, hidden=[16], latent_dim=2), digits).model
    act, x, z = REFERENCE_ACTIVATIONS[name], digits.val[:8], torch.randn(8, 2)
    assert torch.allclose(model.encoder(x), act(model.encoder[1](x.flatten(1))), atol=1e-6)
    assert torch.allclose(model.decoder(z), model.decoder[2](act(model.decoder[0](z))), atol=1e-6)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.5, True), (0.9, True)])
def test_sgd_momentum_and_nesterov_follow_their_update_rules(momentum, nesterov):
    p = torch.zeros(1, requires_grad=True)
    optimizer = build_optimizer([p], TrainConfig(optimizer="sgd", lr=0.1, momentum=momentum, nesterov=nesterov))
    for _ in range(2):
        p.grad = torch.ones(1)
        optimizer.step()
    # gradient 1 twice: the buffer is 1, then 1 + m; Nesterov steps by 1 + m·buffer, plain momentum by the buffer
    steps = (1 + momentum, 1 + momentum * (1 + momentum)) if nesterov else (1, 1 + momentum)
    assert p.item() == pytest.approx(-0.1 * sum(steps))


@pytest.mark.parametrize("config,reference", [
    (TrainConfig(optimizer="adam", weight_decay=0.01), lambda p: torch.optim.Adam(p, lr=2e-3, weight_decay=0.01)),
    (TrainConfig(optimizer="adamw", weight_decay=0.01), lambda p: torch.optim.AdamW(p, lr=2e-3, weight_decay=0.01)),
    (TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=2e-3, momentum=0.9, nesterov=True, weight_decay=0.01)),
])
def test_fused_optimizers_make_the_update_of_torchs_default_ones(config, reference):
    torch.manual_seed(0)
    start, grads = torch.randn(3, 50), [torch.randn(3, 50) for _ in range(5)]
    fused, plain = start.clone().requires_grad_(), start.clone().requires_grad_()
    ours, theirs = build_optimizer([fused], config), reference([plain])
    assert ours.defaults["fused"] and not theirs.defaults["fused"]
    for g in grads:
        fused.grad, plain.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    assert not torch.equal(fused, start)
    torch.testing.assert_close(fused, plain)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_momentum_accumulates_its_steps(momentum):
    p = torch.zeros(1, requires_grad=True)
    optimizer = build_optimizer([p], TrainConfig(optimizer="rmsprop", lr=0.1, momentum=momentum))
    for _ in range(2):
        p.grad = torch.ones(1)
        optimizer.step()
    first, second = 1 / 0.01 ** 0.5, 1 / 0.0199 ** 0.5  # 1/√v with v = 0.01, then 0.99·0.01 + 0.01
    assert p.item() == pytest.approx(-0.1 * (first + momentum * first + second), rel=1e-5)


VAL_SCRIPT = [10.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5, 8.4, 8.3, 8.2]  # epoch 2 gains 1 nat, each later one 0.1


@pytest.mark.parametrize("patience,min_delta,epochs_run,best_epoch", [
    (2, 0.0, 10, 10),  # every epoch improves
    (2, 0.5, 4, 2),  # gains of 0.1 do not count: two epochs after epoch 2 it stops
    (4, 0.5, 6, 2),  # ... or four
    (2, 0.15, 10, 10),  # the gain counts from the best epoch: every second epoch clears 0.15
    (2, 0.25, 4, 2),
])
def test_early_stopping_patience_and_min_delta(digits, monkeypatch, patience, min_delta, epochs_run, best_epoch):
    evaluate = Trainer.evaluate

    def scripted(self, x, should_stop=lambda: False):
        return {**evaluate(self, x, should_stop), "neg_elbo": VAL_SCRIPT[self.epoch]}
    monkeypatch.setattr(Trainer, "evaluate", scripted)
    tiny = Dataset("tiny", "image", digits.train[:32], digits.val[:32], digits.test[:32], None, None, None, None)
    config = TrainConfig(epochs=10, batch_size=32, hidden=[8], early_stopping=True, patience=patience,
                         min_delta=min_delta)
    _, outcome, epochs = history(config, tiny)
    assert (len(epochs), outcome.best_epoch) == (epochs_run, best_epoch), outcome.message
    assert outcome.status == (Status.FINISHED if epochs_run == 10 else Status.EARLY_STOPPED)


@pytest.mark.parametrize("mode", ["vae", "ae"])
@pytest.mark.parametrize("hidden", [[32], [32, 16], [24, 12, 6]])
def test_hidden_widths_shape_the_mlp_and_its_parameter_count(digits, hidden, mode):
    model = Trainer(TrainConfig(hidden=hidden, latent_dim=3, mode=mode), digits).model
    encoder, decoder = [64, *hidden], [3, *reversed(hidden), 64]
    heads = [(hidden[-1], 3)] * (2 if mode == "vae" else 1)  # μ, and log σ² for a VAE
    expected = [*zip(encoder, encoder[1:]), *zip(decoder, decoder[1:]), *heads]
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)] == expected
    assert parameter_count(model) == sum(i * o + o for i, o in expected)


def test_parameter_counts_by_hand(digits):
    # MLP 64-32-16, latent 3: 2080 + 528 (encoder) + 51 + 51 (μ, log σ²) + 64 + 544 + 2112 (decoder)
    assert parameter_count(Trainer(TrainConfig(hidden=[32, 16], latent_dim=3), digits).model) == 5430
    # conv 4, 8 channels on 8×8, latent 2: 68 + 520 (convs) + 66 + 66 (heads on 8·2·2) + 96 (linear) + 516 + 65
    conv = Trainer(TrainConfig(architecture="conv", hidden=[4, 8], latent_dim=2), digits).model
    assert parameter_count(conv) == 1397


SIDE, OFFSET = 32, 8.0  # a blob 8 px right of the image centre
_rows, _cols = torch.meshgrid(torch.arange(SIDE, dtype=torch.float32), torch.arange(SIDE, dtype=torch.float32),
                              indexing="ij")
_CENTRE = (SIDE - 1) / 2


def blob_positions(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre of mass of each image relative to the image centre, in pixels (x right, y down)."""
    w = x[:, 0]
    total = w.sum((1, 2))
    return (w * _cols).sum((1, 2)) / total - _CENTRE, (w * _rows).sum((1, 2)) / total - _CENTRE


AUGMENTATIONS = {"aug_shift": 0.1, "aug_rotation": 30.0, "aug_zoom": 0.3}


@pytest.mark.parametrize("option", ["none", *AUGMENTATIONS])
def test_each_augmentation_moves_the_blob_its_own_way(option):
    from vae_core.maths.augment import augment_batch

    blob = torch.exp(-((_cols - _CENTRE - OFFSET) ** 2 + (_rows - _CENTRE) ** 2) / (2 * 1.5 ** 2))
    x = blob.expand(256, 1, SIDE, SIDE).clone()
    settings = {name: value if name == option else 0.0 for name, value in AUGMENTATIONS.items()}
    out = augment_batch(x, TrainConfig(augment=True, **settings), torch.Generator().manual_seed(0))
    cx, cy = blob_positions(out)
    radius, angle = torch.hypot(cx, cy), torch.rad2deg(torch.atan2(cy, cx))
    if option == "none":
        assert torch.allclose(out, x, atol=1e-6)
    elif option == "aug_shift":  # up to 0.1 · 32 = 3.2 px each way; shape and size kept
        dx, dy = cx - OFFSET, cy
        assert dx.abs().max() <= 3.25 and dy.abs().max() <= 3.25 and min(dx.abs().max(), dy.abs().max()) > 2.5
        assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.01)
    elif option == "aug_rotation":  # up to 30° about the centre: the distance from it is kept
        assert torch.allclose(radius, torch.full_like(radius, OFFSET), atol=0.05)
        assert 25 < angle.abs().max() <= 30.5
    else:  # zoom by 0.7 to 1.3 about the centre: the direction from it is kept
        assert angle.abs().max() < 0.1
        assert 0.69 * OFFSET <= radius.min() < 0.75 * OFFSET and 1.25 * OFFSET < radius.max() <= 1.31 * OFFSET


@pytest.mark.parametrize("side,channels", [(28, 1), (32, 1), (64, 3)])
def test_convolutional_model_runs_and_trains_a_step_at_28_32_and_64_pixels(side, channels):
    x = torch.rand(16, channels, side, side, generator=torch.Generator().manual_seed(0))
    data = Dataset("noise", "image", x, x[:8], x[:8], None, None, None, None)
    trainer = Trainer(TrainConfig(architecture="conv", hidden=[4, 8, 8], latent_dim=2, batch_size=16), data)
    raw, mu, _, _ = trainer.model(x)
    assert raw.shape == x.shape and mu.shape == (16, 2)  # 28 → 14 → 7 → 3 and back needs output padding
    before = trainer.weights()
    assert math.isfinite(trainer.train_step(x)["loss"])
    assert all(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert math.isfinite(trainer.evaluate(data.val)["neg_elbo"])
