"""The checks a downloaded version must pass before it is published.

The package contract's own checks (sha256 against the manifest, ONNX checker, inputs and outputs
against the manifest, smoke inference) plus what only the registry knows: the version's sha256
tag, the registered model's name and the version number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brainscan_manifest import Manifest
from brainscan_manifest.registry_contract import SHA256_TAG
from brainscan_manifest.verify import PackageError, load_package, verify_package


class PackageRefused(ValueError):
    """A version failed a check and must not be served; the message says which and why."""


@dataclass(frozen=True)
class VerifiedPackage:
    """A version that passed every check; its manifest carries the registry version."""

    name: str
    version: str
    onnx_path: Path
    manifest: Manifest

    @property
    def sha256(self) -> str:
        return self.manifest.onnx_sha256


def verify_version(
    directory: Path, *, model_name: str, version: str, sha256_tag: str | None
) -> VerifiedPackage:
    """Run every check on the package in ``directory``; raise PackageRefused at the first."""
    try:
        onnx_path, manifest = load_package(directory)
    except PackageError as exc:
        raise PackageRefused(str(exc)) from exc
    if sha256_tag is None:
        raise PackageRefused(
            f"the registry version has no {SHA256_TAG} tag, so the download cannot be"
            " checked against the registry; register it with brainscan_training.registry"
        )
    try:
        verify_package(
            onnx_path,
            manifest,
            expected_sha256=sha256_tag,
            expected_name=model_name,
            expected_version=version,
        )
    except PackageError as exc:
        raise PackageRefused(str(exc)) from exc
    return VerifiedPackage(model_name, version, onnx_path, manifest.with_version(version))
