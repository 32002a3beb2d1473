"""Uploads are untrusted: every bad one is refused with a message, cheaply, and the Train page keeps working.

tests/unit/test_data_uploads.py covers the basics at the load_upload level (traversal, a deflate
bomb, pickles, NaN, dtypes, shapes, counts). These add what a curious classroom tries next.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae_core.data import DataError, load_upload
from reliability_helpers import REPO, errors, npz_of, page_ok
from upload_files import png, png_claiming, zip_of


def _image_bytes(mode: str, size, fmt: str, value=100) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, value).save(out, fmt)
    return out.getvalue()


def _forged_npy(shape, descr="|u1", payload=b"\0" * 16) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def _peak_rss_mb(code: str, env: dict | None = None) -> tuple[float, str]:
    """Run `code` (which may print) in a fresh interpreter; its extra peak memory over the imports, in MB."""
    script = ("import resource, sys\nfrom vae_core.data import DataError, load_upload\n"
              "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n" + code +
              "\nprint('PEAK', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert done.returncode == 0, done.stderr[-2000:]
    peak = float(done.stdout.rsplit("PEAK", 1)[1])
    return peak, done.stdout


# --- image bombs ----------------------------------------------------------------------------------
def test_a_png_claiming_100000_pixels_a_side_is_refused_from_its_header(monkeypatch):
    from PIL import ImageFile

    decoded, real_load = [], ImageFile.ImageFile.load

    def load(self):  # every image whose pixels are decoded
        decoded.append(self.size)
        return real_load(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    bomb = zip_of({"a.png": png(), "b.png": png(), "bomb.png": png_claiming(100_000, 100_000)})
    assert len(bomb) < 2000
    with pytest.raises(DataError, match="bomb.png.*decompression bomb.*VAE_LAB_MAX_IMAGE_SIDE"):
        load_upload(bomb, "bomb.zip")
    assert decoded and (100_000, 100_000) not in decoded  # the small ones were decoded, the bomb never


def test_pillows_own_bomb_guard_is_a_data_error_when_the_side_limit_is_raised(monkeypatch):
    monkeypatch.setenv("VAE_LAB_MAX_IMAGE_SIDE", "1000000")
    bomb = zip_of({"a.png": png(), "b.png": png(), "bomb.png": png_claiming(100_000, 100_000)})
    with pytest.raises(DataError, match="bomb.png"):
        load_upload(bomb, "bomb.zip")


@pytest.mark.slow
def test_bombs_are_refused_from_their_headers_without_spending_memory(tmp_path):
    """60 blank 4096×4096 PNGs zip to under 1 MB and decode to 1 GB; 100 MB of zeros in an .npz compress
    to 0.1 MB. Both are refused from their headers, in a fresh process whose peak memory is measured."""
    out = io.BytesIO()
    Image.new("L", (4096, 4096), 0).save(out, "PNG")
    pixels = zip_of({f"{i}.png": out.getvalue() for i in range(60)}, method=zipfile.ZIP_STORED)
    assert len(pixels) < 2**20
    (tmp_path / "pixels.zip").write_bytes(pixels)
    with zipfile.ZipFile(tmp_path / "zeros.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("images.npy", "w", force_zip64=True) as f:
            f.write(_forged_npy((100, 1024, 1024), payload=b""))
            for _ in range(100):
                f.write(bytes(2**20))
    assert (tmp_path / "zeros.npz").stat().st_size < 2**20
    code = f"""import os
for name, limit in (("pixels.zip", "100"), ("zeros.npz", "8")):
    os.environ["VAE_LAB_MAX_UPLOAD_MB"] = limit
    try:
        load_upload(open(os.path.join({str(tmp_path)!r}, name), "rb").read(), name)
    except DataError as e:
        print("REFUSED", name, e)
"""
    peak, text = _peak_rss_mb(code)
    for name in ("pixels.zip", "zeros.npz"):
        assert f"REFUSED {name} {name}:" in text and "VAE_LAB_MAX_UPLOAD_MB" in text, text
    assert peak < 60, f"refusing the bombs took {peak:.0f} MB more memory\n{text}"


@pytest.mark.parametrize("shape", [(10**12,), (10**6, 10**6, 10**6), (2**62, 4)])
def test_an_npy_header_claiming_more_than_its_data_is_refused(shape):
    blob = zip_of({"images.npy": _forged_npy(shape)})
    with pytest.raises(DataError, match="images"):
        load_upload(blob, "forged.npz")


def test_resized_images_must_fit_in_memory(monkeypatch):
    """Many images at the largest size would fill the server's memory once resized: refused before decoding."""
    monkeypatch.setenv("VAE_LAB_MAX_UPLOAD_MB", "1")
    blob = zip_of({f"{i}.png": png() for i in range(30)})
    with pytest.raises(DataError, match="VAE_LAB_MAX_UPLOAD_MB"):
        load_upload(blob, "many.zip", size=128, channels=3)
    assert len(load_upload(blob, "many.zip", size=28).train) > 20
    with pytest.raises(DataError, match="VAE_LAB_MAX_UPLOAD_MB"):
        load_upload(npz_of(images=np.zeros((30, 8, 8), np.uint8)), "many.npz", size=128, channels=3)


# --- many files, mixed files ----------------------------------------------------------------------
def test_thousands_of_small_images_load():
    tiny = png(size=(8, 8), value=50)
    blob = zip_of({f"class{i % 3}/{i}.png": tiny for i in range(3000)})
    data = load_upload(blob, "many.zip", size=8)
    assert len(data.train) + len(data.val) + len(data.test) == 3000 and data.class_names == ("class0", "class1",
                                                                                            "class2")


def test_thousands_of_files_that_are_not_images_are_refused_at_the_first():
    blob = zip_of({f"{i:04d}.txt": b"hello" for i in range(3000)})
    with pytest.raises(DataError, match="0000.txt"):
        load_upload(blob, "text.zip")


def test_thousands_of_empty_folders_and_metadata_hold_zero_images():
    blob = zip_of({**{f"dir{i}/": b"" for i in range(2000)}, **{f"__MACOSX/._{i}": b"x" for i in range(2000)},
                   ".DS_Store": b"x"})
    with pytest.raises(DataError, match="0 image"):
        load_upload(blob, "empty.zip")


def test_mixed_sizes_modes_and_formats_become_one_dataset():
    entries = {
        "grey.png": _image_bytes("L", (5, 7), "PNG"),
        "wide.png": _image_bytes("RGB", (300, 20), "PNG", (255, 0, 0)),
        "alpha.png": _image_bytes("RGBA", (64, 64), "PNG", (0, 0, 255, 10)),
        "palette.gif": _image_bytes("P", (17, 3), "GIF", 7),
        "bits.bmp": _image_bytes("1", (9, 9), "BMP", 1),
        "sixteen.png": _image_bytes("I;16", (12, 12), "PNG", 60000),
        "cmyk.jpg": _image_bytes("CMYK", (40, 30), "JPEG", (0, 0, 0, 255)),
        "photo.jpeg": _image_bytes("RGB", (4000, 3000), "JPEG", (10, 200, 30)),
        "float.tif": _image_bytes("F", (6, 6), "TIFF", 3.5),
    }
    for channels in (1, 3):
        data = load_upload(zip_of(entries), "mixed.zip", size=16, channels=channels)
        assert data.sample_shape == (channels, 16, 16)
        every = np.concatenate([data.train.numpy(), data.val.numpy(), data.test.numpy()])
        assert len(every) == len(entries) and np.isfinite(every).all() and every.min() >= 0 and every.max() <= 1


@pytest.mark.parametrize("name,array,message", [
    ("dates.npz", np.array(["2020-01-01"] * 4, dtype="datetime64[D]").reshape(4, 1, 1), "dtype"),
    ("record.npz", np.zeros((4, 4, 4), dtype=[("a", "u1"), ("b", "f4")]), "dtype"),
    ("bytes.npz", np.array([b"ab"] * 8).reshape(2, 2, 2), "dtype"),
    ("inf16.npz", np.full((4, 4, 4), np.inf, np.float16), "NaN or infinite"),
    ("negative.npz", -np.ones((4, 4, 4), np.int64), "values run"),
    ("wide16.npz", np.full((4, 4, 4), 65535, np.uint16), "values run"),
    ("channels5.npz", np.zeros((4, 4, 4, 5), np.uint8), "shape"),
    ("fivedims.npz", np.zeros((2, 2, 2, 2, 2), np.uint8), "shape"),
    ("scalar.npz", np.array(3.0), "shape"),
])
def test_wrong_dtypes_and_shapes_in_an_npz_are_refused(name, array, message):
    with pytest.raises(DataError, match=message):
        load_upload(npz_of(images=array), name)


@pytest.mark.parametrize("case", ["not an npy member", "only labels", "labels as floats", "labels too large",
                                  "two unnamed arrays", "empty npz", "directory member"])
def test_odd_npz_archives_are_refused(case):
    images = np.zeros((5, 4, 4), np.uint8)
    blob = {
        "not an npy member": zip_of({"images": b"\x93NUMPY but not really"}),
        "only labels": npz_of(labels=np.arange(5)),
        "labels as floats": npz_of(images=images, labels=np.arange(5) / 2),
        "labels too large": npz_of(images=images, labels=np.arange(5) * 10**6),
        "two unnamed arrays": npz_of(a=images, b=images),
        "empty npz": npz_of(),
        "directory member": zip_of({"images.npy/": b""}),
    }[case]
    with pytest.raises(DataError):
        load_upload(blob, "odd.npz")


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "encrypted flag", "unknown method", "bad local header"])
def test_damaged_zips_are_refused(damage):
    good = zip_of({f"{i}.png": png(value=i * 20) for i in range(4)})
    blob = bytearray(good)
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "flipped byte":
        start = 30 + len("0.png")  # inside the first entry's compressed data
        blob[start + 10] ^= 0xFF
    elif damage == "encrypted flag":
        blob[6] |= 0x01  # the local header and the central directory both say "encrypted"
        at = good.find(b"PK\x01\x02")
        blob[at + 8] |= 0x01
    elif damage == "unknown method":
        at = good.find(b"PK\x01\x02")
        blob[at + 10:at + 12] = (99).to_bytes(2, "little")
        blob[8:10] = (99).to_bytes(2, "little")
    else:
        blob[0:4] = b"XXXX"
    with pytest.raises(DataError):
        load_upload(bytes(blob), "damaged.zip")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
       st.sampled_from(["zip", "npz"]))
def test_a_valid_upload_with_random_bytes_changed_gives_a_dataset_or_a_data_error(edits, kind):
    blob = bytearray(zip_of({f"{c}/{i}.png": png(value=i * 9, size=(6, 5)) for c in "ab" for i in range(3)})
                     if kind == "zip" else
                     npz_of(images=np.arange(6 * 25, dtype=np.uint8).reshape(6, 5, 5), labels=np.arange(6) % 2))
    for position, value in edits:
        blob[position % len(blob)] = value
    try:
        data = load_upload(bytes(blob), f"x.{kind}", size=8)
    except DataError as exc:
        assert str(exc)
        return
    assert data.train.isfinite().all() and 0 <= data.train.min() and data.train.max() <= 1


# --- through the Train page -----------------------------------------------------------------------
def _pickled_npz(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))
    out = io.BytesIO()
    np.savez(out, images=np.array([Payload(), Payload(), Payload()], dtype=object))
    return out.getvalue()


def test_bad_uploads_on_the_train_page_show_an_error_and_the_page_keeps_working(new_app, tmp_path):
    marker = tmp_path / "pwned"
    bad = {
        "corrupt.zip": (zip_of({f"{i}.png": png() for i in range(4)})[:150], "not a readable zip"),
        "bomb.zip": (zip_of({"a.png": png(), "b.png": png(), "c.png": png_claiming(100_000, 100_000)}),
                     "VAE_LAB_MAX_IMAGE_SIDE"),
        "nan.npz": (npz_of(images=np.full((5, 4, 4), np.nan)), "NaN"),
        "trap.npz": (_pickled_npz(marker), "pickled"),
    }
    at = new_app()
    at.run()
    for filename, (payload, message) in bad.items():
        at.file_uploader(key="upload_file").set_value((filename, payload, "application/octet-stream")).run()
        next(b for b in at.button if b.label == "Use this data").click().run()
        page_ok(at)
        shown = errors(at)
        assert any(e.startswith(f"Could not use {filename}") and message in e for e in shown), (filename, shown)
        assert at.session_state["draft"]["dataset"] == "digits"
        assert not at.button(key="start").disabled
    assert not marker.exists()
    good = npz_of(images=(np.random.default_rng(0).random((12, 10, 10)) * 255).astype(np.uint8))
    at.file_uploader(key="upload_file").set_value(("good.npz", good, "application/octet-stream")).run()
    next(b for b in at.button if b.label == "Use this data").click().run()
    page_ok(at)
    assert not errors(at) and at.session_state["draft"]["dataset"] == "upload:good.npz"


# --- "Encode your own image" on the Explore page --------------------------------------------------------
def test_a_decompression_bomb_on_the_explore_page_is_an_error_and_the_page_keeps_working(new_app, runs_dir, digits):
    from vae_core.config import TrainConfig
    from vae_core.jobs.job import TrainingJob
    from vae_core.jobs.slots import SlotPool
    assert TrainingJob(TrainConfig(epochs=1, hidden=[32]), digits, runs_dir=runs_dir, pool=SlotPool(1)).start().join(60)
    at = new_app()
    at.run()
    at.session_state["explore_scope"] = "class"  # the run is nobody's
    at.switch_page("pages/explore.py").run()
    page_ok(at)
    at.file_uploader(key="explore_upload").set_value(("bomb.png", png_claiming(100_000, 100_000), "image/png")).run()
    page_ok(at)
    assert any("bomb.png" in e for e in errors(at))
    at.file_uploader(key="explore_upload").set_value(("ok.png", png(size=(8, 8)), "image/png")).run()
    page_ok(at)
    assert not errors(at)
