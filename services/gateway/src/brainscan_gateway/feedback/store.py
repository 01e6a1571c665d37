"""Where feedback is kept: a folder that survives restarts (a PVC in the chart).

Per reviewed image, two files named by the sha256 of the PNG:

- ``<sha256>.png``: the decoded pixels the model saw, re-encoded from the bare pixel array, so
  no metadata of the upload (EXIF, ICC profile, text chunks, DICOM header) can come along;
- ``<sha256>.json``: the record (``FeedbackRecord.to_json``): the model's answer, the
  reviewer's label and comment, when.

Each file is written to a temporary name in the same folder, flushed to disk and renamed, so a
crash leaves the old file or the new one, never half of one; the PNG is in place before its
record, so every record has its image. The same pixels reviewed again (another request) replace
the record: the latest review of an image is the one kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RECORD_SCHEMA = 1


def png_of_pixels(image: Image.Image) -> bytes:
    """PNG of the pixels only: a new image from the array, without ``image.info``."""
    bare = Image.fromarray(np.asarray(image))
    buffer = io.BytesIO()
    bare.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


@dataclass(frozen=True)
class FeedbackRecord:
    sha256: str
    width: int
    height: int
    mode: str
    request_id: str
    model_name: str
    model_version: str | None
    model_role: str
    model_label: str
    model_confidence: float
    model_classes: tuple[str, ...]
    assessed: bool
    label: str
    comment: str | None
    answered_at: str
    received_at: str

    @property
    def confirmation(self) -> bool:
        return self.label == self.model_label

    def to_json(self) -> dict:
        return {
            "schema": RECORD_SCHEMA,
            "sha256": self.sha256,
            "image": f"{self.sha256}.png",
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "request_id": self.request_id,
            "model": {
                "name": self.model_name,
                "version": self.model_version,
                "role": self.model_role,
                "label": self.model_label,
                "confidence": round(self.model_confidence, 6),
                "classes": list(self.model_classes),
                "assessed": self.assessed,
            },
            "label": self.label,
            "confirmation": self.confirmation,
            "comment": self.comment,
            "answered_at": self.answered_at,
            "received_at": self.received_at,
            # Set by a curator (brainscan-train feedback import --accepted-only takes only true).
            "accepted": None,
        }


class FeedbackStore:
    """A folder of feedback PNGs and records; created (with its parents) when opened."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(self.directory, os.W_OK):
            raise PermissionError(f"the feedback folder {self.directory} is not writable")

    def save(self, png: bytes, record_for) -> FeedbackRecord:
        """Store ``png`` and the record ``record_for(sha256)`` makes; blocking file work."""
        sha256 = hashlib.sha256(png).hexdigest()
        record: FeedbackRecord = record_for(sha256)
        image_path = self.directory / f"{sha256}.png"
        if not image_path.is_file():  # same name, same bytes: already there
            _write_atomically(image_path, png)
        body = json.dumps(record.to_json(), indent=2, ensure_ascii=False) + "\n"
        _write_atomically(self.directory / f"{sha256}.json", body.encode())
        return record


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
