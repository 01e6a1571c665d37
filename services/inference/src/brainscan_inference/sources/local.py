"""A directory on local disk as the model source (standalone use, tests, mounted volumes).

Two layouts:

- ``<dir>/model.onnx`` + ``<dir>/manifest.json``: one package; its version is the manifest's
  ``version``, or the first 12 hex digits of its sha256 when the manifest has none.
- ``<dir>/<version>/model.onnx`` + ``manifest.json``: several versions; the highest is served
  unless one is pinned (integer names in numeric order, then any other names in text order).

Changes are found by polling file sizes and modification times, so a package copied in place
(or a new version directory) is picked up without any extra dependency; a half-copied file fails
the sha256 check, is refused, and is offered again once its files change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_servicekit import get_logger

from .base import ModelCandidate, SourceError

_log = get_logger(__name__)


class LocalDirectorySource:
    """Model packages in a local directory, re-scanned every ``poll_interval`` seconds."""

    def __init__(
        self, directory: Path, *, poll_interval: float = 5.0, pinned_version: str | None = None
    ) -> None:
        self.directory = Path(directory)
        self.poll_interval = poll_interval
        self.pinned_version = pinned_version
        self.description = f"local directory {self.directory}"

    async def latest(self) -> ModelCandidate:
        return await asyncio.to_thread(self._scan)

    async def changes(self) -> AsyncIterator[ModelCandidate]:
        last_fingerprint: tuple | None = None
        last_error: str | None = None
        while True:
            try:
                candidate, fingerprint = await asyncio.to_thread(self._scan_with_fingerprint)
            except SourceError as exc:
                if str(exc) != last_error:  # say it once, not every poll
                    _log.warning(
                        "model source has no usable package", **{"error.message": str(exc)}
                    )
                    last_error = str(exc)
            else:
                last_error = None
                if fingerprint != last_fingerprint:
                    last_fingerprint = fingerprint
                    yield candidate
            if self.poll_interval <= 0:
                if last_fingerprint is not None:
                    await asyncio.Event().wait()  # polling off: nothing more will come
                # No package yet and no polling: still look now and then rather than never.
                await asyncio.sleep(5.0)
            else:
                await asyncio.sleep(self.poll_interval)

    # --- scanning (blocking; run in a thread) --------------------------------------------------
    def _scan(self) -> ModelCandidate:
        return self._scan_with_fingerprint()[0]

    def _scan_with_fingerprint(self) -> tuple[ModelCandidate, tuple]:
        directory, version = self._locate()
        files = [directory / MANIFEST_FILE, directory / MODEL_FILE]
        try:
            stats = [(f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        except OSError as exc:
            raise SourceError(f"{directory}: cannot read package files: {exc}") from exc
        candidate = ModelCandidate(
            directory=directory, version=version, origin=f"local:{directory}"
        )
        return candidate, (str(directory), version, *stats)

    def _locate(self) -> tuple[Path, str]:
        root = self.directory
        if not root.is_dir():
            raise SourceError(f"model directory {root} does not exist")
        if (root / MANIFEST_FILE).is_file():
            if self.pinned_version is not None:
                raise SourceError(
                    f"{root} holds a single package; a pinned version needs <dir>/<version>/"
                )
            return root, _single_package_version(root)
        versions = sorted(
            (p.name for p in root.iterdir() if (p / MANIFEST_FILE).is_file()), key=_version_key
        )
        if not versions:
            raise SourceError(f"{root} holds no {MANIFEST_FILE} and no <version>/{MANIFEST_FILE}")
        if self.pinned_version is not None:
            if self.pinned_version not in versions:
                raise SourceError(
                    f"pinned version {self.pinned_version!r} not in {root} (has {versions})"
                )
            return root / self.pinned_version, self.pinned_version
        return root / versions[-1], versions[-1]


def _single_package_version(directory: Path) -> str:
    try:
        manifest = Manifest.load(directory / MANIFEST_FILE)
    except (OSError, ValueError):
        return "unknown"  # the registry reads it again and refuses it with the real reason
    return manifest.version or manifest.onnx_sha256[:12]


def _version_key(name: str) -> tuple[int, int | str]:
    # Integers sort numerically and before any non-integer name.
    return (0, int(name)) if name.isdigit() else (1, name)
