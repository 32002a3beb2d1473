"""Learning-rate schedules built from torch.optim.lr_scheduler, with optional linear warm-up.

Every schedule but reduce-on-plateau steps once per training step; plateau steps once per epoch
on the validation loss. `rescale` changes the base LR while training and keeps the schedule's shape.
"""

from __future__ import annotations

import torch
from torch.optim import lr_scheduler as sched

from vae_core.config import TrainConfig


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimiser; Adam, AdamW and SGD use torch's fused CPU kernels (one call for all the
    parameters instead of a few ops per parameter: the update is the same, about 3× faster)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay, fused=True)


class LRSchedule:
    """Owns the schedulers of one optimiser; call `after_step()` each step and `after_epoch(val)` each epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
        self.optimizer = optimizer
        total = max(1, config.epochs * steps_per_epoch)
        self.warmup_steps = min(total - 1, round(config.lr_warmup_epochs * steps_per_epoch))
        after = total - self.warmup_steps
        name = config.lr_schedule
        self.plateau = sched.ReduceLROnPlateau(optimizer, factor=config.lr_gamma, patience=config.lr_patience) \
            if name == "plateau" else None
        main = {
            "step": lambda: sched.StepLR(optimizer, step_size=config.lr_step_epochs * steps_per_epoch,
                                         gamma=config.lr_gamma),
            "exponential": lambda: sched.ExponentialLR(optimizer, gamma=config.lr_gamma ** (1 / steps_per_epoch)),
            "cosine": lambda: sched.CosineAnnealingLR(optimizer, T_max=after),
            "onecycle": lambda: sched.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total + 1),
        }.get(name)
        warmup = sched.LinearLR(optimizer, start_factor=0.01, total_iters=self.warmup_steps) \
            if self.warmup_steps > 0 else None
        if warmup and main:
            self.per_step = sched.SequentialLR(optimizer, [warmup, main()], milestones=[self.warmup_steps])
        else:
            self.per_step = warmup or (main() if main else None)
        self.steps = 0

    def after_step(self) -> None:
        self.steps += 1
        if self.per_step is not None and (self.plateau is None or self.steps <= self.warmup_steps):
            self.per_step.step()

    def after_epoch(self, val_loss: float) -> None:
        if self.plateau is not None and self.steps >= self.warmup_steps:
            self.plateau.step(val_loss)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def rescale(self, ratio: float) -> None:
        """Multiply the base LR and every LR the schedule will give by `ratio`; optimiser state is kept."""
        for group in self.optimizer.param_groups:
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] *= ratio
        schedulers = [s for s in (self.per_step, self.plateau) if s is not None]
        schedulers += [inner for s in schedulers for inner in getattr(s, "_schedulers", [])]
        for s in schedulers:
            for attr in ("base_lrs", "_last_lr"):
                if hasattr(s, attr):
                    setattr(s, attr, [v * ratio for v in getattr(s, attr)])
            if isinstance(s, sched.ReduceLROnPlateau):
                s.min_lrs = [v * ratio for v in s.min_lrs]


MAX_CURVE_STEPS = 5_000  # training steps lr_curve simulates at most (when epochs allow one per epoch)


def lr_curve(config: TrainConfig, steps_per_epoch: int, points: int = 400) -> tuple[list[int], list[float]]:
    """The LR at each training step as the schedule will give it (plateau: as if the loss kept improving).

    A run of more than MAX_CURVE_STEPS steps is simulated with fewer steps per epoch and drawn on its real
    step axis: settings in epochs keep their place, to within one simulated step."""
    simulated = min(steps_per_epoch, max(1, MAX_CURVE_STEPS // config.epochs))
    param = torch.zeros(1, requires_grad=True)
    optimizer = build_optimizer([param], config.replace(weight_decay=0.0))
    schedule = LRSchedule(optimizer, config, simulated)
    total = config.epochs * simulated
    every = max(1, total // points)
    steps, lrs = [], []
    for step in range(total):
        if step % every == 0:
            steps.append(step * steps_per_epoch // simulated)
            lrs.append(schedule.lr)
        optimizer.step()
        schedule.after_step()
    return steps, lrs
