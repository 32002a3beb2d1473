"""The script's data: the training and validation splits exactly as vae_core/data builds them. The digits load
from scikit-learn and MNIST-style sets from their IDX files (gzip + numpy); generated and uploaded sets travel
as an .npz beside the script, since their generators are VAE Lab's own."""

from __future__ import annotations

import io
import re

import numpy as np

from vae_core.data import Dataset
from vae_core.data.idx import IDX_DATASETS

NPZ = "data.npz"  # a fixed name: a dataset's name never becomes a path

DIGITS = '''
# --- Data: scikit-learn's 8×8 digits (values 0..16) scaled to [0, 1], split as VAE Lab splits them (seed 0,
# whatever the run's seed): 15 % validation, 15 % test (unused here), the other 70 % train.
images = torch.from_numpy(load_digits().images.astype(np.float32) / 16).unsqueeze(1)  # (1797, 1, 8, 8)
order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
n_held_out = round(len(images) * 0.15)
train_x, val_x = images[order[2 * n_held_out:]], images[order[:n_held_out]]'''

IDX = '''
# --- Data: {title}'s IDX files (gzip-compressed or raw) in --data, split as VAE Lab splits them: with the
# train files, a seeded 10 % of them (seed 0) validate; with only the t10k files, the first 80 % train and the
# next 10 % validate (the last 10 % are VAE Lab's test split).
def read_images(stem):
    """uint8 images (N, H, W) of one IDX file: a big-endian header (magic number, then each size), then pixels."""
    path = os.path.join(args.data, stem)
    with (gzip.open(path + ".gz") if os.path.exists(path + ".gz") else open(path, "rb")) as f:
        raw = f.read()
    sizes = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3)]
    return torch.from_numpy(np.frombuffer(raw, np.uint8, offset=16).reshape(sizes).copy())


if any(os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte" + ext)) for ext in ("", ".gz")):
    images = read_images("train-images-idx3-ubyte")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    n_val = round(len(images) * 0.1)
    train_u8, val_u8 = images[order[n_val:]], images[order[:n_val]]
else:
    images = read_images("t10k-images-idx3-ubyte")
    n_held_out = len(images) // 10
    n_train = len(images) - 2 * n_held_out
    train_u8, val_u8 = images[:n_train], images[n_train:n_train + n_held_out]
train_x, val_x = (u8.unsqueeze(1).float().div_(255) for u8 in (train_u8, val_u8))  # (N, 1, H, W) in [0, 1]'''

NPZ_LOAD = '''
# --- Data: {what}, saved by VAE Lab beside this script
# ({npz}: its training and validation splits{shape}).
data = np.load(args.data)
train_x, val_x = torch.from_numpy(data["train"]), torch.from_numpy(data["val"])'''


def title(data: Dataset) -> str:
    """The dataset as the script's comments name it: an upload's file name only in plain characters (it lands in a
    docstring and comments)."""
    info = IDX_DATASETS.get(data.name) or {}
    if data.name == "digits":
        return "scikit-learn's 8×8 digits"
    if data.name.startswith("upload:"):
        return f"the uploaded set {re.sub(r'[^A-Za-z0-9 ._()-]', '_', data.name.removeprefix('upload:'))[:60]}"
    return info.get("title") or f"the generated set {data.name}"


def source(name: str) -> str:
    """Where the script reads `name` from: "digits", "idx" or "npz"."""
    return "digits" if name == "digits" else "idx" if name in IDX_DATASETS else "npz"


def data_code(data: Dataset) -> str:
    kind = source(data.name)
    if kind == "digits":
        return DIGITS.strip("\n")
    if kind == "idx":
        return IDX.strip("\n").format(title=IDX_DATASETS[data.name]["title"])
    shape = ", images (N, C, H, W) in [0, 1]" if data.is_image else ", 2-D points (N, 2)"
    return NPZ_LOAD.strip("\n").format(what=title(data), npz=NPZ, shape=shape)


def data_default(data: Dataset) -> str:
    """The --data argument's default: the IDX folder or the .npz file, relative to where the script runs."""
    return {"digits": "", "idx": data.name, "npz": NPZ}[source(data.name)]


def npz_bytes(data: Dataset) -> bytes:
    """The training and validation splits as a compressed .npz (float32; read back without pickle)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=data.train.numpy(), val=data.val.numpy())
    return buffer.getvalue()
