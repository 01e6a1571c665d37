"""Prepare step: check the raw data set, split Training into train/validation, write CSV lists.

CLI: python -m brainscan_training.data.prepare --raw data/raw --out data/prepared \
    --val-fraction 0.15 --seed 7 --classes glioma meningioma notumor pituitary \
    --duplicates drop --near-duplicate-distance 12
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from brainscan_training.data.checks import DataReport, ImageInfo, check_dataset
from brainscan_training.data.duplicates import DEFAULT_MAX_DISTANCE, Mode
from brainscan_training.data.feedback import IMAGE_PREFIX, batches_in

log = logging.getLogger(__name__)

DEFAULT_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def stratified_split(
    images: list[ImageInfo], val_fraction: float, seed: int
) -> tuple[list[ImageInfo], list[ImageInfo]]:
    """Split per class so each keeps its share; same seed and files -> same split."""
    by_class: dict[str, list[ImageInfo]] = defaultdict(list)
    for info in images:
        by_class[info.class_name].append(info)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for class_name in sorted(by_class):
        # Sort first: the split must not depend on the order the file system lists files in.
        members = sorted(by_class[class_name], key=lambda i: i.path.as_posix())
        order = rng.permutation(len(members))
        n_val = round(len(members) * val_fraction)
        if val_fraction > 0 and len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)  # each class in both parts
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, val


def write_list(path: Path, images: list[ImageInfo], raw_dir: Path) -> None:
    """CSV with columns path,label; paths relative to raw_dir (POSIX), sorted."""
    rows = sorted((i.path.relative_to(raw_dir).as_posix(), i.class_name) for i in images)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(rows)


def _class_counts(images: list[ImageInfo], classes: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for info in images:
        counts[info.class_name] += 1
    return counts


def prepare(
    raw_dir: Path,
    out_dir: Path,
    classes: list[str],
    val_fraction: float,
    seed: int,
    duplicates: Mode = "drop",
    near_duplicate_distance: int = DEFAULT_MAX_DISTANCE,
) -> DataReport:
    """Check raw_dir, write out_dir/{train,val,test}.csv and data_report.json; return the report.

    Duplicates are dropped (or, with duplicates="fail", stop the step) before the split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    report = check_dataset(raw_dir, list(classes), duplicates, near_duplicate_distance)
    training = [i for i in report.images if i.split == "Training"]
    testing = [i for i in report.images if i.split == "Testing"]
    train, val = stratified_split(training, val_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {"train": train, "val": val, "test": testing}
    for name, images in parts.items():
        write_list(out_dir / f"{name}.csv", images, raw_dir)
    summary = report.to_dict()  # root as given: a relative path keeps the report portable
    summary["split"] = {
        "val_fraction": val_fraction,
        "seed": seed,
        "counts": {name: _class_counts(images, list(classes)) for name, images in parts.items()},
    }
    summary["feedback"] = feedback_summary(report)
    (out_dir / "data_report.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "prepared %s: train %d, val %d, test %d images",
        out_dir,
        len(train),
        len(val),
        len(testing),
    )
    return report


def feedback_summary(report: DataReport) -> dict:
    """The reviewers' feedback among the images kept: its batches (`brainscan-train feedback
    import`) and how many images came from feedback."""
    kept = [info.path for info in report.images]
    batches = batches_in(report.layout, kept) if report.layout else []
    images = sum(
        info.split == "Training" and info.path.name.startswith(IMAGE_PREFIX)
        for info in report.images
    )
    return {"batches": batches, "images": images}


def feedback_batches(summary: dict) -> list[str]:
    """The feedback batch ids a data_report.json names (none before any import)."""
    return [batch["batch_id"] for batch in (summary.get("feedback") or {}).get("batches", [])]


def report_metrics(summary: dict) -> dict[str, float]:
    """The counts of a data_report.json as MLflow metrics (``data.*``)."""
    duplicates = summary.get("duplicates") or {}
    metrics = {"data.images": summary["total"]}
    if "feedback" in summary:
        metrics["data.feedback_images"] = summary["feedback"]["images"]
    for key in ("groups", "exact_groups", "near_groups", "test_leakage", "label_conflicts"):
        if key in duplicates:
            metrics[f"data.duplicates.{key}"] = duplicates[key]
    for split, count in (duplicates.get("dropped") or {}).items():
        metrics[f"data.duplicates.dropped_{split.lower()}"] = count
    return {key: float(value) for key, value in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line entry: exit status 1 with every problem listed when the checks fail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True, help="data set root (Kaggle layout)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSVs and report")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES))
    parser.add_argument("--duplicates", choices=["drop", "fail"], default="drop")
    parser.add_argument("--near-duplicate-distance", type=int, default=DEFAULT_MAX_DISTANCE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        prepare(
            args.raw,
            args.out,
            args.classes,
            args.val_fraction,
            args.seed,
            args.duplicates,
            args.near_duplicate_distance,
        )
    except ValueError as error:  # DataCheckError included: the message lists the problems
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
