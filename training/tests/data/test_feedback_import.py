"""`brainscan-train feedback import`: reviewers' images into the data set, de-duplicated, never a
copy of a Testing image, one batch manifest; prepare then names the batch."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from brainscan_training.cli import main
from brainscan_training.data.feedback import import_feedback
from brainscan_training.data.prepare import feedback_batches, prepare
from PIL import Image

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image.convert("L"))).save(buffer, "PNG")
    return buffer.getvalue()


def give(folder: Path, image: Image.Image, label: str, model_label: str = "glioma", **fields):
    """One record as the gateway's store writes it (services/gateway/.../feedback/store.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    png = png_of(image)
    sha256 = hashlib.sha256(png).hexdigest()
    (folder / f"{sha256}.png").write_bytes(png)
    record = {
        "schema": 1, "sha256": sha256, "image": f"{sha256}.png", "request_id": sha256[:8],
        "model": {"name": "m", "version": "4", "label": model_label, "confidence": 0.7,
                  "classes": ["glioma", "meningioma", "notumor", "pituitary"], "assessed": True},
        "label": label, "confirmation": label == model_label, "comment": None,
        "answered_at": "2026-12-01T09:00:00Z", "received_at": "2026-12-01T09:01:00Z",
        "accepted": None,
    }  # fmt: skip
    for key, value in fields.items():
        if key == "assessed":
            record["model"]["assessed"] = value
        else:
            record[key] = value
    (folder / f"{sha256}.json").write_text(json.dumps(record))
    return sha256


@pytest.fixture
def feedback(tmp_path, real_archive, slices):
    """A feedback folder with one record of every kind, and what the import must do with it."""
    synthetic_slice, near_copy = slices
    folder = tmp_path / "feedback"
    archive = real_archive / "archive"
    with Image.open(archive / "testing/no_tumor/tn0.jpg") as test_image:
        test_image.load()
        testing = test_image.copy()
    with Image.open(archive / "training/glioma_tumor/g0.jpg") as train_image:
        train_image.load()
        training = train_image.copy()
    new = {
        "correction": give(folder, synthetic_slice("meningioma", 501, 128), "meningioma"),
        "confirmation": give(folder, synthetic_slice("glioma", 502, 128), "glioma"),
        "accepted": give(folder, synthetic_slice("pituitary", 503, 96), "pituitary", accepted=True),
    }
    same = synthetic_slice("notumor", 504, 128)
    new["first of two"] = give(folder, same, "notumor")
    skipped = {
        # Named so that the first of two sorts before it (records are read by file name).
        "rejected": give(folder, synthetic_slice("glioma", 505, 128), "glioma", accepted=False),
        "unknown label": give(folder, synthetic_slice("glioma", 506, 128), "astrocytoma"),
        "not assessed": give(folder, synthetic_slice("glioma", 507, 128), "glioma", assessed=False),
        # The gateway's PNG of a Testing JPEG's pixels: other bytes, distance 0.
        "testing pixels": give(folder, testing, "notumor"),
        "testing near": give(folder, near_copy(testing, "small"), "glioma"),
        "training near, other class": give(folder, near_copy(training, "q70"), "notumor"),
        "training near, same class": give(folder, near_copy(training, "small"), "glioma"),
    }
    second = near_copy(same, "q70")
    skipped["near copy in batch"] = give(folder, second, "notumor")
    altered = give(folder, synthetic_slice("glioma", 508, 128), "glioma")
    (folder / f"{altered}.png").write_bytes(png_of(synthetic_slice("glioma", 509, 128)))
    skipped["altered"] = altered
    missing = give(folder, synthetic_slice("glioma", 510, 128), "glioma")
    (folder / f"{missing}.png").unlink()
    skipped["missing"] = missing
    return folder, real_archive, new, skipped


REASONS = {
    "rejected": "rejected by a curator",
    "unknown label": "label 'astrocytoma' is not a class",
    "not assessed": "not assessed",
    "testing pixels": "near copy of a Testing image (archive/testing/no_tumor/tn0.jpg, distance 0)",
    "testing near": "near copy of a Testing image (archive/testing/no_tumor/tn0.jpg, distance",
    "training near, other class": "copy of a Training image under another class (glioma:",
    "training near, same class": "near (distance",
    "near copy in batch": "copy of an image imported earlier in this batch",
    "altered": "image altered",
    "missing": "image missing",
}


def test_import_adds_new_training_images_and_a_batch_manifest(feedback, classes):
    folder, root, new, skipped = feedback
    result = import_feedback(folder, root, classes, now=NOW)
    if skipped["near copy in batch"] < new["first of two"]:
        new["first of two"], skipped["near copy in batch"] = (
            skipped["near copy in batch"], new["first of two"])  # fmt: skip
    assert {e["sha256"] for e in result.imported} == set(new.values())
    assert result.counts == {"glioma": 1, "meningioma": 1, "notumor": 1, "pituitary": 1}
    assert result.batch_id.startswith("fb-20261201T093000Z-")
    by_sha = {s["sha256"]: s["reason"] for s in result.skipped}
    for case, sha256 in skipped.items():
        assert REASONS[case] in by_sha[sha256], (case, by_sha[sha256])
    # Into the data set's own folders (wrapping folder, lower-case split, SARTAJ names).
    meningioma = root / f"archive/training/meningioma_tumor/feedback-{new['correction'][:12]}.png"
    assert meningioma.read_bytes() == (folder / f"{new['correction']}.png").read_bytes()
    assert not list(root.rglob("testing/*/feedback-*"))
    manifest = json.loads(result.manifest.read_text())
    assert result.manifest.parent == root / "archive"  # next to the split folders
    assert manifest["batch_id"] == result.batch_id and manifest["counts"] == result.counts
    assert manifest["confirmations"] == 1 and manifest["corrections"] == 3
    assert {e["file"] for e in manifest["imported"]} == {
        p.relative_to(root).as_posix() for p in root.rglob("feedback-*.png")
    }
    assert len(manifest["skipped"]) == len(skipped)

    again = import_feedback(folder, root, classes, now=NOW)  # nothing new the second time
    assert again.batch_id is None and again.manifest is None and not again.imported
    assert all("copy of a Training image" in s["reason"] or s["sha256"] in skipped.values()
               for s in again.skipped)  # fmt: skip


def test_accepted_only_takes_only_what_a_curator_accepted(feedback, classes):
    folder, root, new, _ = feedback
    result = import_feedback(folder, root, classes, accepted_only=True, now=NOW)
    assert [e["sha256"] for e in result.imported] == [new["accepted"]]


def test_prepare_keeps_the_imported_images_and_names_the_batch(feedback, classes, tmp_path):
    folder, root, _, _ = feedback
    result = import_feedback(folder, root, classes, now=NOW)
    prepare(root, tmp_path / "prepared", classes, val_fraction=0.25, seed=1)
    report = json.loads((tmp_path / "prepared/data_report.json").read_text())
    assert report["feedback"] == {
        "batches": [{"batch_id": result.batch_id, "images": 4}], "images": 4,
    }  # fmt: skip
    assert feedback_batches(report) == [result.batch_id]
    assert report["duplicates"]["groups"] == 7  # the download's own groups, no new one


def test_the_cli_imports_into_params_data_set_and_prints_a_summary(feedback, tmp_path, capsys):
    folder, root, _, _ = feedback
    params = tmp_path / "params.yaml"
    text = (Path(__file__).resolve().parents[3] / "params.yaml").read_text()
    params.write_text(text.replace("source: synthetic", "source: directory").replace(
        "source_dir: libs/synthetic-mri/src/brainscan_synthetic_mri", f"source_dir: {root}"))  # fmt: skip
    assert main(["--params", str(params), "feedback", "import", "--from", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["imported"] == 4 and summary["batch_id"].startswith("fb-")
    assert "rejected by a curator" in summary["skipped_reasons"]


def test_the_cli_says_in_one_line_what_is_wrong(tmp_path, capsys):
    assert main(["feedback", "import", "--from", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("brainscan-train feedback: ") and error.count("\n") == 1
