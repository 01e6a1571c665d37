"""The synthetic generator's output is what the data stages expect: it passes the checks and
splits (the generator itself is tested in libs/synthetic-mri)."""

from __future__ import annotations

from pathlib import Path

from brainscan_synthetic_mri.synthetic import CLASSES, generate_dataset
from brainscan_training.data.checks import check_dataset
from brainscan_training.data.prepare import prepare


def test_generated_data_passes_the_checks_and_prepares(tmp_path: Path):
    generated = tmp_path / "raw"
    generate_dataset(generated, train_per_class=3, test_per_class=2, seed=7, image_size=64,
                     workers=1)  # fmt: skip
    report = check_dataset(generated, list(CLASSES))  # no duplicates, no leakage
    assert report.total == 20
    prepare(generated, tmp_path / "prepared", list(CLASSES), val_fraction=0.34, seed=1)
    assert (tmp_path / "prepared" / "val.csv").read_text().count("\n") == 1 + 4
