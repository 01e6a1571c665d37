"""Where model packages come from: a pluggable ``ModelSource`` (local directory, ...)."""

from .base import ModelCandidate, ModelSource, SourceError
from .local import LocalDirectorySource

__all__ = ["LocalDirectorySource", "ModelCandidate", "ModelSource", "SourceError"]
