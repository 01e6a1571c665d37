"""The brainscan model package contract (manifest + ONNX), shared by training and every service."""

from .schema import (
    MANIFEST_FILE,
    MODEL_FILE,
    ActivationMapSpec,
    InputSpec,
    Lineage,
    Manifest,
    OutputSpec,
)

__all__ = [
    "MANIFEST_FILE",
    "MODEL_FILE",
    "ActivationMapSpec",
    "InputSpec",
    "Lineage",
    "Manifest",
    "OutputSpec",
]
