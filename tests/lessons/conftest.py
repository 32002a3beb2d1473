"""Trained runs shared by the lesson tests: each configuration (with its seed) trains once per session.

Runs go through `Trainer` and `fit`, the loop the app's jobs host (early stopping and the divergence
guard live in `fit`), one after another on the test's thread with one intra-op thread, as a job on a
thread of its own trains. Every random draw of a run, dropout masks included, comes from the run's own
generator, so a run trains the same whatever trained before it. (Training two at a time on two threads
saved under a tenth of the lesson tests' time on this two-core machine: not worth the threads.)

The lesson tests' wall time is recorded, not asserted (the issue's budget: all lesson tests within 8
minutes in CI): at the end of the session test-artifacts/lessons-timing.json holds the total and each
test's seconds.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import torch

from vae_core.config import TrainConfig
from vae_core.data import Dataset, load_dataset
from vae_core.jobs.history import History
from vae_core.maths import collapse
from vae_core.maths.objectives import kl_per_dim
from vae_core.train import Status, Trainer, fit

# Two seeds, against a lucky one; VAE_LAB_LESSON_SEEDS=2,3 checks the claims on others.
SEEDS = tuple(int(s) for s in os.environ.get("VAE_LAB_LESSON_SEEDS", "0,1").split(","))
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist-t10k"
TIMING = REPO / "test-artifacts" / "lessons-timing.json"
CI_BUDGET_SECONDS = 8 * 60  # recorded next to the measured figure, for comparison; never asserted


def _data(config: TrainConfig) -> Dataset:
    return load_dataset(config.dataset, data_dir=MNIST_DIR if config.dataset == "mnist" else None)


@dataclass
class Run:
    """A configuration trained to its end by `fit`, with the history its job would have kept."""
    config: TrainConfig
    data: Dataset
    trainer: Trainer
    status: Status
    message: str
    epoch_history: list[dict]
    step_history: list[dict]
    cpu_seconds: float  # of the training thread: comparable with the app's ~30 s budget
    verdicts: list[collapse.Verdict]  # after each epoch, on the validation split: what the Train page would warn

    @property
    def epochs_done(self) -> int:
        return self.trainer.epoch

    @property
    def steps_done(self) -> int:
        return self.trainer.step

    @property
    def model(self):
        return self.trainer.model

    @cached_property
    def val(self) -> dict[str, float]:
        """Trainer.evaluate on the validation split (after early stopping: the restored best weights)."""
        return self.trainer.evaluate(self.data.val)

    @cached_property
    def train(self) -> dict[str, float]:
        return self.trainer.evaluate(self.data.train)


def train(config: TrainConfig) -> Run:
    """Train `config` with one torch thread, keeping the step rows as a job's History does."""
    data, threads = _data(config), torch.get_num_threads()
    torch.set_num_threads(1)  # as a job on a thread of its own; and thread_time counts all of its work
    try:
        start = time.thread_time()
        trainer = Trainer(config, data)
        steps, epochs, verdicts = History(), [], []

        def on_epoch(epoch) -> None:
            epochs.append(epoch.row)
            posterior = trainer.posterior  # of the validation pass that just ended the epoch
            verdicts.append(collapse.judge(kl_per_dim(posterior.mu, posterior.logvar).mean(0), posterior.mu))

        outcome = fit(trainer, on_step=steps.add_step, on_epoch=on_epoch)
        cpu_seconds = time.thread_time() - start
    finally:
        torch.set_num_threads(threads)
    return Run(config, data, trainer, outcome.status, outcome.message, epochs, steps.steps(), cpu_seconds, verdicts)


class Runs:
    """A cache of trained runs keyed by the full configuration."""

    seeds_used = SEEDS

    def __init__(self) -> None:
        self._cache: dict[str, Run] = {}

    def get(self, config: TrainConfig) -> Run:
        self.prefetch([config])
        return self._cache[config.to_json()]

    def prefetch(self, configs: list[TrainConfig]) -> None:
        """Train every configuration not trained yet."""
        for config in configs:
            if config.to_json() not in self._cache:
                self._cache[config.to_json()] = train(config)

    def seeds(self, config: TrainConfig, seeds=SEEDS) -> list[Run]:
        """The configuration trained once per seed."""
        configs = [config.replace(seed=s) for s in seeds]
        self.prefetch(configs)
        return [self.get(c) for c in configs]

    def all(self) -> list[Run]:
        return list(self._cache.values())


@pytest.fixture(scope="session")
def runs() -> Runs:
    return Runs()


def pytest_collection_modifyitems(config, items):
    """The lesson tests that train runs are slow (seconds each, a minute or two in all)."""
    for item in items:
        if _is_lesson_test(item.nodeid) and "runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


# --- timing: each lesson test's wall time, written to test-artifacts/lessons-timing.json -----------------
_timing: dict[str, dict] = {}  # nodeid -> {"seconds", "setup", "call", "teardown", "outcome"}
_span: list[float] = []  # wall-clock start of the first lesson test and end of the last


def _is_lesson_test(nodeid: str) -> bool:
    return nodeid.replace("\\", "/").startswith(HERE.relative_to(REPO).as_posix() + "/")


def pytest_runtest_logstart(nodeid, location):
    if _is_lesson_test(nodeid) and not _span:
        _span.append(time.time())


def pytest_runtest_logfinish(nodeid, location):
    if _is_lesson_test(nodeid):
        _span[1:] = [time.time()]


def pytest_runtest_logreport(report):
    if not _is_lesson_test(report.nodeid):
        return
    entry = _timing.setdefault(report.nodeid, {"seconds": 0.0, "outcome": "passed"})
    entry[report.when] = round(report.duration, 3)
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    if report.outcome != "passed" and entry["outcome"] == "passed":
        entry["outcome"] = report.outcome if report.when == "call" else f"{report.outcome} in {report.when}"


def pytest_sessionfinish(session, exitstatus):
    """Write the lesson tests' total and per-test wall time (only when some lesson test ran)."""
    if not _timing:
        return
    total = sum(entry["seconds"] for entry in _timing.values())
    result = {
        "total_seconds": round(total, 1),  # the lesson tests' own setup + call + teardown time
        "wall_seconds": round(_span[-1] - _span[0], 1) if len(_span) == 2 else None,  # first start to last end
        "budget_seconds": CI_BUDGET_SECONDS,
        "tests": len(_timing),
        "seeds": list(SEEDS),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "ci": bool(os.environ.get("CI"))},
        "per_test": dict(sorted(_timing.items(), key=lambda item: -item[1]["seconds"])),
    }
    TIMING.parent.mkdir(parents=True, exist_ok=True)
    TIMING.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
