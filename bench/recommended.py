"""Train each dataset's recommended settings (vae_core.data.recommended) beside the defaults, and print what
they reach: test −ELBO, reconstruction RMSE, sample sharpness and the samples' distance to the data.

    python -m bench.recommended shapes moons      # or no names: every built-in set that is here
"""

from __future__ import annotations

import sys
import time

import torch

from vae_core.config import FOR_POINTS, TrainConfig
from vae_core.data import DATASETS, load_dataset
from vae_core.data.availability import availability
from vae_core.data.recommended import recommended
from vae_core.maths.metrics import reconstruction_rmse
from vae_core.maths.quality import QualityMeter
from vae_core.maths.score import final_score
from vae_core.train import Trainer, fit


def measure(config: TrainConfig) -> dict:
    data = load_dataset(config.dataset)
    started = time.perf_counter()
    trainer = Trainer(config, data)
    fit(trainer)
    seconds = time.perf_counter() - started
    score = final_score(trainer, k=5, budget=0.5) or {}
    quality = QualityMeter(data.train, data.test).measure(trainer.model)
    return {"seconds": seconds, "test −ELBO": score.get("neg_elbo", float("nan")),
            "recon RMSE": reconstruction_rmse(trainer.model, data.test[:500]),
            "sharpness × real": quality.sharpness_ratio, "nearest / real": quality.nearest / quality.real_nearest}


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names or [n for n in DATASETS if availability(n).state == "here"]:
        kind = DATASETS[name].kind
        points = {field: needed for field, (needed, _) in FOR_POINTS.items()} if kind == "points" else {}
        for label, values in (("defaults", points), ("recommended", recommended(name, kind))):
            row = measure(TrainConfig(dataset=name, **values))
            print(f"{name:13} {label:11} " + "  ".join(
                f"{key} {'–' if value is None else f'{value:.3g}'}" for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
