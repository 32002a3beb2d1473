"""The script's optimisation: the optimiser and learning-rate schedule of vae_core/maths/schedules.py, and the
augmentation of vae_core/maths/augment.py (drawing from the run's generator in the same order)."""

from __future__ import annotations

from dataclasses import dataclass

from vae_core.config import TrainConfig


def optimizer_code(config: TrainConfig) -> str:
    """The optimiser, with torch's fused CPU kernels where VAE Lab uses them (the same update, faster)."""
    decay = f", weight_decay={config.weight_decay!r}" if config.weight_decay else ""
    name = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "sgd": "SGD"}[config.optimizer]
    if config.optimizer in ("adam", "adamw"):
        args = f"lr={config.lr!r}{decay}, fused=True"
    elif config.optimizer == "rmsprop":
        args = f"lr={config.lr!r}{decay}, momentum={config.momentum!r}"
    else:
        nesterov = ", nesterov=True" if config.nesterov else ""
        args = f"lr={config.lr!r}, momentum={config.momentum!r}{nesterov}{decay}, fused=True"
    note = ("# AdamW: weight decay applied to the weights directly, not through the gradient\n"
            if config.optimizer == "adamw" and config.weight_decay else
            "# Weight decay: an L2 pull of every parameter towards 0\n" if config.weight_decay else "")
    return f"{note}optimizer = torch.optim.{name}(model.parameters(), {args})"


@dataclass(frozen=True)
class Schedule:
    setup: str  # the scheduler(s), after the optimiser
    per_step: str  # after each optimizer.step() ("" for none)
    per_epoch: str  # after each validation, on its −ELBO ("" for none)


def schedule_code(config: TrainConfig, steps_per_epoch: int) -> Schedule:
    """The learning-rate schedule as `LRSchedule` builds and steps it: a per-step scheduler, an optional linear
    warm-up before it (SequentialLR), or reduce-on-plateau stepped once per epoch on the validation −ELBO. A warm-up
    that rounds to no step at all (at the app's `steps_per_epoch`) is left out, as `LRSchedule` leaves it out."""
    name, lines = config.lr_schedule, []
    warm = min(config.epochs * steps_per_epoch - 1, round(config.lr_warmup_epochs * steps_per_epoch)) > 0
    if warm:
        lines.append(f"warmup_steps = min(TOTAL_STEPS - 1, round({config.lr_warmup_epochs!r} * steps_per_epoch))")
    if name == "plateau":
        lines.append(f"# Reduce on plateau: the learning rate × {config.lr_gamma!r} once the validation −ELBO has not "
                     f"improved for {config.lr_patience + 1} epochs")
        lines.append(f"plateau = lr_scheduler.ReduceLROnPlateau(optimizer, factor={config.lr_gamma!r}, "
                     f"patience={config.lr_patience})")
    main = {
        "step": ("# Step decay: the learning rate × {g!r} every {e} epochs",
                 "lr_scheduler.StepLR(optimizer, step_size={e} * steps_per_epoch, gamma={g!r})"),
        "exponential": ("# Exponential decay: the learning rate × {g!r} per epoch, a little after every step",
                        "lr_scheduler.ExponentialLR(optimizer, gamma={g!r} ** (1 / steps_per_epoch))"),
        "cosine": ("# Cosine annealing: the learning rate falls along a half cosine to 0 by the run's end",
                   "lr_scheduler.CosineAnnealingLR(optimizer, T_max=TOTAL_STEPS{after})"),
        "onecycle": ("# One-cycle (Smith 2018): the learning rate warms up to its peak, then anneals far below it",
                     "lr_scheduler.OneCycleLR(optimizer, max_lr={lr!r}, total_steps=TOTAL_STEPS + 1)"),
    }.get(name)
    fill = dict(g=config.lr_gamma, e=config.lr_step_epochs, lr=config.lr, after=" - warmup_steps" if warm else "")
    if warm:
        lines.append("# Learning-rate warm-up: from 1 % of the rate to all of it, linearly over the first "
                     f"{config.lr_warmup_epochs!r} epochs")
        lines.append("warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup_steps)")
    if warm and main:
        lines.append(main[0].format(**fill))
        lines.append(f"then = {main[1].format(**fill)}")
        lines.append("scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, then], milestones=[warmup_steps])")
    elif main:
        lines += [main[0].format(**fill), f"scheduler = {main[1].format(**fill)}"]
    elif warm:
        lines.append("scheduler = warmup")
    per_step = ""
    if main or warm:
        per_step = "if step < warmup_steps:\n    scheduler.step()" if name == "plateau" else "scheduler.step()"
    per_epoch = ""
    if name == "plateau":
        per_epoch = "plateau.step(neg_elbo)"
        if warm:
            per_epoch = "if epoch * steps_per_epoch >= warmup_steps:\n    " + per_epoch
    return Schedule("\n".join(lines), per_step, per_epoch)


AUGMENT = '''
def augment(x):
    """Augmentation: a random affine warp of each image, values kept in [0, 1]:
    {what}."""
    n = len(x)

    def uniform(scale):
        return (torch.rand(n, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians({rotation!r}))
    zoom = 1 + uniform({zoom!r})
    shift_x, shift_y = uniform(2 * {shift!r}), uniform(2 * {shift!r})  # grid coordinates span 2
    {flip}
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, shift_x], 1), torch.stack([sin * flip, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)'''


def augment_code(config: TrainConfig) -> str:
    if not config.augment:
        return ""
    what = (f"rotation up to ±{config.aug_rotation!r}°, zoom ±{config.aug_zoom!r}, shift ±{config.aug_shift!r} of "
            "the side" + (", mirrored half the time" if config.aug_flip else ""))
    flip = ("flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)  # mirror half of them"
            if config.aug_flip else "flip = torch.ones(n)")
    return AUGMENT.strip("\n").format(what=what, rotation=config.aug_rotation, zoom=config.aug_zoom,
                                      shift=config.aug_shift, flip=flip)
