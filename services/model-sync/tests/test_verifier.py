"""Verification before publishing: every check, each failure refused with a reason that says why."""

from __future__ import annotations

import pytest
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_modelsync.verifier import PackageRefused, verify_version
from modelsync_packages import good_package, truncated_package, wrong_class_count_package

NAME = "brainscan-test"


def sha_of(directory) -> str:
    return Manifest.load(directory / MANIFEST_FILE).onnx_sha256


def test_a_good_package_passes_and_carries_its_registry_version(tmp_path) -> None:
    package = good_package(tmp_path / "pkg", NAME)
    verified = verify_version(package, model_name=NAME, version="7", sha256_tag=sha_of(package))
    assert verified.version == "7" and verified.manifest.version == "7"
    assert verified.sha256 == sha_of(package)
    assert verified.onnx_path == package / MODEL_FILE


@pytest.mark.parametrize(
    ("make", "tag", "reason"),
    [
        (lambda d: good_package(d, NAME), "0" * 64, "sha256 mismatch.*registry says"),
        (lambda d: good_package(d, NAME), None, "no manifest.onnx_sha256 tag"),
        (lambda d: truncated_package(d, NAME), "own", "ONNX checker failed"),
        (lambda d: wrong_class_count_package(d, NAME), "own", "3 probability outputs.*4 classes"),
        (lambda d: good_package(d, "another-model"), "own", "names model 'another-model'"),
    ],
    ids=["wrong-sha256-tag", "no-sha256-tag", "truncated-onnx", "wrong-class-count", "other-name"],
)
def test_a_bad_package_is_refused_with_the_reason(tmp_path, make, tag, reason) -> None:
    package = make(tmp_path / "pkg")
    sha256_tag = sha_of(package) if tag == "own" else tag
    with pytest.raises(PackageRefused, match=reason):
        verify_version(package, model_name=NAME, version="3", sha256_tag=sha256_tag)


def test_a_file_changed_after_the_manifest_was_written_is_refused(tmp_path) -> None:
    package = good_package(tmp_path / "pkg", NAME)
    tag = sha_of(package)
    model = package / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(PackageRefused, match=r"sha256 mismatch.*manifest says"):
        verify_version(package, model_name=NAME, version="3", sha256_tag=tag)


def test_a_manifest_naming_another_version_is_refused(tmp_path) -> None:
    package = good_package(tmp_path / "pkg", NAME)
    Manifest.load(package / MANIFEST_FILE).with_version("2").save(package / MANIFEST_FILE)
    with pytest.raises(PackageRefused, match="manifest says version '2'"):
        verify_version(package, model_name=NAME, version="3", sha256_tag=sha_of(package))


@pytest.mark.parametrize("missing", [MODEL_FILE, MANIFEST_FILE])
def test_a_missing_file_is_refused(tmp_path, missing) -> None:
    package = good_package(tmp_path / "pkg", NAME)
    tag = sha_of(package)
    (package / missing).unlink()
    with pytest.raises(PackageRefused, match="missing"):
        verify_version(package, model_name=NAME, version="3", sha256_tag=tag)


def test_an_unreadable_manifest_is_refused(tmp_path) -> None:
    package = good_package(tmp_path / "pkg", NAME)
    (package / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(PackageRefused, match="invalid manifest"):
        verify_version(package, model_name=NAME, version="3", sha256_tag="0" * 64)
