"""The on-disk cache: only committed packages are found, eviction is bounded, state is atomic."""

from __future__ import annotations

import os
import time

import pytest
from brainscan_manifest import MODEL_FILE
from brainscan_modelsync.cache import PackageCache, is_valid_version

NAME = "brainscan-test"


def download(cache: PackageCache, name: str = NAME) -> os.PathLike:
    incoming = cache.new_incoming(name)
    (incoming / MODEL_FILE).write_bytes(b"onnx")
    return incoming


def publish(cache: PackageCache, version: str, when: float) -> None:
    cache.commit(NAME, version, download(cache))
    directory = cache.find(NAME, version)
    os.utime(directory, (when, when))


def test_a_download_is_found_only_once_committed(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=3)
    cache.prepare(NAME)
    incoming = download(cache)
    assert cache.find(NAME, "1") is None
    committed = cache.commit(NAME, "1", incoming)
    assert cache.find(NAME, "1") == committed and not incoming.exists()
    assert (committed / MODEL_FILE).read_bytes() == b"onnx"


def test_prepare_drops_downloads_left_by_a_previous_run(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=3)
    leftover = download(cache)
    cache.prepare(NAME)
    assert not leftover.exists()


def test_committing_a_version_again_replaces_the_old_copy(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=3)
    cache.commit(NAME, "1", download(cache))
    second = download(cache)
    (second / MODEL_FILE).write_bytes(b"fixed")
    cache.commit(NAME, "1", second)
    assert (cache.find(NAME, "1") / MODEL_FILE).read_bytes() == b"fixed"
    assert cache.versions(NAME) == ["1"]


def test_eviction_keeps_the_most_recently_published_and_never_the_served_one(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    now = time.time()
    for age, version in enumerate(["1", "2", "3", "4"]):
        publish(cache, version, now - 100 + age)
    cache.use(NAME, "production", "1")  # served again (a rollback): kept whatever its age
    assert sorted(cache.evict(NAME)) == ["2", "3"]
    assert cache.versions(NAME) == ["1", "4"]  # most recently published first


def test_eviction_never_drops_a_version_in_shadow_either(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    now = time.time()
    for age, version in enumerate(["1", "2", "3", "4"]):
        publish(cache, version, now - 100 + age)
    cache.use(NAME, "production", "1")
    cache.use(NAME, "challenger", "2")
    assert sorted(cache.evict(NAME)) == ["3", "4"]
    assert sorted(cache.versions(NAME)) == ["1", "2"]
    cache.use(NAME, "challenger", None)  # withdrawn: an ordinary cached version again
    cache.use(NAME, "production", "1")
    assert cache.evict(NAME) == [] and sorted(cache.versions(NAME)) == ["1", "2"]


def test_a_shadow_track_keeps_its_state_beside_the_served_one(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    cache.write_state(NAME, {"current": "1"})
    cache.write_state(NAME, {"current": "2"}, "challenger")
    assert cache.read_state(NAME) == {"current": "1"}
    assert cache.read_state(NAME, "challenger") == {"current": "2"}
    assert cache.read_state(NAME, "other") is None


def test_versions_that_are_not_safe_names_are_never_looked_up(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    for bad in ["..", "../x", "", "a/b", ".hidden", "x" * 80]:
        assert not is_valid_version(bad)
        assert cache.find(NAME, bad) is None
    with pytest.raises(ValueError, match="unusable version"):
        cache.commit(NAME, "../escape", download(cache))
    assert is_valid_version("12") and is_valid_version("v1.2-rc")


def test_model_names_become_one_safe_folder_each(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    for name in ["a/b", "..", "name with spaces"]:
        directory = cache.model_dir(name)
        assert directory.parent == tmp_path and directory.name not in ("..", ".")
    assert cache.model_dir("a/b") != cache.model_dir("a_b")


def test_state_is_written_atomically_and_read_back(tmp_path) -> None:
    cache = PackageCache(tmp_path, max_versions=2)
    assert cache.read_state(NAME) is None
    cache.write_state(NAME, {"current": "3", "history": []})
    assert cache.read_state(NAME) == {"current": "3", "history": []}
    assert [p.name for p in cache.model_dir(NAME).iterdir()] == ["state.json"]
    (cache.model_dir(NAME) / "state.json").write_text("{truncat")
    assert cache.read_state(NAME) is None  # unreadable: start afresh rather than crash
