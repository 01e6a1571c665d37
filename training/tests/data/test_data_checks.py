"""check_dataset: a valid data set passes; every kind of problem is named with its path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from brainscan_training.data.checks import DataCheckError, check_dataset

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def problems_of(root: Path, classes=CLASSES, **options) -> list[str]:
    with pytest.raises(DataCheckError) as caught:
        check_dataset(root, classes, **options)
    return caught.value.problems


def test_valid_dataset_is_counted_and_described(dataset: Path, write_image):
    write_image(dataset / "Testing" / "pituitary" / "big.png", 999, size=(40, 30), fmt="PNG")

    report = check_dataset(dataset, CLASSES)

    assert report.counts["Training"] == dict.fromkeys(CLASSES, 4)
    assert report.counts["Testing"] == {**dict.fromkeys(CLASSES, 2), "pituitary": 3}
    assert report.total == 4 * 4 + 4 * 2 + 1
    assert report.width == {"min": 24, "median": 24, "max": 40}
    assert report.height == {"min": 20, "median": 20, "max": 30}
    assert report.modes == {"L": 25}
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["total"] == 25 and summary["counts"]["Training"]["glioma"] == 4


def test_hidden_files_are_ignored(dataset: Path):
    (dataset / ".DS_Store").write_bytes(b"\x00junk")
    (dataset / "Training" / ".gitkeep").write_text("")
    (dataset / "Training" / "glioma" / ".DS_Store").write_bytes(b"\x00junk")
    (dataset / "Testing" / ".cache").mkdir()

    assert check_dataset(dataset, CLASSES).counts["Training"]["glioma"] == 4


def test_missing_root_is_named(tmp_path: Path):
    missing = tmp_path / "nowhere"
    [problem] = problems_of(missing)
    assert "does not exist" in problem and str(missing) in problem


@pytest.mark.parametrize("split", ["Training", "Testing"])
def test_missing_split_folder_is_named(dataset: Path, split: str):
    shutil.rmtree(dataset / split)
    assert problems_of(dataset) == [f"missing split folder: {dataset / split}"]


def test_missing_class_folder_is_named(dataset: Path):
    shutil.rmtree(dataset / "Testing" / "meningioma")
    assert problems_of(dataset) == [f"missing class folder: {dataset / 'Testing' / 'meningioma'}"]


def test_empty_class_folder_is_named(dataset: Path):
    folder = dataset / "Training" / "notumor"
    for image in folder.iterdir():
        image.unlink()
    (folder / ".gitkeep").write_text("")
    [problem] = problems_of(dataset)
    assert problem.startswith("empty class folder") and str(folder) in problem


def test_unknown_class_folder_is_named(dataset: Path, write_image):
    write_image(dataset / "Training" / "astrocytoma" / "a.jpg", 500)
    [problem] = problems_of(dataset)
    assert problem.startswith("unknown class folder")
    assert str(dataset / "Training" / "astrocytoma") in problem


def test_stray_file_in_split_folder_is_named(dataset: Path):
    (dataset / "Testing" / "notes.txt").write_text("hello")
    [problem] = problems_of(dataset)
    assert str(dataset / "Testing" / "notes.txt") in problem


def test_truncated_jpeg_is_named(dataset: Path, write_image):
    path = write_image(dataset / "Training" / "glioma" / "cut.jpg", 321, size=(64, 64))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    [problem] = problems_of(dataset)
    assert problem.startswith("unreadable or truncated image") and str(path) in problem


def test_truncated_png_is_named(dataset: Path, write_image):
    path = write_image(dataset / "Testing" / "glioma" / "cut.png", 322, size=(64, 64), fmt="PNG")
    path.write_bytes(path.read_bytes()[:-40])
    [problem] = problems_of(dataset)
    assert problem.startswith("unreadable or truncated image") and str(path) in problem


def test_text_file_named_jpg_is_named(dataset: Path):
    path = dataset / "Training" / "pituitary" / "notes.jpg"
    path.write_text("this is not an image")
    [problem] = problems_of(dataset)
    assert problem.startswith("unreadable or truncated image") and str(path) in problem


def test_duplicate_within_a_split_names_both_files_when_duplicates_fail(dataset: Path):
    source = dataset / "Training" / "glioma" / "img_0.jpg"
    shutil.copy(source, dataset / "Training" / "glioma" / "copy.jpg")
    [problem] = problems_of(dataset, duplicates="fail")
    assert problem.startswith("exact duplicates within Training")
    assert "Training/glioma/img_0.jpg" in problem and "Training/glioma/copy.jpg" in problem


def test_leakage_between_training_and_testing_is_named_when_duplicates_fail(dataset: Path):
    shutil.copy(
        dataset / "Training" / "glioma" / "img_1.jpg", dataset / "Testing" / "glioma" / "x.jpg"
    )
    [problem] = problems_of(dataset, duplicates="fail")
    assert "test leakage" in problem
    assert "Training/glioma/img_1.jpg" in problem and "Testing/glioma/x.jpg" in problem


def test_all_problems_are_reported_together(dataset: Path, write_image):
    shutil.rmtree(dataset / "Testing" / "notumor")
    write_image(dataset / "Training" / "other" / "a.jpg", 777)
    (dataset / "Training" / "glioma" / "bad.jpg").write_text("nope")

    problems = problems_of(dataset)

    assert len(problems) == 3
    assert any("missing class folder" in p for p in problems)
    assert any("unknown class folder" in p for p in problems)
    assert any("bad.jpg" in p for p in problems)


def test_long_lists_show_the_first_twenty_and_count_the_rest(dataset: Path):
    for index in range(25):
        (dataset / "Training" / "glioma" / f"bad_{index:02d}.jpg").write_text("nope")

    with pytest.raises(DataCheckError) as caught:
        check_dataset(dataset, CLASSES)

    assert len(caught.value.problems) == 25
    message = str(caught.value)
    assert "25 problem(s)" in message and "... and 5 more" in message
    assert "bad_19.jpg" in message and "bad_20.jpg" not in message
    assert isinstance(caught.value, ValueError)


def test_only_the_given_classes_are_expected(tmp_path: Path, build_dataset):
    root = build_dataset(tmp_path / "two", classes=["a", "b"])
    assert check_dataset(root, ["a", "b"]).counts == {
        "Training": {"a": 4, "b": 4},
        "Testing": {"a": 2, "b": 2},
    }
