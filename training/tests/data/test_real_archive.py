"""The real download's layouts and duplicates (the fixture `real_archive`, built in conftest.py):
exactly which files are kept and dropped, the report, `fail` mode and the errors for names that
are not accepted."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest
from brainscan_manifest import InputSpec
from brainscan_training.data.checks import DataCheckError, check_dataset
from brainscan_training.data.prepare import prepare, report_metrics
from brainscan_training.dataset import load_split

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
A = "archive/"
# Every duplicate group of the fixture, sorted by first path: kind, kept copy, copy -> reason.
GROUPS = [
    ("near", A + "testing/meningioma_tumor/tm0.jpg", {
        A + "testing/meningioma_tumor/tm0.jpg": "first copy in Testing",
        A + "testing/meningioma_tumor/tm0_dup.jpg": "duplicate within Testing",
    }),
    ("near", A + "testing/meningioma_tumor/tm1.jpg", {
        A + "testing/meningioma_tumor/tm1.jpg": "first copy in Testing",
        A + "training/glioma_tumor/g_from_test_men.jpg":
            "copy of a Testing image under another class (meningioma)",
    }),
    ("near", A + "testing/no_tumor/tn0.jpg", {
        A + "testing/no_tumor/tn0.jpg": "first copy in Testing",
        A + "training/no_tumor/n_leak.jpg": "copy of a Testing image (test leakage)",
    }),
    ("exact", A + "testing/pituitary_tumor/tp0.jpg", {
        A + "testing/pituitary_tumor/tp0.jpg": "first copy in Testing",
        A + "training/pituitary_tumor/p_leak.jpg": "copy of a Testing image (test leakage)",
    }),
    ("exact", A + "training/glioma_tumor/g0.jpg", {
        A + "training/glioma_tumor/g0.jpg": "first copy",
        A + "training/glioma_tumor/g0_copy.jpg": "duplicate within Training",
    }),
    ("near", A + "training/glioma_tumor/g1.png", {
        A + "training/glioma_tumor/g1.png": "first copy",
        A + "training/glioma_tumor/g1_small.jpg": "duplicate within Training",
    }),
    ("exact", None, {
        A + "training/glioma_tumor/g2.jpg": "label conflict in Training (glioma, meningioma)",
        A + "training/meningioma_tumor/m_from_glioma.jpg":
            "label conflict in Training (glioma, meningioma)",
    }),
]  # fmt: skip
DROPPED = {path for _, kept, copies in GROUPS for path in copies if path != kept}


def rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as handle:
        return [(row["path"], row["label"]) for row in csv.DictReader(handle)]


def all_images(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in (root / "archive").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture
def prepared(real_archive: Path, tmp_path: Path):
    out = tmp_path / "prepared"
    prepare(real_archive, out, CLASSES, val_fraction=0.34, seed=1)
    return real_archive, out


def test_wrapping_folder_lower_case_splits_and_sartaj_names_are_found(real_archive: Path):
    layout = check_dataset(real_archive, CLASSES).layout.to_dict()
    assert layout == {
        "base": "archive",
        "splits": {"Training": "archive/training", "Testing": "archive/testing"},
        "classes": {
            split: {
                "glioma": "glioma_tumor",
                "meningioma": "meningioma_tumor",
                "notumor": "no_tumor",
                "pituitary": "pituitary_tumor",
            }
            for split in ("Training", "Testing")
        },
    }


def test_exactly_the_duplicates_are_dropped_and_testing_keeps_one_of_each(prepared):
    root, out = prepared
    train, val, test = (rows(out / f"{name}.csv") for name in ("train", "val", "test"))
    used = {path for path, _ in train + val + test}
    assert used == all_images(root) - DROPPED
    assert len(DROPPED) == 8 and len(used) == 19
    assert {path for path, _ in test} == {
        A + f"testing/{folder}/{name}"
        for folder, name in [
            ("glioma_tumor", "tg0.jpg"), ("glioma_tumor", "tg1.jpg"),
            ("meningioma_tumor", "tm0.jpg"), ("meningioma_tumor", "tm1.jpg"),
            ("no_tumor", "tn0.jpg"), ("no_tumor", "tn1.png"),
            ("pituitary_tumor", "tp0.jpg"), ("pituitary_tumor", "tp1.jpg"),
        ]
    }  # fmt: skip
    labels = dict(train + val + test)
    assert labels[A + "training/no_tumor/n0.jpg"] == "notumor"  # labels are the class names
    assert labels[A + "testing/pituitary_tumor/tp0.jpg"] == "pituitary"


def test_report_lists_every_group_with_the_copy_kept_and_why(prepared):
    root, out = prepared
    report = json.loads((out / "data_report.json").read_text())
    duplicates = report["duplicates"]
    found = [
        (g["kind"], g["kept"], {c["path"]: c["reason"] for c in g["copies"]})
        for g in duplicates["details"]
    ]
    assert found == GROUPS
    assert {key: duplicates[key] for key in (
        "mode", "groups", "exact_groups", "near_groups", "test_leakage", "label_conflicts",
        "dropped", "near_duplicate_distance",
    )} == {
        "mode": "drop", "groups": 7, "exact_groups": 3, "near_groups": 4, "test_leakage": 3,
        "label_conflicts": 2, "dropped": {"Training": 7, "Testing": 1},
        "near_duplicate_distance": 12,
    }  # fmt: skip
    for group in duplicates["details"]:
        assert group["distance"] == max(c["distance"] for c in group["copies"])
        exact = [copy["exact"] for copy in group["copies"]]
        assert all(exact) if group["kind"] == "exact" else not all(exact)
        assert (group["kind"] == "exact") == (group["distance"] == 0)
        assert group["distance"] <= 12
        for copy in group["copies"]:
            assert (root / copy["path"]).is_file()
            assert copy["kept"] == (copy["path"] == group["kept"])
    assert report["counts"]["Training"] == {
        "glioma": 2, "meningioma": 3, "notumor": 3, "pituitary": 3,
    }  # fmt: skip
    assert report["counts"]["Testing"] == dict.fromkeys(CLASSES, 2)
    assert report["modes"] == {"CMYK": 1, "I;16": 1, "L": 7, "P": 2, "RGB": 7, "RGBA": 1}
    assert report_metrics(report) == {
        "data.images": 19.0,
        "data.feedback_images": 0.0,  # no feedback imported (test_feedback_import.py)
        "data.duplicates.groups": 7.0,
        "data.duplicates.exact_groups": 3.0,
        "data.duplicates.near_groups": 4.0,
        "data.duplicates.test_leakage": 3.0,
        "data.duplicates.label_conflicts": 2.0,
        "data.duplicates.dropped_training": 7.0,
        "data.duplicates.dropped_testing": 1.0,
    }


def test_counts_are_logged(real_archive: Path, caplog):
    with caplog.at_level(logging.INFO, logger="brainscan_training.data.checks"):
        check_dataset(real_archive, CLASSES)
    assert (
        "duplicates: 7 groups (3 exact, 4 near, 3 across Training and Testing, 2 label "
        "conflicts); dropped 7 from Training, 1 from Testing"
    ) in caplog.text


def test_fail_mode_lists_every_group(real_archive: Path, tmp_path: Path):
    with pytest.raises(DataCheckError) as caught:
        prepare(real_archive, tmp_path / "p", CLASSES, 0.34, 1, duplicates="fail")
    problems = caught.value.problems
    assert len(problems) == len(GROUPS)
    for problem, (kind, _, copies) in zip(problems, GROUPS, strict=True):
        assert problem.startswith(f"{kind} duplicates")
        assert problem.endswith(": " + ", ".join(copies))
    assert problems[1].startswith(
        "near duplicates (distance 2) across Training and Testing (test leakage) under classes "
        "glioma, meningioma (label conflict): "
    )
    assert problems[4].startswith("exact duplicates within Training: ")
    assert not (tmp_path / "p").exists()


def test_label_conflict_inside_testing_stops_even_when_dropping(real_archive: Path):
    testing = real_archive / "archive" / "testing"
    shutil.copy(testing / "glioma_tumor" / "tg1.jpg", testing / "no_tumor" / "tn_wrong.jpg")
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    assert caught.value.problems == [
        "exact duplicates within Testing under classes glioma, notumor (label conflict): "
        "archive/testing/glioma_tumor/tg1.jpg, archive/testing/no_tumor/tn_wrong.jpg"
    ]


def test_class_emptied_by_dropping_is_named(real_archive: Path):
    glioma = real_archive / "archive" / "training" / "glioma_tumor"
    for name in ("g0.jpg", "g0_copy.jpg", "g1.png", "g1_small.jpg"):
        (glioma / name).unlink()  # left: g2.jpg (label conflict), g_from_test_men.jpg (leak)
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    assert caught.value.problems == [f"no images left after dropping duplicates: {glioma}"]


def test_every_mode_decodes_to_model_input(prepared):
    """CMYK, palette, RGBA and 16-bit grey go through the decode normalisation training uses."""
    root, out = prepared
    spec = InputSpec(name="image", height=32, width=32, channels=3, color="RGB",
                     layout="NHWC", dtype="uint8", resize_filter="bilinear")  # fmt: skip
    for name in ("train", "val", "test"):
        split = load_split(out / f"{name}.csv", root, CLASSES, spec)
        assert split.images.shape[1:] == (32, 32, 3) and split.images.dtype == "uint8"
        assert all(image.max() > 0 for image in split.images)  # no image decoded to black


@pytest.mark.parametrize(
    "name, accepted",
    [
        ("Validation", "(accepted: Training, Testing, any letter case)"),
        ("train", "(accepted: Training, Testing, any letter case)"),
    ],
)
def test_unknown_split_folder_is_named_with_what_is_accepted(
    real_archive: Path, name: str, accepted: str
):
    (real_archive / "archive" / name / "glioma").mkdir(parents=True)
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    folder = real_archive / "archive" / name
    assert caught.value.problems == [f"unknown split folder: {folder} {accepted}"]


def test_unknown_class_folder_lists_the_classes_and_aliases(real_archive: Path, write_image):
    write_image(real_archive / "archive" / "testing" / "astrocytoma" / "a.jpg", 5)
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    assert caught.value.problems == [
        f"unknown class folder: {real_archive / 'archive' / 'testing' / 'astrocytoma'} "
        "(accepted: glioma, meningioma, notumor, pituitary; aliases glioma_tumor -> glioma, "
        "meningioma_tumor -> meningioma, no_tumor -> notumor, pituitary_tumor -> pituitary; "
        "any letter case)"
    ]


def test_two_folders_for_one_class_or_split_are_named(real_archive: Path, write_image):
    base = real_archive / "archive"
    write_image(base / "training" / "Glioma" / "x.jpg", 6)
    shutil.copytree(base / "testing", base / "Testing")
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    assert caught.value.problems == [
        f"two folders for split Testing: {base / 'Testing'}, {base / 'testing'} "
        "(merge them into one)",
        f"two folders for class in training glioma: {base / 'training' / 'Glioma'}, "
        f"{base / 'training' / 'glioma_tumor'} (merge them into one)",
    ]


def test_two_wrapping_folders_are_not_guessed_between(real_archive: Path):
    shutil.copytree(real_archive / "archive", real_archive / "archive-copy")
    with pytest.raises(DataCheckError) as caught:
        check_dataset(real_archive, CLASSES)
    assert caught.value.problems == [
        f"unknown split folder: {real_archive / name} "
        "(accepted: Training, Testing, any letter case)"
        for name in ("archive", "archive-copy")
    ] + [f"missing split folder: {real_archive / split}" for split in ("Training", "Testing")]
