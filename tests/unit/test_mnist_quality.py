"""On real MNIST digits the engine matches a plain PyTorch VAE: held-out −ELBO at most 126 nats."""

from vae_core.config import TrainConfig
from vae_core.job import TrainingJob
from vae_core.slots import SlotPool


def test_mlp_vae_reaches_the_reference_elbo_on_real_mnist(mnist):
    assert len(mnist.train) == 8000 and len(mnist.val) == 2000
    config = TrainConfig(dataset="mnist", hidden=[400], latent_dim=20, recon_loss="bce", optimizer="adam", lr=1e-3,
                         batch_size=128, epochs=10)
    job = TrainingJob(config, mnist, pool=SlotPool(1)).start()
    assert job.join(300)
    view = job.view()
    assert view.status == "finished", view.message
    held_out = view.epoch_history[-1]["val_neg_elbo"]
    print(f"held-out negative ELBO after 10 epochs: {held_out:.2f} nats")
    assert held_out <= 126.0
