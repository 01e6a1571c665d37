"""The model registry contract: what training writes to MLflow's registry and model-sync reads.

A registered version's source is the run artifact folder ``PACKAGE_ARTIFACT_PATH`` holding
``PACKAGE_FILES``; its ``SHA256_TAG`` is the ONNX file's sha256, which every reader checks the
download against; the served version is the one the ``PRODUCTION`` alias names, and a
registered but not promoted one carries ``CHALLENGER``.
"""

from __future__ import annotations

from .schema import MANIFEST_FILE, MODEL_FILE

PRODUCTION = "production"
CHALLENGER = "challenger"
SHA256_TAG = "manifest.onnx_sha256"  # one of the tags Manifest.to_tags() writes
PACKAGE_ARTIFACT_PATH = "model_package"
PACKAGE_FILES = (MODEL_FILE, MANIFEST_FILE)
# Registries from before aliases (MLflow < 2.9) marked the served version with this stage.
LEGACY_PRODUCTION_STAGE = "Production"
