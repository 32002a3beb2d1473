"""Limits for a shared classroom server, each set by an environment variable.

Read once per call of `current()`, so tests can change them with monkeypatch.setenv.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"environment variable {name} must be at least 1, got {value}")
    return value


DEFAULT_MAX_JOBS = 2  # runs training at once in a process; more wait in a queue


@dataclass(frozen=True)
class Limits:
    max_jobs: int  # VAE_LAB_MAX_JOBS: training jobs running at once in this process
    max_epochs: int  # VAE_LAB_MAX_EPOCHS
    max_latent: int  # VAE_LAB_MAX_LATENT
    max_params: int  # VAE_LAB_MAX_PARAMS: parameters of one model
    max_upload_mb: int  # VAE_LAB_MAX_UPLOAD_MB: size of one upload, and of its decompressed data
    max_images: int  # VAE_LAB_MAX_IMAGES: images in one uploaded dataset
    max_image_side: int  # VAE_LAB_MAX_IMAGE_SIDE: pixels along one side of an uploaded image
    max_student_runs: int  # VAE_LAB_MAX_STUDENT_RUNS: saved runs one student may keep
    max_student_mb: int  # VAE_LAB_MAX_STUDENT_MB: disk one student's runs, uploads and imports may take
    keep_days: int  # VAE_LAB_KEEP_DAYS: days the trash and archived class sessions' runs are kept


def current() -> Limits:
    """The limits in force now, from the environment, with defaults that suit a 2-core laptop."""
    return Limits(
        max_jobs=_env_int("VAE_LAB_MAX_JOBS", DEFAULT_MAX_JOBS),
        max_epochs=_env_int("VAE_LAB_MAX_EPOCHS", 500),
        max_latent=_env_int("VAE_LAB_MAX_LATENT", 64),
        max_params=_env_int("VAE_LAB_MAX_PARAMS", 20_000_000),
        max_upload_mb=_env_int("VAE_LAB_MAX_UPLOAD_MB", 100),
        max_images=_env_int("VAE_LAB_MAX_IMAGES", 70_000),
        max_image_side=_env_int("VAE_LAB_MAX_IMAGE_SIDE", 4096),
        max_student_runs=_env_int("VAE_LAB_MAX_STUDENT_RUNS", 200),
        max_student_mb=_env_int("VAE_LAB_MAX_STUDENT_MB", 500),
        keep_days=_env_int("VAE_LAB_KEEP_DAYS", 30),
    )
