"""Checks on an image data set in the Kaggle layout, run before training.

root/Training/<class>/* and root/Testing/<class>/*: every problem found is collected and reported
in one DataCheckError so that a user can fix them all in one go. Hidden files (.DS_Store,
.gitkeep, ...) are ignored.
"""

from __future__ import annotations

import hashlib
import io
import logging
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

SPLITS = ("Training", "Testing")
MAX_LISTED_PROBLEMS = 20


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
    """What the checks learn about one readable image file."""

    path: Path
    split: str
    class_name: str
    width: int
    height: int
    mode: str
    sha256: str


@dataclass
class DataReport:
    """Counts per split and class, and image size and colour mode statistics."""

    root: Path
    classes: list[str]
    counts: dict[str, dict[str, int]]
    width: dict[str, int] = field(default_factory=dict)  # min, median, max
    height: dict[str, int] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    images: list[ImageInfo] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-image list)."""
        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "counts": self.counts,
            "total": self.total,
            "width": self.width,
            "height": self.height,
            "modes": self.modes,
        }


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _visible_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not _is_hidden(p))


def _read_image(path: Path, split: str, class_name: str) -> ImageInfo:
    """Hash the bytes and decode the whole image: only load() catches a truncated file."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        width, height, mode = image.width, image.height, image.mode
        # Decoding JPEGs at 1/8 scale still reads every byte of the scan (so truncation is
        # caught) and is several times faster than a full decode.
        image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
        image.load()
    return ImageInfo(path, split, class_name, width, height, mode, hashlib.sha256(data).hexdigest())


def _scan_split(
    root: Path, split: str, classes: list[str], problems: list[str]
) -> tuple[dict[str, int], list[ImageInfo]]:
    split_dir = root / split
    counts = dict.fromkeys(classes, 0)
    images: list[ImageInfo] = []
    if not split_dir.is_dir():
        problems.append(f"missing split folder: {split_dir}")
        return counts, images
    for entry in _visible_entries(split_dir):
        if not entry.is_dir():
            problems.append(f"unexpected file (expected only class folders): {entry}")
        elif entry.name not in classes:
            problems.append(
                f"unknown class folder: {entry} (expected classes: {', '.join(classes)})"
            )
    for class_name in classes:
        class_dir = split_dir / class_name
        if not class_dir.is_dir():
            problems.append(f"missing class folder: {class_dir}")
            continue
        files = _visible_entries(class_dir)
        for path in files:
            if path.is_dir():
                problems.append(f"unexpected folder inside a class folder: {path}")
                continue
            try:
                images.append(_read_image(path, split, class_name))
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
                problems.append(f"unreadable or truncated image: {path} ({error})")
        counts[class_name] = sum(1 for i in images if i.class_name == class_name)
        if counts[class_name] == 0:
            problems.append(f"empty class folder (no readable images): {class_dir}")
    return counts, images


def _duplicates(images: list[ImageInfo], root: Path) -> list[str]:
    """Same bytes twice in a split (duplicate) or in both splits (test leakage)."""
    by_hash: dict[str, list[ImageInfo]] = defaultdict(list)
    for info in images:
        by_hash[info.sha256].append(info)
    problems = []
    for group in by_hash.values():
        if len(group) < 2:
            continue
        names = ", ".join(str(i.path.relative_to(root)) for i in group)
        splits = {i.split for i in group}
        if len(splits) > 1:
            problems.append(f"same image in Training and Testing (test leakage): {names}")
        else:
            problems.append(f"duplicate image within {group[0].split}: {names}")
    return problems


def _stats(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    return {"min": min(values), "median": int(statistics.median(values)), "max": max(values)}


def check_dataset(root: Path, classes: list[str]) -> DataReport:
    """Check `root` in the Kaggle layout; raise DataCheckError naming every bad file or folder."""
    root = Path(root)
    if not classes:
        raise ValueError("classes must not be empty")
    if not root.is_dir():
        raise DataCheckError([f"data set root folder does not exist: {root}"])
    problems: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    images: list[ImageInfo] = []
    for split in SPLITS:
        counts[split], split_images = _scan_split(root, split, list(classes), problems)
        images += split_images
    problems += _duplicates(images, root)
    if problems:
        raise DataCheckError(problems)
    report = DataReport(
        root=root,
        classes=list(classes),
        counts=counts,
        width=_stats([i.width for i in images]),
        height=_stats([i.height for i in images]),
        modes=dict(sorted(Counter(i.mode for i in images).items())),
        images=images,
    )
    log.info("data set %s passed the checks: %d images, %s", root, report.total, counts)
    return report
