"""The plain side of bench/startup.py: a script a user would write to train a VAE on MNIST's IDX files.

It imports nothing from vae_core or bench and runs as its own process, by path, so its time is a plain
script's whole: start-up, reading the t10k pair's images (the first 80 % train, the next 10 % validate,
as vae_core cuts a t10k-only folder), an MLP VAE built with nn.Sequential (as bench/plain.py builds it),
Adam (torch's default kernel, lr 2e-3 as the engine's default), randperm batches, BCE-on-logits + KL,
`loss.item()` after every step, a validation pass per epoch, and the weights saved with safetensors.
Prints one JSON line: the last validation loss and the parameter count.

    python bench/plain_script.py DATA_DIR WEIGHTS_FILE [--hidden 400] [--latent-dim 20] [--batch-size 128]
                                 [--epochs 10]
"""

import argparse
import gzip
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn


def read_images(path: Path) -> torch.Tensor:
    """float32 (N, 1, H, W) in [0, 1] from a gzipped IDX images file."""
    with gzip.open(path) as f:
        blob = f.read()
    n, h, w = (int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    pixels = torch.frombuffer(bytearray(blob[16:]), dtype=torch.uint8)
    return pixels.reshape(n, 1, h, w).float().div_(255)


class VAE(nn.Module):
    def __init__(self, d: int, hidden: int, latent: int, shape):
        super().__init__()
        self.shape = shape
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, d))

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z).view(-1, *self.shape), mu, logvar


def vae_loss(raw, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kl) / len(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("weights", type=Path)
    ap.add_argument("--hidden", type=int, default=400)
    ap.add_argument("--latent-dim", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()

    images = read_images(args.data_dir / "t10k-images-idx3-ubyte.gz")
    held_out = len(images) // 10
    n_train = len(images) - 2 * held_out
    train, val = images[:n_train], images[n_train:n_train + held_out]
    torch.manual_seed(0)
    model = VAE(images[0].numel(), args.hidden, args.latent_dim, images.shape[1:])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(train))
        for start in range(0, len(train), args.batch_size):
            x = train[order[start:start + args.batch_size]]
            raw, mu, logvar = model(x)
            loss = vae_loss(raw, x, mu, logvar)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        total = 0.0
        with torch.no_grad():
            for xb in val.split(1024):
                raw, mu, logvar = model(xb)
                total += vae_loss(raw, xb, mu, logvar).item() * len(xb)
        print(f"epoch val loss {total / len(val):.3f}", flush=True)
    save_file(model.state_dict(), args.weights)
    print(json.dumps({"val_loss": total / len(val), "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
