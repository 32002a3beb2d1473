"""What a student may set: the one place that decides, for the Train page's widgets and for the server
when a run starts (a shared link or a hand-edited request cannot get past it).

Two rules compose: the server's limits (checked by TrainConfig itself) and the teacher's class rules
(settings locked to the values of the lesson or preset sent, else to the defaults; an epoch cap). The
teacher is bound by the server's limits only. (How much a student may keep is `quotas`.)
"""

from __future__ import annotations

from vae_core.classroom.room import Room
from vae_core.config import ConfigError, TrainConfig

DEFAULTS = TrainConfig().to_dict()


def allowed_values(room: Room) -> dict[str, list]:
    """Each locked setting -> the values a student may use: those of the runs the teacher sent (a lesson's
    runs differ in the setting it is about), else the default."""
    sent = room.pushed.configs() if room.pushed else []
    out = {}
    for name in room.locks:
        values = [config.to_dict()[name] for config in sent] or [DEFAULTS[name]]
        out[name] = [v for i, v in enumerate(values) if v not in values[:i]]
    return out


def check(config: TrainConfig, room: Room, *, teacher: bool = False) -> None:
    """ConfigError naming the first setting the class rules do not allow for this run."""
    if teacher:
        return
    if room.max_epochs is not None and config.epochs > room.max_epochs:
        raise ConfigError(f"epochs: your teacher capped runs at {room.max_epochs} epochs for this class, "
                          f"got {config.epochs}")
    values = config.to_dict()
    for name, allowed in allowed_values(room).items():
        if values[name] not in allowed:
            shown = " or ".join(str(v) for v in allowed)
            raise ConfigError(f"{name}: locked by your teacher at {shown} for this class, got {values[name]}")


def fit_to(config: TrainConfig, room: Room) -> TrainConfig:
    """`config` moved inside the class rules: locked settings at their first allowed value (unless already
    allowed), epochs at most the cap. What the Train page's widgets show a student."""
    changes = {name: allowed[0] for name, allowed in allowed_values(room).items()
               if config.to_dict()[name] not in allowed}
    if room.max_epochs is not None and config.epochs > room.max_epochs:
        changes["epochs"] = room.max_epochs
    if not changes:
        return config
    try:
        return config.replace(**changes)
    except ConfigError:
        return config
