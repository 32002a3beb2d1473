"""Uploads are untrusted: valid ones become datasets, everything else is refused with a DataError."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae_core.data import DataError, load_upload
from vae_core.data.uploads import load_image

from upload_files import png, png_claiming, zip_of


def npz_of(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_zip_of_pngs_in_folders_gives_labelled_grey_images():
    entries = {f"{label}/{i}.png": png(value=40 * i, mode="RGB" if i % 2 else "L")
               for label in ("cat", "dog") for i in range(5)}
    entries["__MACOSX/._junk"] = b"metadata"
    data = load_upload(zip_of(entries), "pets.zip", size=16)
    assert data.name == "upload:pets.zip" and data.class_names == ("cat", "dog")
    assert data.sample_shape == (1, 16, 16)
    assert len(data.train) + len(data.val) + len(data.test) == 10
    assert 0 <= data.train.min() and data.train.max() <= 1


def test_rgb_conversion_keeps_three_channels():
    data = load_upload(zip_of({f"{i}.png": png(mode="RGB", value=(255, 0, 0)) for i in range(4)}), "r.zip",
                       size=8, channels=3)
    assert data.sample_shape == (3, 8, 8)
    assert float(data.train[0, 0].mean()) == pytest.approx(1.0) and float(data.train[0, 1].max()) == 0.0


@pytest.mark.parametrize("array", [
    np.random.default_rng(0).integers(0, 256, (10, 20, 20), dtype=np.uint8),
    np.random.default_rng(0).random((10, 20, 20, 3)).astype(np.float32),
    np.random.default_rng(0).random((10, 1, 20, 20)),
])
def test_npz_images_in_common_layouts(array):
    data = load_upload(npz_of(images=array, labels=np.arange(10) % 3), "x.npz", size=20)
    assert data.sample_shape == (1, 20, 20) and data.class_names == ("0", "1", "2")


def test_a_wrapping_folder_is_not_a_class_and_three_images_give_one_per_split():
    entries = {f"my data/{label}/{i}.png": png() for label in ("b", "a") for i in range(2)}
    data = load_upload(zip_of(entries), "wrapped.zip", size=8)
    assert data.class_names == ("a", "b")
    assert load_upload(zip_of({f"my data/{i}.png": png() for i in range(3)}), "flat.zip").class_names is None
    three = load_upload(zip_of({f"{i}.png": png() for i in range(3)}), "three.zip", size=8)
    assert (len(three.train), len(three.val), len(three.test)) == (1, 1, 1)


def test_npz_channels_follow_the_request_and_grey_is_luma():
    rgb = np.zeros((6, 3, 10, 10), np.uint8)
    rgb[:, 1] = 255  # pure green, channels first
    grey = load_upload(npz_of(images=rgb), "g.npz", size=10)
    assert grey.sample_shape == (1, 10, 10) and float(grey.train.mean()) == pytest.approx(0.587, abs=1e-3)
    colour = load_upload(npz_of(images=rgb[:, :1].repeat(3, axis=1)[:, 0]), "c.npz", size=5, channels=3)
    assert colour.sample_shape == (3, 5, 5) and torch.equal(colour.train[:, 0], colour.train[:, 2])


BAD_UPLOADS = [
    ("evil.zip", zip_of({"../evil.png": png(), "a.png": png(), "b.png": png()}), "outside the archive"),
    ("abs.zip", zip_of({"/etc/evil.png": png(), "a.png": png(), "b.png": png()}), "outside the archive"),
    ("text.zip", zip_of({"a.png": png(), "b.png": png(), "notes.txt": b"not an image"}), "notes.txt"),
    ("broken.zip", b"PK\x03\x04 this is not really a zip", "not a readable zip"),
    ("empty.zip", zip_of({}), "0 image"),
    ("two.zip", zip_of({"a.png": png(), "b.png": png()}), "at least 3"),
    ("nan.npz", npz_of(images=np.full((5, 4, 4), np.nan)), "NaN"),
    ("zero.npz", npz_of(images=np.zeros((0, 8, 8), np.uint8)), "no images"),
    ("words.npz", npz_of(images=np.array(["a", "b", "c"])), "dtype"),
    ("complex.npz", npz_of(images=np.ones((4, 4, 4), np.complex64)), "dtype"),
    ("range.npz", npz_of(images=np.full((4, 4, 4), 300.0)), "values run"),
    ("shape.npz", npz_of(images=np.ones((4, 4), np.uint8)), "shape"),
    ("labels.npz", npz_of(images=np.ones((4, 4, 4), np.uint8), labels=np.ones(3, np.int64)), "labels"),
    ("notnpz.npz", b"garbage", "not a readable .npz"),
    ("data.csv", b"1,2,3", "not .csv"),
    ("drive.zip", zip_of({"C:/evil.png": png(), "a.png": png(), "b.png": png()}), "outside the archive"),
    ("back.zip", zip_of({"a\\..\\..\\evil.png": png(), "a.png": png(), "b.png": png()}), "outside the archive"),
    ("bigside.npz", npz_of(images=np.zeros((3, 5000, 1), np.uint8)), "VAE_LAB_MAX_IMAGE_SIDE"),
    ("ids.npz", npz_of(images=np.ones((4, 4, 4), np.uint8), labels=np.array([0, 1, 2, 5000])), "labels"),
]


@pytest.mark.parametrize("name,payload,message", BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_uploads_are_refused_with_a_message(name, payload, message):
    with pytest.raises(DataError, match=message):
        load_upload(payload, name)


def test_a_pickled_object_array_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    out = io.BytesIO()
    np.savez(out, images=np.array([Payload(), Payload()], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_upload(out.getvalue(), "trap.npz")
    assert not marker.exists()
    assert pickle.dumps(1)  # pickle itself is fine; the upload path never calls it


def test_a_zip_bomb_is_refused_by_its_unpacked_size(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    bomb = zip_of({"a.png": png(), "b.png": png(), "big.png": b"\0" * (50 * 2**20)})
    assert len(bomb) < 2**20
    with pytest.raises(DataError, match="zip bomb"):
        load_upload(bomb, "bomb.zip")


def test_an_oversized_upload_is_refused_before_parsing(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match="upload limit"):
        load_upload(b"\0" * (2 * 2**20), "big.zip")


def test_too_many_files_are_refused(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGES", "5")
    with pytest.raises(DataError, match="VAE_LAB_MAX_IMAGES"):
        load_upload(zip_of({f"{i}.png": png() for i in range(6)}), "many.zip")


def test_huge_image_sides_are_refused_before_decoding(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", "100")
    with pytest.raises(DataError, match="101×10"):
        load_upload(zip_of({f"{i}.png": png(size=(101, 10)) for i in range(3)}), "wide.zip")


def test_one_image_is_resized_to_the_model_input():
    grey = load_image(png(size=(40, 30), value=255), (1, 8, 6))
    assert grey.shape == (1, 8, 6) and grey.dtype == torch.float32 and torch.all(grey == 1)
    rgb = load_image(png(mode="RGB", value=(255, 0, 51)), (3, 4, 4))
    assert rgb.shape == (3, 4, 4) and rgb[:, 0, 0].tolist() == pytest.approx([1, 0, 0.2])


@pytest.mark.parametrize("side_limit, claimed, message", [
    ("4096", 5000, "is 5000×5000 pixels: refused as a possible decompression bomb"),
    ("200000", 100_000, "claims too many pixels: refused as a decompression bomb"),  # Pillow's own guard
])
def test_one_image_claiming_too_many_pixels_is_refused_before_decoding(monkeypatch, side_limit, claimed, message):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", side_limit)
    with pytest.raises(DataError, match=f"bomb.png {message}"):
        load_image(png_claiming(claimed, claimed), (1, 8, 8), "bomb.png")


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_decompression_bomb_warning_as_an_error_is_a_data_error(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", "20000")
    with pytest.raises(DataError, match="claims too many pixels"):
        load_image(png_claiming(10_000, 10_000), (1, 8, 8))


def test_one_unreadable_image_is_a_data_error():
    with pytest.raises(DataError, match="fake.png is not an image Pillow can read"):
        load_image(b"no image here", (1, 8, 8), "fake.png")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.sampled_from(["x.zip", "x.npz", "x.png", "x"]))
def test_random_bytes_give_a_dataset_or_a_data_error(blob, name):
    try:
        data = load_upload(blob, name, size=8)
    except DataError:
        return
    assert data.train.isfinite().all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64, np.bool_]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)))
def test_random_npz_arrays_give_a_valid_dataset_or_a_data_error(array):
    try:
        data = load_upload(npz_of(images=array), "a.npz", size=8)
    except DataError:
        return
    for split in (data.train, data.val, data.test):
        assert split.isfinite().all() and 0 <= split.min() and split.max() <= 1
        assert split.shape[1:] == (1, 8, 8)
