""""Show the code": a plain PyTorch script that trains the model of a TrainConfig as `vae_core.train.fit` does.

    text = training_script(config, data)        # the script, for the page and the download
    blob = download(config, data)               # the bytes to download as download_name(data)

The script imports torch and numpy (and scikit-learn for the digits), never vae_core; it is pytorch/examples'
VAE (mnist/main.py) laid out the same way, with only the lines the settings need, each option's lines
commented by its technique. It reproduces the app's run: same split, seeding order, initial weights, batch
order, loss reduction and schedules, so its validation −ELBO per epoch is the app's (tests/unit/test_script.py
runs every lesson's). The pieces mirror the engine's modules: `data` vae_core/data, `model` maths/models.py,
`objective` maths/objectives.py, `optim` maths/schedules.py and augment.py; the loop below mirrors train.py.
"""

from __future__ import annotations

import io
import math
import zipfile

from vae_core.config import TrainConfig
from vae_core.data import Dataset

from .data import NPZ, data_code, data_default, npz_bytes, source, title
from .model import critic_code, model_code
from .objective import objective_code
from .optim import Schedule, augment_code, optimizer_code, schedule_code

SCRIPT = "train_vae.py"


def _indent(code: str, spaces: int) -> str:
    return "\n".join((" " * spaces + line if line else line) for line in code.splitlines())


def _header(config: TrainConfig, data: Dataset, schedule: Schedule) -> str:
    kind = source(data.name)
    usage = {"digits": "", "idx": f"   # --data FOLDER: where its IDX files are (default ./{data_default(data)})",
             "npz": f"   # {NPZ} must be in the folder it runs from (or give --data PATH)"}[kind]
    imports = ["argparse", "math", *["copy"] * config.early_stopping, *["gzip", "os"] * (kind == "idx")]
    return "\n".join([
        f'"""Train a VAE on {title(data)}.',
        "",
        "VAE Lab wrote this script from its settings: plain PyTorch, laid out like pytorch/examples' VAE",
        "(mnist/main.py), each option's lines commented with the technique they implement. It reproduces VAE Lab's",
        "run: the validation −ELBO of each epoch (nats per sample, lower is better) is the one the app's loss chart",
        "shows (on the CPU; other devices differ slightly).",
        "",
        f"    python3 {SCRIPT}{usage}",
        f"    python3 {SCRIPT} --epochs N   # stop after N of the {config.epochs} epochs (schedules keep their shape)",
        '"""',
        *[f"import {name}" for name in sorted(imports)],
        "",
        "import numpy as np",
        "import torch",
        "import torch.nn.functional as F",
        *["from sklearn.datasets import load_digits"] * (kind == "digits"),
        "from torch import nn",
        *["from torch.optim import lr_scheduler"] * ("lr_scheduler." in schedule.setup),
        "",
        f"EPOCHS = {config.epochs}  # the run's length: schedules are laid out over it",
        f"BATCH_SIZE = {config.batch_size}",
        f"SEED = {config.seed}",
        "",
        "parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        'parser.add_argument("--epochs", type=int, default=EPOCHS, help="stop after this many epochs")',
        *([f'parser.add_argument("--data", default="{data_default(data)}", help="where the data is")']
          if kind != "digits" else []),
        "args = parser.parse_args()",
    ])


def _train_step(config: TrainConfig, image: bool, per_step: str) -> str:
    """The body of one optimisation step, as `Trainer.train_step`."""
    lines = ["raw, mu, logvar = model(x, generator)",
             "loss, recon, kl = loss_function(raw, x, mu, logvar, step)"]
    if config.adv_weight > 0:
        mean = "torch.sigmoid(raw)" if image else "raw"
        lines += [f"fake = {mean}  # the reconstructions",
                  "d_fake = critic(fake).squeeze(1)",
                  (f"loss = loss + {config.adv_weight!r} * F.binary_cross_entropy_with_logits(d_fake, "
                   "torch.ones_like(d_fake))  # fool the critic")]
    if config.l1 > 0:
        lines += [f"# L1 penalty on the weights (not the biases), {config.l1!r} × Σ|w|: it pushes weights to exactly 0",
                  (f"loss = loss + {config.l1!r} * sum(p.abs().sum() for name, p in model.named_parameters() "
                   "if name.endswith(\"weight\"))")]
    lines += ["optimizer.zero_grad()", "loss.backward()"]
    if config.grad_clip > 0:
        lines.append(f"nn.utils.clip_grad_norm_(model.parameters(), {config.grad_clip!r})  # gradient clipping: "
                     "a step's gradient norm is at most this")
    lines.append("optimizer.step()")
    if per_step:
        lines += per_step.splitlines()
    if config.adv_weight > 0:
        lines += ["# The critic's step: real inputs are 1, reconstructions 0",
                  "d_real, d_fake = critic(x).squeeze(1), critic(fake.detach()).squeeze(1)",
                  "critic_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))",
                  "               + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))",
                  "critic_optimizer.zero_grad()", "critic_loss.backward()", "critic_optimizer.step()"]
    return "\n".join(lines)


TRAIN = '''
def train(epoch):
    """One epoch of shuffled batches; the mean training loss, or None when the loss diverged (VAE Lab's guard: NaN,
    infinite, or a million times the first step's)."""
    global first_loss, diverged_at
    model.train()
    order = torch.randperm(len(train_x), generator=generator)
    total = 0.0
    for i, start in enumerate(range(0, len(train_x), BATCH_SIZE)):
        step = (epoch - 1) * steps_per_epoch + i
        x = train_x[order[start:start + BATCH_SIZE]]{augment}
{step}
        value = loss.item()
        first_loss = value if first_loss is None else first_loss
        if not math.isfinite(value) or value > 1e6 * max(abs(first_loss), 1.0):
            diverged_at = step + 1
            return None
        total += value
    return total / steps_per_epoch


@torch.no_grad()
def evaluate(x):
    """Reconstruction and KL in nats per sample over a whole split, one z per input drawn from a fixed seed (0)."""
    model.eval()
    noise = torch.Generator().manual_seed(0)
    mu, logvar = model.encode(x)
    raw = model.decode(model.reparameterize(mu, logvar, noise))
    recon = reconstruction_nll(raw, x).item() / len(x)
    kl = {kl}
    return recon, kl'''

LOOP = '''
history = []  # validation −ELBO per epoch
first_loss = diverged_at = None
{early}for epoch in range(1, args.epochs + 1):
    train_loss = train(epoch)
    if train_loss is None:
        print(f"epoch {{epoch}}: the loss diverged at step {{diverged_at}}, so training stopped (try a learning rate "
              "10 times smaller)")
        break
    recon, kl = evaluate(val_x)
    neg_elbo = recon + kl
    if not math.isfinite(neg_elbo):
        print(f"epoch {{epoch}}: the validation loss diverged, so training stopped")
        break
    history.append(neg_elbo)
    print(f"epoch {{epoch:3d}}  train loss {{train_loss:9.3f}}   validation −ELBO {{neg_elbo:9.3f}} "
          f"(reconstruction {{recon:.3f}} + KL {{kl:.3f}})"){plateau}{stopping}'''

EARLY = '''
    # Early stopping: end the run after {patience} epochs without a validation −ELBO lower by over {delta!r}; keep
    # the best epoch's weights
    if neg_elbo < best - {delta!r}:
        best, best_weights, bad_epochs = neg_elbo, copy.deepcopy(model.state_dict()), 0
    else:
        bad_epochs += 1
        if bad_epochs >= {patience}:
            print(f"early stopping: no improvement for {{bad_epochs}} epochs")
            break
if best_weights is not None:
    model.load_state_dict(best_weights)'''


def training_script(config: TrainConfig, data: Dataset) -> str:
    """The script training `config` on `data` (the Dataset the app would train it on)."""
    image = data.is_image
    schedule = schedule_code(config, math.ceil(len(data.train) / config.batch_size))
    augment = augment_code(config)
    critic = critic_code(config, data.sample_shape)
    train = TRAIN.strip("\n").format(
        augment="\n        x = augment(x)" if augment else "",
        step=_indent(_train_step(config, image, schedule.per_step), 8),
        kl="0.0  # an autoencoder has no KL term" if config.mode == "ae" else
           "kl_per_dim(mu, logvar).sum(0).double().sum().item() / len(x)")
    plateau = "\n" + _indent(schedule.per_epoch, 4) if schedule.per_epoch else ""
    stopping = EARLY.format(patience=config.patience, delta=config.min_delta) if config.early_stopping else ""
    loop = LOOP.strip("\n").format(early="best, best_weights, bad_epochs = math.inf, None, 0\n"
                                   if config.early_stopping else "", plateau=plateau, stopping=stopping)
    seeding = "\n".join([
        "# --- Training: the run's seed sets the initial weights (torch's global generator, then the model is built)",
        "# and its own generator draws, in VAE Lab's order, the batch order" + ", z's noise" * (config.mode == "vae")
        + ", the augmentations" * config.augment + ", the dropout masks" * (config.dropout > 0) + ".",
        "generator = torch.Generator().manual_seed(SEED)",
        "torch.manual_seed(SEED)",
        "model = VAE()",
        *([critic] if critic else []),
        optimizer_code(config),
        "steps_per_epoch = math.ceil(len(train_x) / BATCH_SIZE)",
        *(["TOTAL_STEPS = EPOCHS * steps_per_epoch"] if "TOTAL_STEPS" in schedule.setup else []),
        *([schedule.setup] if schedule.setup else []),
    ])
    sections = [_header(config, data, schedule), data_code(data), model_code(config, data.sample_shape), seeding,
                objective_code(config, image), *([augment] if augment else []), train, loop]
    return "\n\n\n".join(sections) + "\n"


def download_name(data: Dataset) -> tuple[str, str]:
    """(file name, MIME type) of the download: the script, or for data the script cannot load itself a zip of the
    script and that data (NPZ)."""
    return (SCRIPT, "text/x-python") if source(data.name) != "npz" else ("train_vae.zip", "application/zip")


def download(config: TrainConfig, data: Dataset) -> bytes:
    """The download's bytes (see `download_name`)."""
    script = training_script(config, data).encode()
    if source(data.name) != "npz":
        return script
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SCRIPT, script)
        archive.writestr(NPZ, npz_bytes(data))
    return buffer.getvalue()
