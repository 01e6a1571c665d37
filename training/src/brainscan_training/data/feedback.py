"""Reviewers' feedback into the data set: `brainscan-train feedback import` (docs/data.md).

The gateway's feedback folder holds, per reviewed image, ``<sha256>.png`` (the decoded pixels)
and ``<sha256>.json`` (the model's answer and the reviewer's label). The import copies each
usable one into the data set as a new Training image, ``Training/<label>/feedback-<sha12>.png``,
and writes one batch manifest next to the split folders, ``feedback-batch-<id>.json``: the
batch id, counts per class, and every record skipped with its reason. The data stage hashes the
data set's content (dvc.yaml), so the next ``dvc repro`` trains on the new images, and the
prepare stage names the batches whose images it kept (``data_report.json`` -> lineage).

Never imported (each skip says which and why): a record a curator rejected (``accepted:
false``), or not accepted with ``--accepted-only``; a label that is not a class; an answer the
out-of-distribution guard did not assess; a missing or altered image; an exact or near copy
(the prepare stage's perceptual hash and distance) of any Testing image, so the test split stays
as published; a copy of a Training image or of an image imported earlier in the batch (under
another class it is a label conflict, reported as such).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .checks import DataCheckError, _read_image
from .duplicates import DEFAULT_MAX_DISTANCE, hamming, perceptual_hash
from .layout import Layout, resolve_layout, visible_entries

log = logging.getLogger(__name__)

BATCH_PREFIX = "feedback-batch-"
IMAGE_PREFIX = "feedback-"


class FeedbackImportError(ValueError):
    """The feedback folder or the data set cannot be used; the message says why."""


@dataclass(frozen=True)
class _Known:
    """An image already in the data set (or imported earlier in this batch)."""

    where: str  # path relative to the data set root, POSIX
    split: str
    class_name: str
    sha256: str
    phash: bytes


@dataclass
class ImportResult:
    batch_id: str | None
    manifest: Path | None
    imported: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "manifest": str(self.manifest) if self.manifest else None,
            "imported": len(self.imported),
            "counts": self.counts,
            "skipped": len(self.skipped),
            "skipped_reasons": sorted({s["reason"].split(" (")[0] for s in self.skipped}),
        }


def import_feedback(
    feedback_dir: Path,
    data_dir: Path,
    classes: list[str],
    *,
    accepted_only: bool = False,
    near_duplicate_distance: int = DEFAULT_MAX_DISTANCE,
    now: datetime | None = None,
) -> ImportResult:
    """Copy the usable feedback of ``feedback_dir`` into ``data_dir``'s Training folders."""
    feedback_dir, data_dir = Path(feedback_dir), Path(data_dir)
    if not feedback_dir.is_dir():
        raise FeedbackImportError(f"the feedback folder {feedback_dir} does not exist")
    if not data_dir.is_dir():
        raise FeedbackImportError(f"the data set folder {data_dir} does not exist")
    problems: list[str] = []
    layout = resolve_layout(data_dir, list(classes), problems)
    if problems:
        raise DataCheckError(problems)
    known = _known_images(layout)
    by_sha = {image.sha256: image for image in known}
    result = ImportResult(batch_id=None, manifest=None, counts=dict.fromkeys(classes, 0))
    planned: list[tuple[dict, bytes]] = []
    for record_path in _records(feedback_dir):
        record, png, reason = _usable(record_path, classes, accepted_only)
        sha256 = record.get("sha256") if record else record_path.stem
        if reason is None:
            phash = _phash(png)
            reason = _duplicate(sha256, phash, record["label"], by_sha, known, near_duplicate_distance)
        if reason is not None:
            result.skipped.append({"sha256": sha256, "record": record_path.name, "reason": reason})
            continue
        label = record["label"]
        folder = layout.classes["Training"][label]
        target = folder / f"{IMAGE_PREFIX}{sha256[:12]}.png"
        entry = _Known(target.relative_to(data_dir).as_posix(), "Feedback", label, sha256, phash)
        known.append(entry)
        by_sha[sha256] = entry
        planned.append(
            (
                {
                    "sha256": sha256,
                    "file": entry.where,
                    "label": label,
                    "model_label": record["model"]["label"],
                    "model_version": record["model"].get("version"),
                    "confirmation": record["label"] == record["model"]["label"],
                    "received_at": record.get("received_at"),
                },
                png,
            )
        )
    if not planned:
        log.info("feedback import: nothing to import (%d skipped)", len(result.skipped))
        return result
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256("".join(sorted(e["sha256"] for e, _ in planned)).encode()).hexdigest()
    result.batch_id = f"fb-{stamp}-{digest[:8]}"
    for entry, png in planned:
        entry["batch_id"] = result.batch_id
        _write_atomically(data_dir / entry["file"], png)
        result.imported.append(entry)
        result.counts[entry["label"]] += 1
    manifest = {
        "batch_id": result.batch_id,
        "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "source": str(feedback_dir),
        "accepted_only": accepted_only,
        "near_duplicate_distance": near_duplicate_distance,
        "counts": result.counts,
        "confirmations": sum(e["confirmation"] for e in result.imported),
        "corrections": sum(not e["confirmation"] for e in result.imported),
        "imported": result.imported,
        "skipped": result.skipped,
    }
    result.manifest = layout.base / f"{BATCH_PREFIX}{result.batch_id}.json"
    _write_atomically(result.manifest, (json.dumps(manifest, indent=2) + "\n").encode())
    log.info(
        "feedback import %s: %d imported %s, %d skipped",
        result.batch_id, len(result.imported), result.counts, len(result.skipped),
    )  # fmt: skip
    return result


def _records(feedback_dir: Path) -> Iterable[Path]:
    return (p for p in visible_entries(feedback_dir) if p.suffix == ".json" and p.is_file())


def _usable(path: Path, classes: list[str], accepted_only: bool):
    """(record, png bytes, None) or (record or None, None, why not)."""
    try:
        record = json.loads(path.read_text())
        sha256, label, model = record["sha256"], record["label"], record["model"]
        model_label = model["label"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None, "unreadable record"
    accepted = record.get("accepted")
    if accepted is False:
        return record, None, "rejected by a curator (accepted: false)"
    if accepted_only and accepted is not True:
        return record, None, "not accepted yet (--accepted-only takes accepted: true only)"
    if label not in classes:
        return record, None, f"label {label!r} is not a class ({', '.join(classes)})"
    if model_label not in classes:
        return record, None, f"the model's label {model_label!r} is not a class"
    if model.get("assessed") is False:
        return record, None, "not assessed: the image was out of distribution when answered"
    image = path.with_name(f"{sha256}.png")
    try:
        png = image.read_bytes()
    except OSError:
        return record, None, "image missing"
    if hashlib.sha256(png).hexdigest() != sha256:
        return record, None, "image altered (its sha256 does not match the record)"
    return record, png, None


def _phash(png: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            return perceptual_hash(image)
    except (UnidentifiedImageError, OSError) as error:
        raise FeedbackImportError(f"a feedback PNG cannot be decoded: {error}") from None


def _duplicate(sha256, phash, label, by_sha, known, distance) -> str | None:
    """Why this image must not be added, or None."""
    exact = by_sha.get(sha256)
    nearest = None if exact else min(known, key=lambda k: hamming(k.phash, phash), default=None)
    if nearest is not None and hamming(nearest.phash, phash) > distance:
        nearest = None
    # A Testing copy wins over any other: the test split must stay as published.
    testing = [k for k in known if k.split == "Testing" and (
        k.sha256 == sha256 or hamming(k.phash, phash) <= distance)]  # fmt: skip
    if testing:
        first = min(testing, key=lambda k: hamming(k.phash, phash))
        if first.sha256 == sha256:
            return f"exact copy of a Testing image ({first.where})"
        return f"near copy of a Testing image ({first.where}, distance {hamming(first.phash, phash)})"
    match = exact or nearest
    if match is None:
        return None
    kind = "exact" if match.sha256 == sha256 else f"near (distance {hamming(match.phash, phash)})"
    where = "an image imported earlier in this batch" if match.split == "Feedback" else (
        "a Training image")  # fmt: skip
    if match.class_name != label:
        return (f"{kind} copy of {where} under another class ({match.class_name}: {match.where}):"
                " label conflict, not imported; review that image")  # fmt: skip
    return f"{kind} copy of {where} ({match.where})"


def _known_images(layout: Layout) -> list[_Known]:
    known = []
    for split, per_class in layout.classes.items():
        for class_name, folder in per_class.items():
            for path in visible_entries(folder):
                if not path.is_file():
                    continue
                try:
                    info = _read_image(path, split, class_name)
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                    continue  # the prepare stage reports unreadable files
                where = path.relative_to(layout.root).as_posix()
                known.append(_Known(where, split, class_name, info.sha256, info.phash))
    return known


def batches_in(layout: Layout, kept: Iterable[Path]) -> list[dict]:
    """The feedback batches whose images are among ``kept`` (the prepare stage's images):
    ``[{"batch_id", "images"}]`` by batch id, for data_report.json and the lineage."""
    kept_files = {path.relative_to(layout.root).as_posix() for path in kept}
    batches = []
    for path in sorted(layout.base.glob(f"{BATCH_PREFIX}*.json")):
        try:
            manifest = json.loads(path.read_text())
            files = [entry["file"] for entry in manifest["imported"]]
            batch_id = manifest["batch_id"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("unreadable feedback batch manifest %s: not in the lineage", path)
            continue
        # Files are relative to the data set's root, here as in the folder imported into.
        count = sum(f in kept_files for f in files)
        if count:
            batches.append({"batch_id": batch_id, "images": count})
    return sorted(batches, key=lambda b: b["batch_id"])


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
