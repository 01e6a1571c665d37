"""Where model packages come from: a pluggable ``ModelSource`` (local directory, model-sync)."""

from .base import ModelCandidate, ModelSource, SourceError
from .local import LocalDirectorySource
from .modelsync import ModelSyncSource

__all__ = [
    "LocalDirectorySource",
    "ModelCandidate",
    "ModelSource",
    "ModelSyncSource",
    "SourceError",
]
