"""The bounded on-disk cache of verified packages, and each model's saved state.

Layout under the cache directory, one folder per followed model::

    <model>/state.json              served version + history (written atomically)
    <model>/state.<alias>.json      the same for a version in shadow (the challenger)
    <model>/versions/<version>/     a verified package: model.onnx + manifest.json (version set)
    <model>/incoming/<random>/      downloads being verified (cleared on start)

Only verified packages are ever renamed into ``versions/``, so a crash mid-download leaves
nothing that could be served. Eviction keeps every version in use (served or in shadow) and then
the most recently published ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from brainscan_manifest import MODEL_FILE

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STATE_FILE = "state.json"


def is_valid_version(version: str) -> bool:
    """A version string safe to use as a directory name (MLflow's are integers)."""
    return bool(_VERSION.match(version))


def _model_key(name: str) -> str:
    # Registered model names may hold any character; this keeps them one safe path segment.
    return quote(name, safe="").replace(".", "%2E")


class PackageCache:
    """Verified model packages on disk, at most ``max_versions`` per model."""

    def __init__(self, root: Path, max_versions: int) -> None:
        self.root = Path(root)
        self.max_versions = max_versions
        # model -> track (the alias a publication follows) -> the version it publishes now
        self._in_use: dict[str, dict[str, str]] = {}

    def use(self, name: str, track: str, version: str | None) -> None:
        """Say which version ``track`` publishes now (None: none); eviction keeps it."""
        tracks = self._in_use.setdefault(name, {})
        if version is None:
            tracks.pop(track, None)
        else:
            tracks[track] = version
            self.touch(name, version)

    def model_dir(self, name: str) -> Path:
        return self.root / _model_key(name)

    def _versions_dir(self, name: str) -> Path:
        return self.model_dir(name) / "versions"

    def prepare(self, name: str) -> None:
        """Create the model's folders and drop downloads a previous run left half done."""
        shutil.rmtree(self.model_dir(name) / "incoming", ignore_errors=True)
        (self.model_dir(name) / "incoming").mkdir(parents=True, exist_ok=True)
        self._versions_dir(name).mkdir(parents=True, exist_ok=True)

    def new_incoming(self, name: str) -> Path:
        """An empty folder to download a package into before it is verified."""
        incoming = self.model_dir(name) / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="download-", dir=incoming))

    def find(self, name: str, version: str) -> Path | None:
        """The cached package of a version, if there is one."""
        if not is_valid_version(version):
            return None
        directory = self._versions_dir(name) / version
        return directory if (directory / MODEL_FILE).is_file() else None

    def commit(self, name: str, version: str, incoming: Path) -> Path:
        """Move a verified download into place as the cached package of ``version``."""
        if not is_valid_version(version):
            raise ValueError(f"unusable version string {version!r}")
        target = self._versions_dir(name) / version
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # a damaged copy being replaced: move it aside first, then rename
            self.discard(target)
        os.rename(incoming, target)
        self.touch(name, version)
        return target

    def touch(self, name: str, version: str) -> None:
        """Mark a version as just published (eviction drops the least recently published)."""
        directory = self._versions_dir(name) / version
        if directory.is_dir():
            now = time.time()
            os.utime(directory, (now, now))

    def discard(self, directory: Path) -> None:
        """Remove a package folder (a refused download or a damaged cached copy)."""
        if directory.exists():
            trash = directory.with_name(f".trash-{directory.name}-{time.monotonic_ns()}")
            os.rename(directory, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def versions(self, name: str) -> list[str]:
        """Cached versions, most recently published first."""
        root = self._versions_dir(name)
        if not root.is_dir():
            return []
        found = [p for p in root.iterdir() if p.is_dir() and is_valid_version(p.name)]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.name for p in found]

    def evict(self, name: str) -> list[str]:
        """Drop the least recently published versions beyond the bound; never one in use."""
        ordered = self.versions(name)
        in_use = set(self._in_use.get(name, {}).values())
        kept = [v for v in ordered if v in in_use] + [v for v in ordered if v not in in_use]
        evicted = kept[max(self.max_versions, len(in_use)) :]
        for version in evicted:
            self.discard(self._versions_dir(name) / version)
        return evicted

    def size_bytes(self, name: str) -> int:
        root = self._versions_dir(name)
        return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0

    # --- saved state --------------------------------------------------------------------------
    def read_state(self, name: str, track: str | None = None) -> dict | None:
        """The state saved by ``write_state``; None if there is none or it cannot be read."""
        path = self.model_dir(name) / _state_file(track)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def write_state(self, name: str, state: dict, track: str | None = None) -> None:
        """Save atomically (write aside, then rename), so a crash never leaves half a file."""
        directory = self.model_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".state-", dir=directory)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / _state_file(track))


def _state_file(track: str | None) -> str:
    """The served version's state file, or a shadow track's beside it."""
    return STATE_FILE if track is None else f"state.{quote(track, safe='')}.json"
