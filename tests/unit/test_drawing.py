"""A drawing or a photo of a digit, prepared as its dataset's digits are (vae_core.data.drawing): inverted, cropped,
scaled and centred; and the claim behind it: a model recognises a digit photographed small, off-centre and dark on
light paper far more often once it is prepared than as it is."""

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from upload_files import png_claiming
from vae_core.config import TrainConfig
from vae_core.data import DataError, drawing
from vae_core.train import Trainer, fit
from vae_core.views import explore


def _photo(image: np.ndarray, rng: np.random.Generator, side: int = 40) -> np.ndarray:
    """A dataset image as a phone's photo of it: enlarged to `side`, dark ink on slightly noisy light paper,
    small and somewhere off-centre on a 120×160 picture."""
    big = np.clip(np.asarray(Image.fromarray(image.astype(np.float32), "F").resize(
        (side, side), Image.Resampling.BILINEAR)), 0, 1)
    paper = np.clip(0.8 + 0.03 * rng.standard_normal((120, 160)), 0, 1)
    top, left = rng.integers(5, 120 - side - 5), rng.integers(5, 160 - side - 5)
    paper[top:top + side, left:left + side] -= 0.7 * big
    return np.clip(paper, 0, 1)


def _png(pixels: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_mnist_digit_photographed_comes_back_as_mnist_framed_it(mnist):
    """MNIST's own framing (20-pixel box, centre of mass at the centre) undone and redone gives its image back."""
    rng = np.random.default_rng(0)
    images = mnist.test[:20, 0].numpy()
    prepared = np.stack([drawing.prepare(_photo(im, rng, 84), "mnist", (1, 28, 28))[0] for im in images])
    as_is = np.stack([drawing.as_it_is(_photo(im, rng, 84), (1, 28, 28))[0] for im in images])
    assert np.sqrt(((prepared - images) ** 2).mean()) < 0.15  # as the images themselves, nearly
    assert np.sqrt(((as_is - images) ** 2).mean()) > 0.5  # grey paper, a small dark digit in a corner
    ys, xs = np.indices((28, 28))
    for image in prepared:
        mass = image.sum()
        assert abs((ys * image).sum() / mass - 14) <= 0.75 and abs((xs * image).sum() / mass - 14) <= 0.75
        rows, cols = np.nonzero(image)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20  # the longer side in MNIST's 20-pixel box


def test_a_digits_image_is_counted_in_blocks_as_the_8x8_digits_are(digits):
    rng = np.random.default_rng(1)
    images = digits.test[:20, 0].numpy()
    prepared = np.stack([drawing.prepare(_photo(im, rng), "digits", (1, 8, 8))[0] for im in images])
    assert np.allclose(prepared * 16, np.round(prepared * 16))  # counts of 16 pixels, over 16, as the loader scales
    assert np.all(prepared.max((1, 2)) == 1) and np.all(prepared[:, [0, -1]].max(2).max(1) > 0)  # fills the box
    as_is = np.stack([drawing.as_it_is(_photo(im, rng), (1, 8, 8))[0] for im in images])
    assert np.sqrt(((prepared - images) ** 2).mean()) < 0.6 * np.sqrt(((as_is - images) ** 2).mean())


def test_dark_ink_on_paper_and_light_ink_on_black_give_the_same_digit():
    ink = np.zeros((60, 90))
    ink[10:50, 30:36] = 1
    ink[10:16, 20:36] = 1
    light = drawing.prepare(0.05 + 0.9 * ink, "mnist", (1, 28, 28))
    dark = drawing.prepare(0.95 - 0.9 * ink, "mnist", (1, 28, 28))
    assert light.dtype == np.float32 and light.shape == (1, 28, 28) and np.allclose(light, dark)
    assert drawing.prepare(ink, "shapes", (3, 32, 32)).shape == (3, 32, 32)  # no frame of its own: fitted


def test_faint_marks_are_paper_and_an_even_picture_has_no_ink():
    grey = np.full((50, 50), 0.9)
    grey[10:40, 24:27] = 0.1  # the stroke
    grey[2, 2] = 0.8  # a speck of dust, a tenth as dark: not ink, so it does not stretch the crop
    values = drawing.ink(grey)
    assert values[2, 2] == 0 and values[20, 25] == 1
    with pytest.raises(drawing.NoInk, match="no ink found"):
        drawing.ink(np.full((50, 50), 0.7) + 0.01 * np.random.default_rng(0).random((50, 50)))


def test_a_transparent_ground_is_paper_and_large_pictures_are_shrunk_before_any_work():
    rgba = np.zeros((1000, 600, 4), np.uint8)  # transparent, with an opaque black stroke
    rgba[100:900, 280:320] = (0, 0, 0, 255)
    grey = drawing.read_image(_png(rgba, "RGBA"))
    assert max(grey.shape) == drawing.WORK_SIDE and grey[0, 0] == 1
    assert grey[grey.shape[0] // 2, 300 * drawing.WORK_SIDE // 1000] < 0.1  # the stroke, shrunk with the rest


def test_bad_pictures_are_refused_in_plain_words(monkeypatch):
    with pytest.raises(DataError, match="is empty"):
        drawing.read_image(b"", "empty.png")
    with pytest.raises(DataError, match="not an image Pillow can read"):
        drawing.read_image(b"%PDF-1.4 not a picture", "notes.pdf")
    with pytest.raises(DataError, match=r"huge.png claims too many pixels: refused as too large \(at most 4096"):
        drawing.read_image(png_claiming(100_000, 100_000), "huge.png")
    with pytest.raises(DataError, match=r"wide.png is 5000×100 pixels: refused as too large"):
        drawing.read_image(png_claiming(5000, 100), "wide.png")
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", "64")
    with pytest.raises(DataError, match="at most 64 pixels a side"):
        drawing.read_image(_png(np.zeros((65, 10), np.uint8)), "tall.png")
    monkeypatch.setattr(drawing, "MAX_BYTES", 100)
    with pytest.raises(DataError, match="an image of one digit may take"):
        drawing.read_image(bytes(101), "photo.jpg")
    for url in ("data:text/html;base64,PGI+", "data:image/png;base64,@@@", "data:image/png;base64," + "A" * 200):
        with pytest.raises(DataError, match="not a PNG of a size a canvas sends"):
            drawing.read_data_url(url)


def test_a_canvas_png_reads_as_its_file_would():
    pixels = np.full((28, 28), 255, np.uint8)
    pixels[5:20, 12:15] = 0
    url = "data:image/png;base64," + base64.b64encode(_png(pixels)).decode()
    assert np.array_equal(drawing.read_data_url(url), drawing.read_image(_png(pixels)))


def test_prepared_photos_are_recognised_far_more_often_than_as_they_are(digits):
    """40 test digits photographed small, off-centre and dark on light paper: the class of the nearest training
    image to the model's reconstruction matches the digit's far more often once the photo is prepared."""
    trainer = Trainer(TrainConfig(epochs=10, latent_dim=8, hidden=[128]), digits)
    fit(trainer)
    rng = np.random.default_rng(2)
    images, labels = digits.test[:40, 0].numpy(), digits.test_labels[:40].numpy()
    photos = [_photo(image, rng) for image in images]
    train = digits.train.reshape(len(digits.train), -1)

    def recognised(inputs: list[np.ndarray]) -> float:
        recon = explore.reconstruct(trainer.model, torch.from_numpy(np.stack(inputs))).reshape(len(inputs), -1)
        return float((digits.train_labels[torch.cdist(recon, train).argmin(1)].numpy() == labels).mean())

    prepared = recognised([drawing.prepare(photo, "digits", (1, 8, 8)) for photo in photos])
    as_is = recognised([drawing.as_it_is(photo, (1, 8, 8)) for photo in photos])
    assert prepared >= 0.5 and prepared >= as_is + 0.3, (prepared, as_is)
