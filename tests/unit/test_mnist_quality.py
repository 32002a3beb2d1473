"""On real MNIST digits the engine matches a plain PyTorch VAE: held-out −ELBO at most 126 nats.

A plain PyTorch loop of the same model, data and settings gave 126.8, 124.4 and 124.1 nats for
seeds 0, 1 and 2: one seed alone varies by more than a nat, so the test takes the median of three.
"""

import statistics

import pytest

from vae_core.config import TrainConfig
from vae_core.train import Status, Trainer, fit


@pytest.mark.slow
def test_mlp_vae_reaches_the_reference_elbo_on_real_mnist(mnist):
    assert len(mnist.train) == 8000 and len(mnist.val) == 1000
    results = []
    for seed in (0, 1, 2):
        config = TrainConfig(dataset="mnist", hidden=[400], latent_dim=20, recon_loss="bce", optimizer="adam",
                             lr=1e-3, batch_size=128, epochs=10, seed=seed)
        epochs = []
        outcome = fit(Trainer(config, mnist), on_epoch=lambda epoch: epochs.append(epoch.row))
        assert outcome.status == Status.FINISHED and len(epochs) == 10, outcome.message
        results.append(epochs[-1]["val_neg_elbo"])
    print("held-out negative ELBO after 10 epochs, seeds 0-2:", ", ".join(f"{r:.2f}" for r in results))
    assert statistics.median(results) <= 126.0
    assert max(results) <= 127.0
