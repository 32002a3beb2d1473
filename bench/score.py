"""Part 8: what a run's final score costs, against the training it ends.

For the default run (`TrainConfig()`: digits, MLP 256-128, latent 2, batch 32, 30 epochs) and the CLI's MNIST
run (MLP 784-400-20, batch 128, 10 epochs on the t10k files' 8,000 training digits), `repeats` times, on the
main thread as the CLI and the worker train: `fit` on a Trainer, then `vae_core.maths.score.final_score` (the
test split's −ELBO pass, then its IWAE pass with k = 50 under the time cap). The share is
score / (training + score): what the end of a run adds to its time.

    python -m bench.score [--smoke] [--repeats N]
"""

from __future__ import annotations

import time

from bench import common
from vae_core.config import TrainConfig
from vae_core.maths import score
from vae_core.train import Status, Trainer, fit

RUNS = {
    "default run: digits, MLP 256-128, batch 32, 30 epochs": TrainConfig(),
    "MNIST: MLP 784-400-20, batch 128, 10 epochs": TrainConfig(dataset="mnist", hidden=[400], latent_dim=20,
                                                               batch_size=128, epochs=10),
}


def run(smoke: bool = False, repeats: int = 3) -> dict:
    rows, notes = [], []
    for label, config in RUNS.items():
        data = common.load(config.dataset, smoke)
        if isinstance(data, str):
            notes.append(f"{label} skipped: {data}")
            continue
        config = config.replace(epochs=1) if smoke else config
        trained, scored, shares, covered = [], [], [], []
        for _ in range(repeats):
            common.wait_for_quiet()
            started = time.perf_counter()
            trainer = Trainer(config, data)
            outcome = fit(trainer)
            trained.append(time.perf_counter() - started)
            assert outcome.status == Status.FINISHED, outcome.message
            final = score.final_score(trainer)
            scored.append(final["seconds"])
            shares.append(100 * final["seconds"] / (trained[-1] + final["seconds"]))
            covered.append(100 * final["iwae_rows"] / final["rows"])
        rows.append({"run": label, "test": len(data.test), "train_s": common.stats(trained),
                     "score_s": common.stats(scored), "share": common.stats(shares),
                     "covered": common.stats(covered)})
    columns = [("run", "run", 0), ("test", "test samples", 0), ("train_s", "training (s)", 2),
               ("score_s", "final score (s)", 2), ("share", "score's share of the run (%)", 1),
               ("covered", "test samples in the IWAE (%)", 0)]
    notes.append(f"The IWAE pass (k = {score.IWAE_K}) stops after the chunk that takes it past "
                 f"{score.SCORE_SECONDS:g} s (vae_core/maths/score.py, SCORE_SECONDS).")
    return common.table("The final score's cost", columns, rows, notes)


if __name__ == "__main__":
    from bench.__main__ import main
    main(["--only", "score"])
