"""Uploads for load tests: MRI slices in JPEG, PNG and DICOM of several sizes, and bad inputs.

Slices come from the synthetic MRI generator (MNI152 anatomy with class-specific lesions) when
brainscan_synthetic_mri is installed, else from a drawn phantom (head, ventricles, a lesion), so the
load test also runs from a machine with only locust and brainscan-testsupport (its DICOM module
needs numpy and pydicom only). DICOM files carry made-up patient data (written by
brainscan_testsupport.dicoms): the services must never log it (elk/tests check that).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from brainscan_testsupport.dicoms import mr_dataset, to_bytes
from PIL import Image

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
# (format, side in pixels): Kaggle's slices are mostly 512 px JPEGs, some 256 or 630+;
# DICOM straight from a scanner is 256 or 512 with 12-bit values.
DEFAULT_VARIANTS = (
    ("jpeg", 256),
    ("jpeg", 512),
    ("jpeg", 640),
    ("png", 256),
    ("png", 512),
    ("dicom", 256),
    ("dicom", 512),
)
FAKE_PATIENT_NAME = "Loadtest^Patient"
FAKE_PATIENT_ID = "LT-0000001"
FAKE_PATIENT = {"patient_name": FAKE_PATIENT_NAME, "patient_id": FAKE_PATIENT_ID}
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "dicom": "application/dicom"}


@dataclass(frozen=True)
class Upload:
    """One file a user sends: its name, bytes, content type and what it is."""

    name: str
    data: bytes
    content_type: str
    image_format: str
    side: int
    label: str


@dataclass(frozen=True)
class BadUpload:
    """An input the gateway must refuse, and how (status, error.code)."""

    name: str
    data: bytes
    content_type: str
    status: int
    code: str


def mri_slice(class_name: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A grey uint8 brain slice of ``side`` x ``side`` pixels."""
    try:
        from brainscan_synthetic_mri.synthetic import render_example
    except ImportError:
        return phantom_slice(class_name, side, rng)
    return render_example(class_name, rng, side, with_masks=False).image


def phantom_slice(class_name: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A drawn axial slice: skull ring, brain, ventricles, and a lesion where the class has one."""
    yy, xx = np.mgrid[0:side, 0:side] / side - 0.5
    radius = np.hypot(xx / 0.42, yy / 0.48)
    image = np.where(radius < 1.0, 0.55, 0.02) + np.where((radius > 0.93) & (radius < 1.0), 0.35, 0)
    image -= 0.35 * (np.hypot(xx / 0.08, (yy + 0.02) / 0.14) < 1.0)  # ventricles
    lesion_at = {"glioma": (0.15, -0.1, 0.1), "meningioma": (-0.3, -0.25, 0.08)}
    lesion_at["pituitary"] = (0.0, 0.3, 0.04)
    if class_name in lesion_at:
        cx, cy, r = lesion_at[class_name]
        image += 0.35 * (np.hypot(xx - cx, yy - cy) < r * rng.uniform(0.8, 1.2))
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def encode(pixels: np.ndarray, image_format: str, rng: np.random.Generator) -> bytes:
    """``pixels`` (grey uint8) as the bytes of a JPEG, PNG or DICOM file."""
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(pixels, "L").convert("RGB").save(
            buffer, "JPEG", quality=int(rng.integers(85, 96))
        )
    elif image_format == "png":
        # 16-bit greyscale, as exported by many PACS viewers.
        Image.fromarray(pixels.astype(np.uint16) * 257).save(buffer, "PNG")
    elif image_format == "dicom":
        return dicom_bytes((pixels.astype(np.uint16) * 16).astype(np.uint16))
    else:
        raise ValueError(f"unknown image format {image_format!r}")
    return buffer.getvalue()


def dicom_bytes(values: np.ndarray) -> bytes:
    """A single-frame 12-bit MR DICOM file with made-up patient data."""
    return to_bytes(mr_dataset(values, **FAKE_PATIENT))


def make_uploads(per_variant: int = 2, variants=DEFAULT_VARIANTS, seed: int = 0) -> list[Upload]:
    """``per_variant`` slices of each (format, side), classes taken in turn."""
    rng = np.random.default_rng(seed)
    uploads = []
    for image_format, side in variants:
        for index in range(per_variant):
            label = CLASSES[(len(uploads) + index) % len(CLASSES)]
            pixels = mri_slice(label, side, rng)
            extension = {"jpeg": "jpg", "png": "png", "dicom": "dcm"}[image_format]
            uploads.append(
                Upload(
                    name=f"slice-{label}-{side}-{index}.{extension}",
                    data=encode(pixels, image_format, rng),
                    content_type=CONTENT_TYPES[image_format],
                    image_format=image_format,
                    side=side,
                    label=label,
                )
            )
    return uploads


def make_bad_uploads(seed: int = 0) -> list[BadUpload]:
    """Inputs a client gets wrong, each with the answer the gateway gives (docs/gateway.md)."""
    rng = np.random.default_rng(seed)
    good_jpeg = encode(phantom_slice("glioma", 256, rng), "jpeg", rng)
    tiny = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tiny, "PNG")
    no_pixels = to_bytes(mr_dataset(None, **FAKE_PATIENT))
    return [
        BadUpload("notes.txt", b"not an image\n" * 20, "text/plain", 415, "unsupported_format"),
        BadUpload("cut.jpg", good_jpeg[: len(good_jpeg) // 3], "image/jpeg", 422, "corrupt_image"),
        BadUpload("tiny.png", tiny.getvalue(), "image/png", 422, "image_too_small"),
        BadUpload("empty.jpg", b"", "image/jpeg", 422, "empty_file"),
        BadUpload(
            "header-only.dcm",
            no_pixels,
            "application/dicom",
            422,
            "dicom_no_pixel_data",
        ),
    ]
