"""Datasets uploaded by students: a .zip of image files or a .npz of arrays, checked against the limits.

Nothing in an upload is executed: .npz files load with allow_pickle=False. Limits (vae_core.limits):
the upload itself, everything it unpacks to (zip entries, .npz arrays, decoded pixels) and the
resized result each stay within VAE_LAB_MAX_UPLOAD_MB; images are counted against VAE_LAB_MAX_IMAGES
and their sides, read from the file header before any pixel is decoded, against VAE_LAB_MAX_IMAGE_SIDE.
`load_image` checks a single image (to encode with a trained model) the same way.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F

from vae_core import limits

from .dataset import Dataset, from_splits, random_split
from .errors import DataError

MB = 2**20
MIN_SIZE, MAX_SIZE = 4, 128  # side of the images after resizing
MAX_CLASSES = 1000  # label ids of an .npz run from 0 to MAX_CLASSES - 1
BATCH = 1024  # .npz images converted at a time, so the float working copy stays small
SKIPPED_FILES = {"thumbs.db", "desktop.ini"}  # clutter that Windows adds to zipped folders


def load_upload(data: bytes, filename: str, size: int = 28, channels: int = 1, seed: int = 0) -> Dataset:
    """Images from an uploaded .zip or .npz, resized to `size` x `size` with `channels` (1 grey, 3 RGB),
    split 80/10/10 by a permutation seeded with `seed`. Named "upload:<file name>"."""
    name = re.split(r"[/\\]", filename)[-1] or "upload"
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"image size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    lim = limits.current()
    if len(data) > lim.max_upload_mb * MB:
        raise DataError(f"{name}: {len(data) / MB:.1f} MB is over this server's upload limit of "
                        f"{lim.max_upload_mb} MB (VAE_LAB_MAX_UPLOAD_MB)")
    suffix = PurePosixPath(name.lower()).suffix
    if suffix == ".zip":
        images, labels, class_names = _from_zip(data, name, size, channels, lim)
    elif suffix == ".npz":
        images, labels, class_names = _from_npz(data, name, size, channels, lim)
    else:
        raise DataError(f"{name}: upload a .zip of PNG/JPEG images or an .npz of image arrays, "
                        f"not {suffix or 'a file without an extension'}")
    if len(images) < 3:
        raise DataError(f"{name}: holds {len(images)} image(s); need at least 3 (to train, validate "
                        f"and test)")
    splits = random_split(len(images), 0.1, 0.1, seed)
    return from_splits("upload:" + name, "image", images, labels, class_names, splits)


def load_image(data: bytes, shape: tuple[int, int, int], where: str = "the image") -> torch.Tensor:
    """One uploaded image as float32 `shape` (channels, height, width) in [0, 1]; errors name it `where`."""
    channels, height, width = shape
    image, _ = _decode_image(data, where, (width, height), "L" if channels == 1 else "RGB", 0, limits.current())
    pixels = torch.tensor(image, dtype=torch.float32).div_(255).reshape(height, width, channels)
    return pixels.permute(2, 0, 1).contiguous()


def _check_result_size(count: int, size: int, channels: int, where: str, lim: limits.Limits) -> None:
    """The resized float32 images must fit in the upload limit too."""
    result = count * channels * size * size * 4
    if result > lim.max_upload_mb * MB:
        raise DataError(f"{where}: {count} images at {size}×{size}×{channels} would take "
                        f"{result / MB:.0f} MB, over the limit of {lim.max_upload_mb} MB "
                        f"(VAE_LAB_MAX_UPLOAD_MB); choose a smaller size or grey")


# --- .zip of image files ---------------------------------------------------------------------------

def _check_entry_name(entry: str, archive: str) -> None:
    parts = re.split(r"[/\\]", entry)
    if entry.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", entry) or ".." in parts:
        raise DataError(f"{archive}: entry {entry!r:.80} points outside the archive (absolute path "
                        f"or '..'); refused")


def _is_clutter(entry: str) -> bool:
    parts = entry.split("/")
    return (parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)
            or parts[-1].lower() in SKIPPED_FILES)


def _from_zip(data: bytes, archive: str, size: int, channels: int, lim: limits.Limits):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise DataError(f"{archive}: not a readable zip file ({e})") from None
    for info in infos:
        _check_entry_name(info.filename, archive)
    infos = [i for i in infos if i.filename and not i.is_dir() and not _is_clutter(i.filename)]
    if len(infos) < 3:  # the common message, before any work
        raise DataError(f"{archive}: holds {len(infos)} image(s); need at least 3 (to train, "
                        f"validate and test)")
    if len(infos) > lim.max_images:
        raise DataError(f"{archive}: {len(infos)} files is over the limit of {lim.max_images} images "
                        f"(VAE_LAB_MAX_IMAGES)")
    _check_result_size(len(infos), size, channels, archive, lim)
    cap = lim.max_upload_mb * MB
    declared = sum(i.file_size for i in infos)
    if declared > cap:
        raise DataError(f"{archive}: its files would unpack to {declared / MB:.0f} MB, over the limit "
                        f"of {lim.max_upload_mb} MB (VAE_LAB_MAX_UPLOAD_MB); is it a zip bomb?")
    mode = "L" if channels == 1 else "RGB"
    pixels, unpacked, decoded = [], 0, 0
    for info in infos:
        where = f"{archive}: {info.filename!r:.80}"
        try:
            with zf.open(info) as f:
                blob = f.read(cap - unpacked + 1)  # never more than the limit, whatever the header says
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error,
                ValueError) as e:
            raise DataError(f"{where} cannot be read ({e})") from None
        unpacked += len(blob)
        if unpacked > cap:
            raise DataError(f"{archive}: unpacks to more than {lim.max_upload_mb} MB "
                            f"(VAE_LAB_MAX_UPLOAD_MB); is it a zip bomb?")
        image, decoded = _decode_image(blob, where, (size, size), mode, decoded, lim)
        pixels.append(image)
    labels, class_names = _folder_labels([i.filename for i in infos])
    images = torch.from_numpy(np.stack(pixels)).float().div_(255)
    images = images.unsqueeze(1) if channels == 1 else images.permute(0, 3, 1, 2).contiguous()
    return images, labels, class_names


def _decode_image(blob: bytes, where: str, size: tuple[int, int], mode: str, decoded: int, lim: limits.Limits):
    """uint8 (height, width) or (height, width, 3) for `size` (width, height), and the running count of
    decoded bytes.

    The header's dimensions are checked before pixels are decoded; JPEGs decode at a reduced scale."""
    from PIL import Image  # here, not at the top (bench/README.md, "Start-up imports")

    try:
        with Image.open(io.BytesIO(blob)) as img:
            width, height = img.size
            if max(width, height) > lim.max_image_side:
                raise DataError(f"{where} is {width}×{height} pixels: refused as a possible decompression "
                                f"bomb; the limit is {lim.max_image_side} pixels a side "
                                f"(VAE_LAB_MAX_IMAGE_SIDE)")
            img.draft(mode, size)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale when enough
            decoded += img.size[0] * img.size[1] * len(img.getbands())
            if decoded > lim.max_upload_mb * MB:
                raise DataError(f"{where}: the images decode to more than {lim.max_upload_mb} MB of "
                                f"pixels (VAE_LAB_MAX_UPLOAD_MB); a decompression bomb?")
            img = img.convert(mode).resize(size, Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8), decoded
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard on the header
        raise DataError(f"{where} claims too many pixels: refused as a decompression bomb; the limit is "
                        f"{lim.max_image_side} pixels a side (VAE_LAB_MAX_IMAGE_SIDE)") from None
    except Exception as e:  # Pillow raises many types for files it cannot read
        raise DataError(f"{where} is not an image Pillow can read ({type(e).__name__})") from None


def _folder_labels(entries: list[str]):
    """Labels from the first folder below any folders all images share, when every image has one."""
    folders = [PurePosixPath(e).parts[:-1] for e in entries]
    common = 0
    while all(len(f) > common and f[common] == folders[0][common] for f in folders):
        common += 1
    if any(len(f) == common for f in folders):
        return None, None
    tops = [f[common] for f in folders]
    class_names = tuple(sorted(set(tops)))
    ids = {c: i for i, c in enumerate(class_names)}
    return torch.tensor([ids[t] for t in tops], dtype=torch.int64), class_names


# --- .npz of arrays --------------------------------------------------------------------------------

def _from_npz(data: bytes, archive: str, size: int, channels: int, lim: limits.Limits):
    if not data.startswith(b"PK"):
        raise DataError(f"{archive}: not a readable .npz file (an .npz is a zip of arrays saved by np.savez)")
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # zipfile and numpy raise many types for damaged archives
        raise DataError(f"{archive}: not a readable .npz file ({type(e).__name__}: {e})") from None
    with npz:
        declared = sum(i.file_size for i in npz.zip.infolist())
        if declared > lim.max_upload_mb * MB:
            raise DataError(f"{archive}: its arrays would unpack to {declared / MB:.0f} MB, over the limit "
                            f"of {lim.max_upload_mb} MB (VAE_LAB_MAX_UPLOAD_MB)")
        keys = list(npz.files)
        image_key = next((k for k in ("images", "x") if k in keys), None)
        if image_key is None:
            others = [k for k in keys if k not in ("labels", "y")]
            if len(others) != 1:
                raise DataError(f"{archive}: name the image array 'images' (found "
                                f"{', '.join(keys) or 'no arrays'})")
            image_key = others[0]
        label_key = next((k for k in ("labels", "y") if k in keys), None)
        x = _read_array(npz, image_key, archive)
        y = None if label_key is None else _read_array(npz, label_key, archive)
    images = _images_from_array(x, f"{archive}: '{image_key}'", size, channels, lim)
    if y is None:
        return images, None, None
    return (images, *_labels_from_array(y, len(images), f"{archive}: '{label_key}'"))


def _read_array(npz, key: str, archive: str) -> np.ndarray:
    try:
        array = npz[key]
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise DataError(f"{archive}: '{key}' holds pickled Python objects, which are never loaded; "
                            f"save plain numeric arrays (np.savez with uint8 or float arrays)") from None
        raise DataError(f"{archive}: '{key}' cannot be read ({e})") from None
    except Exception as e:  # a damaged member: zipfile, zlib and numpy errors, or a header claiming too much
        raise DataError(f"{archive}: '{key}' cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(array, np.ndarray):  # NpzFile returns the raw bytes of a member that is not .npy
        raise DataError(f"{archive}: '{key}' is not a numpy array (.npy) member")
    return array


def _images_from_array(x: np.ndarray, where: str, size: int, channels: int,
                       lim: limits.Limits) -> torch.Tensor:
    """float32 (N, channels, size, size) in [0, 1] from (N,H,W), (N,H,W,C) or (N,C,H,W)."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {x.dtype}; images must be numbers (uint8 or float)")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise DataError(f"{where} has shape {x.shape}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) "
                        f"with C = 1, 3 or 4")
    n, _, height, width = x.shape
    if x.size == 0:
        raise DataError(f"{where} has shape {x.shape}; it holds no images")
    if n > lim.max_images:
        raise DataError(f"{where}: {n} images is over the limit of {lim.max_images} (VAE_LAB_MAX_IMAGES)")
    if max(height, width) > lim.max_image_side:
        raise DataError(f"{where}: images of {width}×{height} pixels are over the limit of "
                        f"{lim.max_image_side} (VAE_LAB_MAX_IMAGE_SIDE)")
    _check_result_size(n, size, channels, where, lim)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where} contains NaN or infinite values")
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise DataError(f"{where}: values run from {low:g} to {high:g}; expected 0..1 or 0..255")
    scale = 255.0 if x.dtype == np.uint8 or high > 1 else 1.0
    out = torch.empty(n, channels, size, size)
    for start in range(0, n, BATCH):
        out[start:start + BATCH] = _convert(x[start:start + BATCH], scale, size, channels)
    return out


def _convert(x: np.ndarray, scale: float, size: int, channels: int) -> torch.Tensor:
    """One batch (B, C, H, W) of numbers in [0, scale] to float32 (B, channels, size, size) in [0, 1]."""
    t = torch.from_numpy(x.astype(np.float32)) / scale
    if t.shape[1] == 4:
        t = t[:, :3]  # drop alpha, as Pillow does
    if channels == 1 and t.shape[1] == 3:
        t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)  # Pillow's "L"
    elif channels == 3 and t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    if t.shape[2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.clamp(0, 1)


def _labels_from_array(y: np.ndarray, count: int, where: str):
    """int64 label ids and class names "0".."max"."""
    if y.dtype.kind not in "iu" or y.shape != (count,):
        raise DataError(f"{where} must be {count} whole numbers, one per image "
                        f"(got dtype {y.dtype}, shape {y.shape})")
    if y.min() < 0 or y.max() >= MAX_CLASSES:
        raise DataError(f"{where}: labels must run from 0 to at most {MAX_CLASSES - 1}")
    return torch.from_numpy(y.astype(np.int64)), tuple(str(v) for v in range(int(y.max()) + 1))
