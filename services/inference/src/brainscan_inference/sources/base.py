"""The model source interface: what the service asks of any place models come from.

A source only finds packages and hands them over as directories on local disk; verifying,
loading, warming up and swapping is the model slot's job, so every source gets the same checks.
A remote source (model-sync: long poll, download, expected sha256) implements the same two
methods and the rest of the service does not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


class SourceError(RuntimeError):
    """The source could not be read (missing directory, remote down); the reason is the message."""


@dataclass(frozen=True)
class ModelCandidate:
    """A model package on local disk that the source currently offers for serving."""

    directory: Path
    """Holds ``model.onnx`` and ``manifest.json``."""
    version: str
    expected_sha256: str | None = None
    """The hash the source vouches for (e.g. a registry's), checked on top of the manifest's."""
    origin: str = ""
    """Human-readable provenance for logs and the repository index."""
    fallbacks: tuple[ModelCandidate, ...] = field(default=(), repr=False)
    """Packages to try in this order if this one is refused (a local directory's lower
    versions, highest first), so one broken version does not keep a good one from serving."""


@runtime_checkable
class ModelSource(Protocol):
    """Offers the current model package and tells when it changes."""

    description: str

    async def latest(self) -> ModelCandidate | None:
        """The package to serve now; raise SourceError if there is none or the source fails
        (a challenger source: None while there is no challenger)."""
        ...

    def changes(self) -> AsyncIterator[ModelCandidate | None]:
        """Yield the current package, then each new one when it appears; runs until cancelled.
        None: nothing to hold any more (only a challenger source withdraws)."""
        ...
