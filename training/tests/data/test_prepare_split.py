"""prepare: checks first, stratified seeded split of Training, CSV lists and a JSON report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from brainscan_training.data.checks import DataCheckError
from brainscan_training.data.prepare import main, prepare


def read_list(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "label"]
    return [tuple(row) for row in rows[1:]]


@pytest.fixture
def raw(tmp_path: Path, build_dataset) -> Path:
    return build_dataset(tmp_path / "raw", train=20, test=3)


def test_split_is_stratified_and_covers_training_once(raw: Path, tmp_path: Path, classes):
    out = tmp_path / "prepared"
    prepare(raw, out, classes, val_fraction=0.25, seed=3)

    train, val, test = (read_list(out / f"{name}.csv") for name in ("train", "val", "test"))
    for class_name in classes:
        assert sum(label == class_name for _, label in val) == 5
        assert sum(label == class_name for _, label in train) == 15
        assert sum(label == class_name for _, label in test) == 3
    assert not set(train) & set(val)
    training_files = {p.relative_to(raw).as_posix() for p in (raw / "Training").rglob("*.jpg")}
    assert {path for path, _ in train + val} == training_files
    assert all(path.startswith("Testing/") for path, _ in test)


def test_csv_paths_are_relative_sorted_and_labelled_by_folder(raw: Path, tmp_path: Path, classes):
    out = tmp_path / "prepared"
    prepare(raw, out, classes, val_fraction=0.2, seed=1)
    for name in ("train", "val", "test"):
        rows = read_list(out / f"{name}.csv")
        assert rows == sorted(rows)
        for path, label in rows:
            assert (raw / path).is_file()
            assert Path(path).parent.name == label


def test_same_seed_same_files_and_different_seed_different_split(
    raw: Path, tmp_path: Path, classes
):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        prepare(raw, tmp_path / name, classes, val_fraction=0.25, seed=seed)
    for name in ("train.csv", "val.csv", "test.csv", "data_report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert read_list(tmp_path / "a" / "val.csv") != read_list(tmp_path / "c" / "val.csv")
    assert read_list(tmp_path / "a" / "test.csv") == read_list(tmp_path / "c" / "test.csv")


def test_report_holds_the_check_summary_and_split_counts(raw: Path, tmp_path: Path, classes):
    out = tmp_path / "prepared"
    report = prepare(raw, out, classes, val_fraction=0.25, seed=3)

    saved = json.loads((out / "data_report.json").read_text())
    assert saved["total"] == report.total == 4 * 23
    assert saved["counts"]["Training"] == dict.fromkeys(classes, 20)
    assert saved["split"]["counts"]["val"] == dict.fromkeys(classes, 5)
    assert saved["split"]["counts"]["test"] == dict.fromkeys(classes, 3)
    assert saved["split"]["seed"] == 3 and saved["split"]["val_fraction"] == 0.25


def test_zero_validation_fraction_keeps_all_of_training(raw: Path, tmp_path: Path, classes):
    prepare(raw, tmp_path / "p", classes, val_fraction=0.0, seed=1)
    assert read_list(tmp_path / "p" / "val.csv") == []
    assert len(read_list(tmp_path / "p" / "train.csv")) == 80


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_invalid_validation_fraction_is_refused(raw: Path, tmp_path: Path, classes, fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        prepare(raw, tmp_path / "p", classes, val_fraction=fraction, seed=1)


def test_bad_data_stops_before_anything_is_written(raw: Path, tmp_path: Path, classes):
    bad = raw / "Testing" / "glioma" / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(DataCheckError, match=r"bad\.jpg"):
        prepare(raw, tmp_path / "p", classes, val_fraction=0.2, seed=1)
    assert not (tmp_path / "p").exists()


def test_cli_writes_the_lists_and_fails_with_status_1_on_bad_data(
    raw: Path, tmp_path: Path, caplog
):
    args = ["--raw", str(raw), "--val-fraction", "0.25", "--seed", "2", "--classes"]
    classes = ["glioma", "meningioma", "notumor", "pituitary"]
    assert main([*args, *classes, "--out", str(tmp_path / "ok")]) == 0
    assert len(read_list(tmp_path / "ok" / "val.csv")) == 20

    assert main([*args, "glioma", "meningioma", "--out", str(tmp_path / "bad")]) == 1
    assert "unknown class folder" in caplog.text and "notumor" in caplog.text
