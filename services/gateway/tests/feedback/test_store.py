"""The feedback store: pixels only, named by sha256, written atomically."""

import hashlib
import io
import json

import numpy as np
import pytest
from brainscan_gateway.feedback import store as store_module
from brainscan_gateway.feedback.store import FeedbackRecord, FeedbackStore, png_of_pixels
from PIL import Image, PngImagePlugin


def record_for(label: str = "notumor"):
    def make(sha256: str) -> FeedbackRecord:
        return FeedbackRecord(
            sha256=sha256, width=8, height=6, mode="L", request_id="r1", model_name="m",
            model_version="3", model_role="production", model_label="glioma",
            model_confidence=0.91234567,
            model_classes=("glioma", "notumor"), assessed=True, label=label, comment="note",
            answered_at="2026-01-01T00:00:00Z", received_at="2026-01-01T00:01:00Z",
        )  # fmt: skip

    return make


def image_with_metadata() -> Image.Image:
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8)
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", "DOE^JANE")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", pnginfo=info, icc_profile=b"fake-profile")
    image = Image.open(io.BytesIO(buffer.getvalue()))
    image.load()
    assert image.info  # the upload's metadata rides along on the decoded image
    return image


def test_the_png_holds_the_pixels_and_nothing_else():
    image = image_with_metadata()
    png = png_of_pixels(image)
    assert b"DOE^JANE" not in png and b"fake-profile" not in png and b"iCCP" not in png
    stored = Image.open(io.BytesIO(png))
    assert stored.info == {} or set(stored.info) <= {"dpi"}
    assert np.array_equal(np.asarray(stored), np.asarray(image))


def test_save_names_both_files_by_the_sha256_of_the_png(tmp_path):
    store = FeedbackStore(tmp_path / "deep" / "feedback")  # parents are created
    png = png_of_pixels(image_with_metadata())
    record = store.save(png, record_for())
    sha256 = hashlib.sha256(png).hexdigest()
    assert record.sha256 == sha256 and record.confirmation is False
    assert (store.directory / f"{sha256}.png").read_bytes() == png
    saved = json.loads((store.directory / f"{sha256}.json").read_text())
    assert saved["sha256"] == sha256 and saved["image"] == f"{sha256}.png"
    assert saved["model"] == {
        "name": "m", "version": "3", "role": "production", "label": "glioma",
        "confidence": 0.912346,
        "classes": ["glioma", "notumor"], "assessed": True,
    }  # fmt: skip
    assert saved["label"] == "notumor" and saved["confirmation"] is False
    assert saved["comment"] == "note" and saved["accepted"] is None
    assert sorted(p.name for p in store.directory.iterdir()) == [f"{sha256}.json", f"{sha256}.png"]

    store.save(png, record_for("glioma"))  # the same pixels reviewed again: the record is replaced
    assert json.loads((store.directory / f"{sha256}.json").read_text())["confirmation"] is True


def test_a_crash_while_writing_leaves_no_half_record(tmp_path, monkeypatch):
    store = FeedbackStore(tmp_path)
    png = png_of_pixels(image_with_metadata())
    store.save(png, record_for())
    sha256 = hashlib.sha256(png).hexdigest()
    before = (tmp_path / f"{sha256}.json").read_bytes()

    def crash(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError):
        store.save(png, record_for("glioma"))
    assert (tmp_path / f"{sha256}.json").read_bytes() == before  # the old record, whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
