"""A run's final score on the held-out test split, and the importance-weighted (IWAE) bound behind it.

Validation picks the epochs (early stopping, plateaus), so its −ELBO flatters the run; the test split is
looked at once, at the end. All figures are in nats per sample, lower is better.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from vae_core import devices
from vae_core.config import TrainConfig
from vae_core.maths.models import VAE
from vae_core.maths.objectives import reconstruction_nll

if TYPE_CHECKING:
    from vae_core.train import Trainer

IWAE_K = 50  # importance samples of the final score's bound
# Seconds the final score's IWAE pass may take; it stops after the chunk that goes over, and says how many
# test samples it covered (bench/README.md, "The final score").
SCORE_SECONDS = 2.0
CHUNK_VALUES = 2**21  # values decoded at once (k × rows × sample size): a chunk is the time budget's grain
ELBO_NAME = "test −ELBO"
UNITS = "nats per sample"
_FLOATS = ("neg_elbo", "recon", "kl", "neg_iwae", "seconds")
_COUNTS = ("rows", "iwae_k", "iwae_rows")
_EVERY_RUN = {"split", "rows", "recon", "seconds"}
_A_VAE = {"neg_elbo", "kl", "iwae_k", "iwae_rows"}  # and neg_iwae, unless it was not finite


def iwae_name(k: int = IWAE_K) -> str:
    return f"test −IWAE bound (k = {k})"


def _chunks(model: VAE, x: torch.Tensor, config: TrainConfig, k: int, seed: int) -> Iterator[tuple[int, float]]:
    """(rows, their summed log (1/k) Σᵢ p(x, zᵢ) / q(zᵢ|x)) chunk after chunk, zᵢ ~ q(z|x) (Burda et al. 2016).
    Chunks are multiples of 16 rows: torch draws normal noise in blocks of 16, so the noise does not depend on
    the chunk size, and at k = 1 it is the noise `Trainer.evaluate` draws with the same seed (on the same device:
    the noise is drawn on the model's)."""
    if not model.variational:
        raise ValueError("the IWAE bound needs a VAE: an autoencoder has no posterior to sample")
    model.eval()
    device = devices.of(model)
    x = x.to(device)
    gen = torch.Generator(device).manual_seed(seed)
    chunk = max(16, CHUNK_VALUES // (k * x[0].numel()) // 16 * 16)
    for start in range(0, len(x), chunk):
        xb = x[start:start + chunk]
        mu, logvar = model.encode(xb)
        eps = torch.randn((k, *mu.shape), generator=gen, device=device)
        z = mu + eps * torch.exp(0.5 * logvar)  # (k, B, D)
        raw = model.decode(z.reshape(-1, mu.shape[1]))
        log_px_z = -reconstruction_nll(raw, xb.repeat(k, *[1] * (xb.dim() - 1)), config, model.is_image)
        log_pz = (-0.5 * (z ** 2 + math.log(2 * math.pi))).sum(-1)
        log_qz = (-0.5 * (eps ** 2 + math.log(2 * math.pi)) - 0.5 * logvar).sum(-1)
        log_w = log_px_z.view(k, len(xb)) + log_pz - log_qz
        yield len(xb), (torch.logsumexp(log_w, 0) - math.log(k)).sum().item()


@torch.inference_mode()
def iwae_bound(model: VAE, x: torch.Tensor, config: TrainConfig, k: int = IWAE_K, seed: int = 0) -> float:
    """Mean importance-weighted lower bound on log p(x) in nats with k samples: log p(x) ≥ IWAE_k ≥ ELBO."""
    return sum(total for _, total in _chunks(model, x, config, k, seed)) / len(x)


@torch.inference_mode()
def final_score(trainer: Trainer, should_stop: Callable[[], bool] = lambda: False, *, k: int = IWAE_K,
                budget: float = SCORE_SECONDS, clock: Callable[[], float] = time.perf_counter) -> dict | None:
    """The trained model's score on the whole test split: −ELBO (one z per sample, closed-form KL, as the
    validation column), then the −IWAE bound on the test samples, chunk by chunk, until all are done, the
    time since the start is over `budget` seconds, or `should_stop()`. An autoencoder has no ELBO: its test
    reconstruction only. None before an epoch is done, or when the figures are not finite. (It leaves the
    trainer's posterior as the test split's.)"""
    if trainer.epoch < 1:
        return None
    started = clock()
    test = trainer.data.test.to(trainer.device)  # once, for both passes
    result = trainer.evaluate(test)
    if not math.isfinite(result["recon"] + result["kl"]):
        return None
    score = {"split": "test", "rows": len(test), "recon": result["recon"]}
    if trainer.model.variational:
        score |= {"neg_elbo": result["neg_elbo"], "kl": result["kl"], "iwae_k": k, "iwae_rows": 0}
        total = 0.0
        for rows, chunk_total in _chunks(trainer.model, test, trainer.config, k, seed=0):
            score["iwae_rows"] += rows
            total += chunk_total
            if should_stop() or clock() - started > budget:
                break
        if score["iwae_rows"] and math.isfinite(total):
            score["neg_iwae"] = -total / score["iwae_rows"]
    score["seconds"] = clock() - started
    return score


def valid(score) -> bool:
    """A saved score as `final_score` writes it (meta.json is read from disk, perhaps from a bundle)."""
    if not isinstance(score, dict):
        return False
    keys = set(score)
    if not (score.get("split") == "test" and _EVERY_RUN <= keys <= _EVERY_RUN | _A_VAE | {"neg_iwae"}
            and keys & _A_VAE in (set(), _A_VAE) and ("neg_iwae" not in keys or _A_VAE <= keys)):
        return False
    floats = all(isinstance(score[key], (int, float)) and not isinstance(score[key], bool)
                 and math.isfinite(score[key]) for key in _FLOATS if key in score)
    counts = all(isinstance(score[key], int) and not isinstance(score[key], bool) and score[key] >= 0
                 for key in _COUNTS if key in score)
    return floats and counts


def csv_columns(score: dict | None) -> dict[str, float]:
    """The score as metrics.csv columns (test_neg_elbo, test_neg_iwae, …) on the last epoch's row."""
    return {f"test_{key}": value for key, value in (score or {}).items() if key != "split"}


def describe(score: dict | None) -> str:
    """The score in words, for the CLI and the pages."""
    if not score:
        return "no final score (the run ended before an epoch was done, or failed)"
    if "neg_elbo" not in score:
        return (f"test reconstruction {score['recon']:.2f} {UNITS} on {score['rows']:,} test samples "
                "(an autoencoder has no ELBO or IWAE bound)")
    text = f"{ELBO_NAME} {score['neg_elbo']:.2f} {UNITS} on {score['rows']:,} test samples"
    if "neg_iwae" not in score:
        return text + f"; {iwae_name(score['iwae_k'])} not finite"
    covered = "all of them" if score["iwae_rows"] == score["rows"] else \
        f"the first {score['iwae_rows']:,} (it stops after {SCORE_SECONDS:g} s, or on Stop)"
    return text + f"; {iwae_name(score['iwae_k'])} {score['neg_iwae']:.2f} {UNITS} on {covered}"
