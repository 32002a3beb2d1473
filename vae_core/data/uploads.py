"""User data: an .npz of images or a zip of image files, validated, capped and resized.

Nothing in an upload is ever executed: .npz files load with allow_pickle=False, zip entries are
read as bytes with a size cap, and Pillow checks an image's size before decoding its pixels.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vae_core import limits

from .dataset import Dataset, from_splits, random_split
from .errors import DataError


def load_upload(data: bytes, filename: str, size: int = 28, channels: int = 1, seed: int = 0) -> Dataset:
    """A Dataset of `size`×`size` images with `channels` (1 grey, 3 RGB), split 80/10/10 from `seed`."""
    lim = limits.current()
    name = PurePosixPath(filename.replace("\\", "/")).name or "upload"
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 4 <= size <= 128:
        raise DataError(f"image size must be between 4 and 128 pixels, got {size}")
    if len(data) > lim.max_upload_mb * 2**20:
        raise DataError(f"{name}: {len(data) / 2**20:.1f} MB is over this server's upload limit of "
                        f"{lim.max_upload_mb} MB (VAE_LAB_MAX_UPLOAD_MB)")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".npz":
        images, labels, class_names = _from_npz(data, name, lim)
    elif suffix == ".zip":
        images, labels, class_names = _from_zip(data, name, lim)
    else:
        raise DataError(f"{name}: upload a .zip of PNG/JPEG images or an .npz of image arrays, not {suffix or 'this'}")
    if len(images) < 3:
        raise DataError(f"{name}: holds {len(images)} image(s); need at least 3 (to train, validate and test)")
    mode = "L" if channels == 1 else "RGB"
    x = np.stack([np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR), dtype=np.float32)
                  for im in images]) / 255.0
    x = torch.from_numpy(x.reshape(len(images), size, size, channels)).permute(0, 3, 1, 2).contiguous()
    y = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
    return from_splits(f"upload:{name}", "image", x, y, class_names, random_split(len(x), 0.1, 0.1, seed))


def _from_npz(data: bytes, name: str, lim: limits.Limits):
    if not data.startswith(b"PK"):
        raise DataError(f"{name}: not a readable .npz file (an .npz is a zip of arrays saved by np.savez)")
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{name}: holds pickled Python objects, which are never loaded; save plain "
                            "numeric arrays (np.savez with uint8 or float arrays)") from None
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None
    key = next((k for k in ("images", "x") if k in arrays), None)
    if key is None:
        candidates = [k for k in arrays if k not in ("labels", "y")]
        if len(candidates) != 1:
            raise DataError(f"{name}: name the image array 'images' (found {', '.join(arrays) or 'no arrays'})")
        key = candidates[0]
    x = arrays[key]
    if x.dtype.kind not in "buif":
        raise DataError(f"{name}: '{key}' has dtype {x.dtype}; images must be numbers (uint8 or float)")
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3, 4))):
        raise DataError(f"{name}: '{key}' has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
                        "with C = 1, 3 or 4")
    if len(x) == 0 or x.size == 0:
        raise DataError(f"{name}: '{key}' holds no images")
    if len(x) > lim.max_images:
        raise DataError(f"{name}: {len(x)} images is over the limit of {lim.max_images} (VAE_LAB_MAX_IMAGES)")
    if max(x.shape[1:3]) > lim.max_image_side:
        raise DataError(f"{name}: images of {x.shape[1]}×{x.shape[2]} pixels are over the limit of "
                        f"{lim.max_image_side} (VAE_LAB_MAX_IMAGE_SIDE)")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise DataError(f"{name}: '{key}' contains NaN or infinite values")
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise DataError(f"{name}: '{key}' values run from {low:g} to {high:g}; expected 0..1 or 0..255")
    scale = 255.0 if high <= 1.0 else 1.0
    pixels = np.clip(np.rint(x * scale), 0, 255).astype(np.uint8)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    images = [Image.fromarray(p) for p in pixels]
    labels = _npz_labels(arrays, len(images), name)
    class_names = None if labels is None else tuple(str(v) for v in range(int(labels.max()) + 1))
    return images, labels, class_names


def _npz_labels(arrays: dict, count: int, name: str):
    key = next((k for k in ("labels", "y") if k in arrays), None)
    if key is None:
        return None
    labels = arrays[key]
    if labels.dtype.kind not in "iu" or labels.shape != (count,):
        raise DataError(f"{name}: '{key}' must be {count} whole numbers, one per image "
                        f"(got dtype {labels.dtype}, shape {labels.shape})")
    if labels.min() < 0 or labels.max() >= 1000:
        raise DataError(f"{name}: '{key}' must run from 0 to at most 999")
    return labels.astype(np.int64)


def _from_zip(data: bytes, name: str, lim: limits.Limits):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{name}: not a readable zip file ({exc})") from None
    for entry in entries:
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        if entry.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DataError(f"{name}: entry {entry.filename!r:.80} points outside the archive; refused")
    entries = [e for e in entries if not e.is_dir() and not _is_metadata(e.filename)]
    if len(entries) > lim.max_images:
        raise DataError(f"{name}: {len(entries)} files is over the limit of {lim.max_images} images "
                        "(VAE_LAB_MAX_IMAGES)")
    budget = lim.max_upload_mb * 2**20
    if sum(e.file_size for e in entries) > budget:
        raise DataError(f"{name}: its files would unpack to more than {lim.max_upload_mb} MB "
                        "(VAE_LAB_MAX_UPLOAD_MB); is it a zip bomb?")
    images, folders = [], []
    for entry in entries:
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        blob = _read_capped(archive, entry, budget, name)
        budget -= len(blob)
        images.append(_open_image(blob, entry.filename, name, lim))
        folders.append(parts[0] if len(parts) > 1 else None)
    if folders and all(folders):
        class_names = tuple(sorted(set(folders)))
        return images, np.array([class_names.index(f) for f in folders]), class_names
    return images, None, None


def _is_metadata(path: str) -> bool:
    return path.startswith("__MACOSX/") or any(part.startswith(".") for part in PurePosixPath(path).parts)


def _read_capped(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, budget: int, name: str) -> bytes:
    """The entry's bytes, refusing to decompress more than `budget` whatever its header claims."""
    try:
        with archive.open(entry) as f:
            blob = f.read(budget + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DataError(f"{name}: entry {entry.filename!r:.80} cannot be read ({exc})") from None
    if len(blob) > budget:
        raise DataError(f"{name}: unpacks to more than its declared size allows; is it a zip bomb?")
    return blob


def _open_image(blob: bytes, entry: str, name: str, lim: limits.Limits) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(blob))
        width, height = image.size
        if max(width, height) > lim.max_image_side:
            raise DataError(f"{name}: {entry!r:.80} is {width}×{height} pixels, over the limit of "
                            f"{lim.max_image_side} (VAE_LAB_MAX_IMAGE_SIDE)")
        image.load()
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: {entry!r:.80} is not an image Pillow can read ({type(exc).__name__})") from None
    return image
