"""A directory on local disk as the model source (standalone use, tests, mounted volumes).

Two layouts:

- ``<dir>/model.onnx`` + ``<dir>/manifest.json``: one package; its version is the manifest's
  ``version``, or the first 12 hex digits of its sha256 when the manifest has none.
- ``<dir>/<version>/model.onnx`` + ``manifest.json``: several versions; the highest is served
  unless one is pinned (integer names in numeric order, then any other names in text order).
  The lower versions come with it as fallbacks, highest first: if the highest is refused, the
  highest one that loads is served instead.

Changes are found by polling file sizes and modification times (of every version, since any of
them may end up served), so a package copied in place (or a new version directory) is picked up
without any extra dependency; a half-copied file fails the sha256 check, is refused, and is
offered again once its files change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_servicekit import get_logger

from .base import ModelCandidate, SourceError

_log = get_logger(__name__)


class LocalDirectorySource:
    """Model packages in a local directory, re-scanned every ``poll_interval`` seconds."""

    def __init__(
        self,
        directory: Path,
        *,
        poll_interval: float = 5.0,
        pinned_version: str | None = None,
        optional: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.poll_interval = poll_interval
        self.pinned_version = pinned_version
        self.optional = optional
        """A challenger's directory: no package means nothing to hold (None), not an error."""
        self.description = f"local directory {self.directory}"

    async def latest(self) -> ModelCandidate | None:
        try:
            return await asyncio.to_thread(self._scan)
        except SourceError:
            if self.optional:
                return None
            raise

    async def changes(self) -> AsyncIterator[ModelCandidate | None]:
        last_fingerprint: tuple | None = None
        last_error: str | None = None
        while True:
            try:
                candidate, fingerprint = await asyncio.to_thread(self._scan_with_fingerprint)
            except SourceError as exc:
                if self.optional:
                    if last_fingerprint is not None:  # the package went away: withdraw it
                        last_fingerprint = None
                        yield None
                elif str(exc) != last_error:  # say it once, not every poll
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
        packages = self._locate()
        fingerprint = []
        for directory, version in packages:
            files = [directory / MANIFEST_FILE, directory / MODEL_FILE]
            # A file that cannot be read is still offered: the model slot refuses it with the
            # reason, falls back to the next version, and the package is offered again once
            # its files change.
            stats = [_size_and_mtime(f) for f in files]
            fingerprint.append((str(directory), version, *stats))
        best, *lower = (
            ModelCandidate(directory=directory, version=version, origin=f"local:{directory}")
            for directory, version in packages
        )
        candidate = replace(best, fallbacks=tuple(lower))
        return candidate, tuple(fingerprint)

    def _locate(self) -> list[tuple[Path, str]]:
        """Packages to serve, best first: the highest version, then the lower ones."""
        root = self.directory
        if not root.is_dir():
            raise SourceError(f"model directory {root} does not exist")
        if (root / MANIFEST_FILE).is_file():
            if self.pinned_version is not None:
                raise SourceError(
                    f"{root} holds a single package; a pinned version needs <dir>/<version>/"
                )
            return [(root, _single_package_version(root))]
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
            return [(root / self.pinned_version, self.pinned_version)]
        return [(root / version, version) for version in reversed(versions)]


def _size_and_mtime(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _single_package_version(directory: Path) -> str:
    try:
        manifest = Manifest.load(directory / MANIFEST_FILE)
    except (OSError, ValueError):
        return "unknown"  # the model slot reads it again and refuses it with the real reason
    return manifest.version or manifest.onnx_sha256[:12]


def _version_key(name: str) -> tuple[int, int | str]:
    # Integers sort numerically and before any non-integer name.
    return (0, int(name)) if name.isdigit() else (1, name)
