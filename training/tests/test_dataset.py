"""load_split: files become model inputs exactly as the gateway turns the same files into them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.limits import DecodeLimits
from brainscan_manifest import InputSpec
from brainscan_manifest.preprocess import to_input_array
from brainscan_training.dataset import load_split
from PIL import Image

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
SPECS = {
    "rgb-bilinear": InputSpec(name="image", height=24, width=24),
    "grey-nchw-float": InputSpec(
        name="image",
        height=20,
        width=28,
        channels=1,
        color="L",
        layout="NCHW",
        dtype="float32",
        scale=1 / 127.5,
        offset=-1.0,
        resize_filter="bicubic",
    ),
}


def slice_like(height: int = 48, width: int = 64) -> np.ndarray:
    """A grey 'head' off-centre on black, so any flip or rotation changes the pixels."""
    yy, xx = np.mgrid[0:height, 0:width]
    head = ((xx - width * 0.4) / (width * 0.3)) ** 2 + ((yy - height * 0.45) / (height * 0.4)) ** 2
    return np.where(head < 1, 60 + (xx * 5 + yy * 2) % 160, 0).astype(np.uint8)


def sixteen_bit_png() -> bytes:
    values = slice_like().astype(np.uint16) * 13 + 300  # 12-bit-like data, not 0-based
    return _encode(Image.fromarray(values), "PNG")


def rgba_png() -> bytes:
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3] = slice_like()[..., None]
    rgba[:, 40:, :3] = 250  # bright but fully transparent: must become background
    rgba[..., 3] = 255
    rgba[:, 40:, 3] = 0
    return _encode(Image.fromarray(rgba, "RGBA"), "PNG")


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; shown rotated 90° clockwise
    image = Image.fromarray(slice_like()).convert("RGB")
    return _encode(image, "JPEG", quality=95, exif=exif.tobytes())


def plain_jpeg() -> bytes:
    return _encode(Image.fromarray(slice_like()), "JPEG", quality=90)


FILES = {
    "glioma/sixteen_bit.png": sixteen_bit_png,
    "meningioma/rgba.png": rgba_png,
    "notumor/exif_rotated.jpg": exif_rotated_jpeg,
    "pituitary/plain.jpg": plain_jpeg,
}


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def raw_split(tmp_path_factory) -> tuple[Path, Path]:
    """A raw directory with the four files and a split CSV naming them."""
    raw = tmp_path_factory.mktemp("raw")
    for relative, make in FILES.items():
        path = raw / "Training" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
    csv_path = raw / "train.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for relative in FILES:
            writer.writerow([f"Training/{relative}", relative.split("/")[0]])
    return raw, csv_path


def gateway_input(data: bytes, spec: InputSpec) -> np.ndarray:
    """What the gateway sends inference for this upload (Predictor: decode, then preprocess)."""
    decoded = decode_upload(data, DecodeLimits(max_pixels=16_000_000, min_side=32))
    return to_input_array(decoded.image, spec)


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_training_and_the_gateway_give_identical_model_inputs(raw_split, spec):
    raw, csv_path = raw_split
    split = load_split(csv_path, raw, CLASSES, spec)
    assert split.images.shape == (len(FILES), *spec.shape()[1:])
    assert split.labels.tolist() == [0, 1, 2, 3]
    for index, (relative, make) in enumerate(FILES.items()):
        np.testing.assert_array_equal(
            split.images[index], gateway_input(make(), spec), err_msg=relative
        )


@pytest.mark.parametrize(
    "relative", ["glioma/sixteen_bit.png", "meningioma/rgba.png", "notumor/exif_rotated.jpg"]
)
def test_these_files_need_the_normalisation(relative):
    """Opening them with Pillow alone would give the model other pixels: the test has teeth."""
    spec = SPECS["rgb-bilinear"]
    with Image.open(io.BytesIO(FILES[relative]())) as image:
        naive = to_input_array(image, spec)
    assert not np.array_equal(naive, gateway_input(FILES[relative](), spec))


def test_unknown_label_is_refused_by_name(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("path,label\nTraining/x.png,astrocytoma\n")
    with pytest.raises(ValueError, match="astrocytoma"):
        load_split(csv_path, tmp_path, CLASSES, SPECS["rgb-bilinear"])
