"""Datasets uploaded by students: a .zip of images or a .npz of arrays, checked against the limits."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vae_core import limits

from .dataset import Dataset, from_splits, random_split
from .errors import DataError

MIB = 2**20
MAX_SIZE = 256  # side of the images after resizing
SKIPPED_FILES = {"thumbs.db", "desktop.ini"}  # clutter that Windows adds to zipped folders


def load_upload(data: bytes, filename: str, size: int = 28, channels: int = 1, seed: int = 0) -> Dataset:
    """Images from an uploaded .zip or .npz, resized to `size` x `size` with `channels` (1 or 3),
    split 80/10/10 by a permutation seeded with `seed`."""
    name = re.split(r"[/\\]", filename)[-1]
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    if not 1 <= size <= MAX_SIZE:
        raise DataError(f"image size must be between 1 and {MAX_SIZE} pixels, got {size}")
    lim = limits.current()
    if len(data) > lim.max_upload_mb * MIB:
        raise DataError(f"{name}: {len(data) / MIB:.1f} MiB is over the upload limit of "
                        f"{lim.max_upload_mb} MiB")
    extension = PurePosixPath(name.lower()).suffix
    if extension == ".zip":
        images, labels, class_names = _from_zip(data, name, size, channels, lim)
    elif extension == ".npz":
        images, labels, class_names = _from_npz(data, name, size, channels, lim)
    else:
        raise DataError(f"{name}: unsupported file type {extension or '(no extension)'}; upload a "
                        f".zip of images (PNG, JPEG, ...) or a .npz of arrays")
    if len(images) < 3:
        raise DataError(f"{name}: holds {len(images)} image(s); need at least 3 images "
                        f"(for training, validation and test)")
    splits = random_split(len(images), 0.1, 0.1, seed)
    return from_splits("upload:" + name, "image", images, labels, class_names, splits)


# --- .zip of image files ---------------------------------------------------------------------------

def _check_entry_name(entry: str, archive: str) -> None:
    parts = re.split(r"[/\\]", entry)
    if entry.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", entry) or ".." in parts:
        raise DataError(f"{archive}: entry {entry!r} points outside the archive (absolute path or "
                        f"'..'); refusing the archive")


def _is_clutter(entry: str) -> bool:
    parts = entry.split("/")
    return (parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)
            or parts[-1].lower() in SKIPPED_FILES)


def _from_zip(data: bytes, archive: str, size: int, channels: int, lim: limits.Limits):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise DataError(f"{archive}: not a valid zip archive ({e})") from None
    for info in infos:
        _check_entry_name(info.filename, archive)
    infos = [i for i in infos if not i.is_dir() and not _is_clutter(i.filename)]
    if len(infos) > lim.max_images:
        raise DataError(f"{archive}: holds {len(infos)} files; the limit is {lim.max_images} images")
    cap = lim.max_upload_mb * MIB
    declared = sum(i.file_size for i in infos)
    if declared > cap:
        raise DataError(f"{archive}: would unpack to {declared / MIB:.0f} MiB; the limit is "
                        f"{lim.max_upload_mb} MiB")
    mode = "L" if channels == 1 else "RGB"
    pixels, read = [], 0
    for info in infos:
        entry = info.filename
        try:
            with zf.open(info) as f:
                blob = f.read(cap - read + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as e:
            raise DataError(f"{archive}: cannot unpack {entry!r} ({e})") from None
        read += len(blob)
        if read > cap:
            raise DataError(f"{archive}: unpacks to more than {lim.max_upload_mb} MiB; that is the limit")
        pixels.append(_decode_image(blob, f"{archive}: {entry!r}", size, mode, lim.max_image_side))
    if not pixels:
        raise DataError(f"{archive}: contains no image files")
    labels, class_names = _folder_labels([i.filename for i in infos])
    images = torch.from_numpy(np.stack(pixels)).float().div_(255)
    images = images.unsqueeze(1) if channels == 1 else images.permute(0, 3, 1, 2).contiguous()
    return images, labels, class_names


def _decode_image(blob: bytes, where: str, size: int, mode: str, max_side: int) -> np.ndarray:
    """uint8 (size, size) or (size, size, 3); the dimensions are checked before pixels are decoded."""
    try:
        with Image.open(io.BytesIO(blob)) as img:
            if max(img.size) > max_side:
                raise DataError(f"{where}: image is {img.size[0]}x{img.size[1]} pixels; the limit "
                                f"is {max_side} pixels per side")
            img = img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:  # Pillow raises many types for files it cannot read
        raise DataError(f"{where}: not an image that can be read ({type(e).__name__}: {e})") from None


def _folder_labels(entries: list[str]):
    """Labels from the first folder below any folder all images share, when every image has one."""
    folders = [PurePosixPath(e).parts[:-1] for e in entries]
    common = 0
    while folders and all(len(f) > common and f[common] == folders[0][common] for f in folders):
        common += 1
    if not folders or any(len(f) <= common for f in folders):
        return None, None
    tops = [f[common] for f in folders]
    class_names = tuple(sorted(set(tops)))
    ids = {c: i for i, c in enumerate(class_names)}
    return torch.tensor([ids[t] for t in tops], dtype=torch.int64), class_names


# --- .npz of arrays --------------------------------------------------------------------------------

def _from_npz(data: bytes, archive: str, size: int, channels: int, lim: limits.Limits):
    if data.startswith(b"\x93NUMPY"):
        raise DataError(f"{archive}: is a single .npy array, not a .npz archive; save with np.savez")
    if not data.startswith(b"PK"):
        raise DataError(f"{archive}: not a .npz archive (those are zip files made by np.savez)")
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # zipfile and numpy raise many types for damaged archives
        raise DataError(f"{archive}: not a valid .npz archive ({type(e).__name__}: {e})") from None
    cap = lim.max_upload_mb * MIB
    with npz:
        declared = sum(i.file_size for i in npz.zip.infolist())
        if declared > cap:
            raise DataError(f"{archive}: would unpack to {declared / MIB:.0f} MiB; the limit is "
                            f"{lim.max_upload_mb} MiB")
        keys = list(npz.files)
        image_key = next((k for k in ("images", "x") if k in keys), keys[0] if len(keys) == 1 else None)
        if image_key is None:
            raise DataError(f"{archive}: holds arrays {keys}; name the images array 'images' or 'x'")
        label_key = next((k for k in ("labels", "y") if k in keys and k != image_key), None)
        x = _read_array(npz, image_key, archive)
        y = None if label_key is None else _read_array(npz, label_key, archive)
    images = _images_from_array(x, f"{archive}: array {image_key!r}", size, channels, lim)
    if y is None:
        return images, None, None
    labels, class_names = _labels_from_array(y, len(images), f"{archive}: array {label_key!r}")
    return images, labels, class_names


def _read_array(npz, key: str, archive: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(f"{archive}: array {key!r} holds Python objects (pickled data), which are "
                            f"refused for safety; save plain numeric arrays") from None
        raise DataError(f"{archive}: array {key!r} cannot be read ({e})") from None
    except Exception as e:
        raise DataError(f"{archive}: array {key!r} cannot be read ({type(e).__name__}: {e})") from None


def _images_from_array(x: np.ndarray, where: str, size: int, channels: int,
                       lim: limits.Limits) -> torch.Tensor:
    """float32 (N, channels, size, size) in [0, 1] from (N,H,W), (N,H,W,C) or (N,C,H,W)."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: has dtype {x.dtype}; images must be integers, booleans or floats")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise DataError(f"{where}: has shape {x.shape}; expected (N, H, W), (N, H, W, C) with C "
                        f"1, 3 or 4, or (N, C, H, W) with C 1 or 3")
    n, _, height, width = x.shape
    if x.size == 0:
        raise DataError(f"{where}: has shape {x.shape}; it contains no images")
    if n > lim.max_images:
        raise DataError(f"{where}: holds {n} images; the limit is {lim.max_images}")
    if max(height, width) > lim.max_image_side:
        raise DataError(f"{where}: images are {width}x{height} pixels; the limit is "
                        f"{lim.max_image_side} pixels per side")
    x = torch.from_numpy(_unit_range(x, where))
    if x.shape[1] == 4:
        x = x[:, :3]  # drop alpha, as Pillow does
    if channels == 1 and x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if (height, width) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).contiguous()


def _unit_range(x: np.ndarray, where: str) -> np.ndarray:
    """float32 copy in [0, 1]: uint8 / 255; other numbers as is when in [0, 1], / 255 when in [0, 255]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where}: contains NaN or infinite values")
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise DataError(f"{where}: values run from {low} to {high}; pixel values must lie in "
                        f"[0, 1] or [0, 255]")
    x = x.astype(np.float32)
    return x / 255 if high > 1 else x


def _labels_from_array(y: np.ndarray, n: int, where: str):
    """int64 ids 0..K-1 and the original values (sorted) as class names."""
    if y.dtype.kind not in "iu" or y.ndim != 1 or len(y) != n:
        raise DataError(f"{where}: labels must be a 1-D integer array with one label per image "
                        f"({n}); got dtype {y.dtype} and shape {y.shape}")
    values, ids = np.unique(y, return_inverse=True)
    return torch.from_numpy(ids.astype(np.int64).reshape(-1)), tuple(str(v) for v in values)
