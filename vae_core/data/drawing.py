"""One handwritten digit, drawn on the Explore page or photographed on paper, made to look like its dataset's
images before it is encoded: a model has only seen digits framed the way its dataset frames them.

How each dataset framed its digits, as their authors describe it:
  mnist          NIST's digits scaled to fit a 20×20 box (aspect kept, anti-aliased: grey levels), then put in
                 28×28 with their centre of mass at the centre; pixels /255 (vae_core.data.idx)
  digits         scikit-learn's 8×8 digits (UCI optdigits): 32×32 bitmaps of size-normalised digits, the ink pixels
                 counted in 4×4 blocks, values 0..16 (the loader divides by 16)
  fashion-mnist  each photo trimmed, its longer side scaled to 28, centred and negated
Each stores light ink on black, so dark ink on light paper is inverted first. Pure numpy and Pillow; nothing in
an image runs, and its bytes, sides and pixels are capped before the pixels are decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np

from vae_core import limits

from .errors import DataError

MB = 2**20
MAX_BYTES = 20 * MB  # a phone's photo takes 2 to 8 MB
MAX_PIXELS = 50_000_000  # a 50-megapixel photo; the side is capped as for uploads (VAE_LAB_MAX_IMAGE_SIDE)
WORK_SIDE = 512  # the image is shrunk to at most this before any work: a digit needs no more
INK = 0.25  # after paper → 0 and the darkest ink → 1, fainter than this is paper (grain, shadows)
MIN_CONTRAST = 0.15  # less than this between the paper and the darkest ink: nothing was drawn


class NoInk(DataError):
    """The picture holds nothing to encode: one even shade."""


@dataclass(frozen=True)
class Frame:
    """Where a dataset puts its digit: the longer side of the ink is scaled to `box` in a `side`×`side` image,
    centred by its centre of mass ("mass") or by its bounding box ("box"); with `block`, the result is a bitmap
    (ink over half) whose `block`×`block` squares are averaged (the optdigits counts, /16)."""
    side: int
    box: int
    centre: str = "box"
    block: int = 1


FRAMES = {"mnist": Frame(28, 20, "mass"), "fashion-mnist": Frame(28, 28), "digits": Frame(32, 32, block=4)}


def read_image(data: bytes, where: str = "the image") -> np.ndarray:
    """The image as grey values (height, width) in [0, 1], at most WORK_SIDE a side; errors name it `where`."""
    from PIL import Image, ImageOps  # here, not at the top (bench/README.md, "Start-up imports")

    if not data:
        raise DataError(f"{where} is empty")
    if len(data) > MAX_BYTES:
        raise DataError(f"{where} is {len(data) / MB:.1f} MB; an image of one digit may take {MAX_BYTES // MB} MB")
    side = limits.current().max_image_side
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if max(width, height) > side or width * height > MAX_PIXELS:
                raise DataError(f"{where} is {width}×{height} pixels: refused as too large ({_largest(side)})")
            img.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG only: decode at a reduced scale when enough
            img = ImageOps.exif_transpose(img)  # a phone's photo stands as it was taken
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                ground = Image.new("RGBA", img.size, "white")  # a transparent ground is paper
                img = Image.alpha_composite(ground, img.convert("RGBA"))
            img = img.convert("L")
            img.thumbnail((WORK_SIDE, WORK_SIDE))
            return np.asarray(img, dtype=np.float64) / 255
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard on the header
        raise DataError(f"{where} claims too many pixels: refused as too large ({_largest(side)})") from None
    except Exception as e:  # Pillow raises many types for files it cannot read
        raise DataError(f"{where} is not an image Pillow can read ({type(e).__name__})") from None


def _largest(side: int) -> str:
    return f"at most {side} pixels a side and {MAX_PIXELS // 1_000_000} million pixels (VAE_LAB_MAX_IMAGE_SIDE)"


def read_data_url(url: str, where: str = "the drawing") -> np.ndarray:
    """A canvas's PNG data URL ("data:image/png;base64,…") as `read_image` reads a file."""
    head, _, body = url.partition(",")
    if head != "data:image/png;base64" or len(body) > MAX_BYTES * 4 // 3 + 4:
        raise DataError(f"{where} is not a PNG of a size a canvas sends")
    try:
        return read_image(base64.b64decode(body, validate=True), where)
    except binascii.Error:
        raise DataError(f"{where} is not a PNG of a size a canvas sends") from None


def ink(grey: np.ndarray) -> np.ndarray:
    """Light ink on a black ground, as the datasets store it: inverted when the ground is light (most of the
    picture is paper, so its median is the paper's shade), the paper set to 0 and the darkest ink to 1, and
    what stays fainter than INK dropped (paper grain, shadows)."""
    grey = np.asarray(grey, dtype=np.float64)
    values = 1 - grey if np.median(grey) > 0.5 else grey
    paper = np.median(values)
    contrast = values.max() - paper
    if contrast < MIN_CONTRAST:
        raise NoInk("no ink found: the image is one even shade (draw, or photograph, a dark digit on light "
                    "paper, or a light one on black)")
    values = np.clip((values - paper) / contrast, 0, 1)
    values[values < INK] = 0
    return values


def frame(values: np.ndarray, layout: Frame) -> np.ndarray:
    """The ink cropped to its bounding box, its longer side scaled to `layout.box` (aspect kept) and placed in
    a `layout.side` square as the dataset centres its digits; (side / block, side / block) in [0, 1]."""
    from PIL import Image

    rows, cols = np.nonzero(values)
    crop = values[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = layout.box / max(crop.shape)
    height, width = (max(1, min(layout.box, round(n * scale))) for n in crop.shape)
    small = Image.fromarray(crop.astype(np.float32), "F").resize((width, height), Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(small, dtype=np.float64), 0, 1)
    out = np.zeros((layout.side, layout.side))
    top, left = (layout.side - height) // 2, (layout.side - width) // 2
    if layout.centre == "mass" and digit.sum() > 0:  # MNIST: move the centre of mass to the middle pixel
        ys, xs = np.indices(digit.shape)
        top = int(np.clip(round(layout.side / 2 - (ys * digit).sum() / digit.sum()), 0, layout.side - height))
        left = int(np.clip(round(layout.side / 2 - (xs * digit).sum() / digit.sum()), 0, layout.side - width))
    out[top:top + height, left:left + width] = digit
    if layout.block > 1:
        n = layout.side // layout.block
        out = (out > 0.5).reshape(n, layout.block, n, layout.block).mean((1, 3))
    return out


def prepare(grey: np.ndarray, dataset: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The picture as the model's (square) input (channels, side, side), float32 in [0, 1]: inverted, cropped,
    scaled and centred as `dataset` frames its digits (FRAMES); another dataset gets its ink fitted to the frame."""
    channels, side, _ = shape
    layout = FRAMES.get(dataset)
    if layout is None or layout.side // layout.block != side:
        layout = Frame(side, side)
    return np.repeat(frame(ink(grey), layout)[None], channels, 0).astype(np.float32)


def as_it_is(grey: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The picture only resized to the model's input, as it is: what a model sees without `prepare`."""
    from PIL import Image

    channels, height, width = shape
    small = Image.fromarray(np.asarray(grey, dtype=np.float32), "F").resize((width, height), Image.Resampling.BOX)
    image = np.clip(np.asarray(small, dtype=np.float64), 0, 1)
    return np.repeat(image[None], channels, 0).astype(np.float32)
