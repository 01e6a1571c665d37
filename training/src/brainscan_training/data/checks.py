"""Checks on an image data set in the Kaggle layout, run before training.

root/Training/<class>/* and root/Testing/<class>/* (or the layouts of layout.py: one wrapping
folder, any letter case, SARTAJ class names): every problem found is collected and reported in
one DataCheckError so that a user can fix them all in one go. Hidden files (.DS_Store,
.gitkeep, ...) are ignored. Exact and near-duplicate images are dropped by the rules of
duplicates.py (or, with duplicates="fail", each group is a problem).
"""

from __future__ import annotations

import io
import logging
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .duplicates import (
    DEFAULT_MAX_DISTANCE,
    HASH_SIZE,
    DuplicateGroup,
    Mode,
    find_groups,
    perceptual_hash,
    sha256_of,
)
from .layout import SPLITS, Layout, resolve_layout, visible_entries

log = logging.getLogger(__name__)

__all__ = ["SPLITS", "DataCheckError", "DataReport", "ImageInfo", "check_dataset"]
MAX_LISTED_PROBLEMS = 20
# JPEGs are decoded at a reduced scale no smaller than this (DCT scaling still reads every byte,
# so truncation is caught); the perceptual hash is taken from it.
_DECODE_SIDE = 128


class DataCheckError(ValueError):
    """The data set has problems; `problems` lists every one, the message the first few."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"data set check failed with {len(problems)} problem(s):\n{listed}{tail}")


@dataclass(frozen=True)
class ImageInfo:
    """What the checks learn about one readable image file (split and class as canonical
    names, whatever the folders are called)."""

    path: Path
    split: str
    class_name: str
    width: int
    height: int
    mode: str
    sha256: str
    phash: bytes = field(repr=False)


@dataclass
class DataReport:
    """Counts per split and class of the images kept, their size and colour mode statistics,
    the layout found and every duplicate group."""

    root: Path
    classes: list[str]
    counts: dict[str, dict[str, int]]
    width: dict[str, int] = field(default_factory=dict)  # min, median, max
    height: dict[str, int] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    images: list[ImageInfo] = field(default_factory=list, repr=False)  # kept images only
    layout: Layout | None = field(default=None, repr=False)
    duplicates: list[DuplicateGroup] = field(default_factory=list, repr=False)
    duplicates_mode: str = "drop"
    near_duplicate_distance: int = DEFAULT_MAX_DISTANCE

    @property
    def total(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())

    def dropped(self) -> dict[str, int]:
        """Images dropped as duplicates, per split."""
        counts = dict.fromkeys(SPLITS, 0)
        for group in self.duplicates:
            for copy in group.copies:
                counts[copy.split] += not copy.kept
        return counts

    def duplicates_summary(self) -> dict:
        kinds = Counter(group.kind for group in self.duplicates)
        return {
            "mode": self.duplicates_mode,
            "hash": f"imagehash.phash, {HASH_SIZE}x{HASH_SIZE} ({HASH_SIZE**2} bits)",
            "near_duplicate_distance": self.near_duplicate_distance,
            "groups": len(self.duplicates),
            "exact_groups": kinds["exact"],
            "near_groups": kinds["near"],
            "label_conflicts": sum(len(g.classes) > 1 for g in self.duplicates),
            "test_leakage": sum(len(g.splits) > 1 for g in self.duplicates),
            "dropped": self.dropped(),
        }

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-image list)."""
        return {
            "root": str(self.root),
            "layout": self.layout.to_dict() if self.layout else None,
            "classes": list(self.classes),
            "counts": self.counts,
            "total": self.total,
            "width": self.width,
            "height": self.height,
            "modes": self.modes,
            "duplicates": {
                **self.duplicates_summary(),
                "details": [group.to_dict(self.root) for group in self.duplicates],
            },
        }


def _read_image(path: Path, split: str, class_name: str) -> ImageInfo:
    """Hash the bytes and decode the whole image: only load() catches a truncated file."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height, mode = image.width, image.height, image.mode
        # Decoding a JPEG at a reduced scale still reads every byte of the scan (so truncation
        # is caught) and is several times faster than a full decode.
        image.draft(image.mode, (_DECODE_SIDE, _DECODE_SIDE))
        image.load()
        phash = perceptual_hash(image)
    return ImageInfo(path, split, class_name, width, height, mode, sha256_of(data), phash)


def _scan_class(class_dir: Path, split: str, class_name: str, problems: list[str]):
    images = []
    for path in visible_entries(class_dir):
        if path.is_dir():
            problems.append(f"unexpected folder inside a class folder: {path}")
            continue
        try:
            images.append(_read_image(path, split, class_name))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            problems.append(f"unreadable or truncated image: {path} ({error})")
    if not images:
        problems.append(f"empty class folder (no readable images): {class_dir}")
    return images


def _stats(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    return {"min": min(values), "median": int(statistics.median(values)), "max": max(values)}


def _drop_duplicates(
    images: list[ImageInfo], layout: Layout, duplicates: Mode, distance: int, problems: list[str]
) -> tuple[list[ImageInfo], list[DuplicateGroup]]:
    groups = find_groups(images, distance)
    for group in groups:
        if duplicates == "fail" or group.problem:
            problems.append(group.describe(layout.root))
    dropped = {c.path for g in groups for c in g.copies if not c.kept}
    kept = [i for i in images if i.path not in dropped]
    for split, per_class in layout.classes.items():
        for class_name, folder in per_class.items():
            before = sum(i.split == split and i.class_name == class_name for i in images)
            after = sum(i.split == split and i.class_name == class_name for i in kept)
            if before and not after:
                problems.append(f"no images left after dropping duplicates: {folder}")
    return kept, groups


def check_dataset(
    root: Path,
    classes: list[str],
    duplicates: Mode = "drop",
    near_duplicate_distance: int = DEFAULT_MAX_DISTANCE,
) -> DataReport:
    """Check `root`; raise DataCheckError naming every bad file or folder (and with
    duplicates="fail", every duplicate group); else report the images to use."""
    root = Path(root)
    if not classes:
        raise ValueError("classes must not be empty")
    if duplicates not in ("drop", "fail"):
        raise ValueError(f"duplicates must be 'drop' or 'fail', got {duplicates!r}")
    if not root.is_dir():
        raise DataCheckError([f"data set root folder does not exist: {root}"])
    problems: list[str] = []
    layout = resolve_layout(root, list(classes), problems)
    images: list[ImageInfo] = []
    for split, per_class in layout.classes.items():
        for class_name, class_dir in per_class.items():
            images += _scan_class(class_dir, split, class_name, problems)
    kept, groups = _drop_duplicates(images, layout, duplicates, near_duplicate_distance, problems)
    if problems:
        raise DataCheckError(problems)
    counts = {
        split: {name: sum(i.split == split and i.class_name == name for i in kept)
                for name in classes}
        for split in SPLITS
    }  # fmt: skip
    report = DataReport(
        root=root,
        classes=list(classes),
        counts=counts,
        width=_stats([i.width for i in kept]),
        height=_stats([i.height for i in kept]),
        modes=dict(sorted(Counter(i.mode for i in kept).items())),
        images=kept,
        layout=layout,
        duplicates=groups,
        duplicates_mode=duplicates,
        near_duplicate_distance=near_duplicate_distance,
    )
    summary = report.duplicates_summary()
    log.info(
        "duplicates: %d groups (%d exact, %d near, %d across Training and Testing, %d label "
        "conflicts); dropped %d from Training, %d from Testing",
        summary["groups"], summary["exact_groups"], summary["near_groups"],
        summary["test_leakage"], summary["label_conflicts"],
        summary["dropped"]["Training"], summary["dropped"]["Testing"],
    )  # fmt: skip
    for group in groups:
        log.debug("%s (kept: %s)", group.describe(root), group.kept.path if group.kept else None)
    log.info("data set %s passed the checks: %d images kept, %s", root, report.total, counts)
    return report
