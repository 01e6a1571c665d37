"""The local directory source: both layouts, version order, pinning, change detection."""

from __future__ import annotations

import asyncio
import json

import pytest
from brainscan_inference.sources import LocalDirectorySource, SourceError

pytestmark = pytest.mark.anyio


async def test_a_single_package_uses_its_manifest_version_or_hash(tmp_path, package_factory):
    package_factory(tmp_path / "pkg")
    candidate = await LocalDirectorySource(tmp_path / "pkg").latest()
    sha = json.loads((tmp_path / "pkg" / "manifest.json").read_text())["onnx_sha256"]
    assert candidate.directory == tmp_path / "pkg" and candidate.version == sha[:12]

    package_factory(tmp_path / "named", version="4")
    assert (await LocalDirectorySource(tmp_path / "named").latest()).version == "4"


async def test_versions_sort_numerically_and_the_highest_is_served(tmp_path, package_factory):
    for version in ("2", "10", "9"):
        package_factory(tmp_path / version)
    (tmp_path / "notes").mkdir()  # not a package: ignored
    candidate = await LocalDirectorySource(tmp_path).latest()
    assert candidate.version == "10" and candidate.directory == tmp_path / "10"


async def test_a_pinned_version_is_served_instead(tmp_path, package_factory):
    for version in ("1", "2"):
        package_factory(tmp_path / version)
    assert (await LocalDirectorySource(tmp_path, pinned_version="1").latest()).version == "1"
    with pytest.raises(SourceError, match="pinned version '3'"):
        await LocalDirectorySource(tmp_path, pinned_version="3").latest()


@pytest.mark.parametrize("make", ["missing", "empty"])
async def test_no_package_is_a_source_error(tmp_path, make):
    directory = tmp_path / "models"
    if make == "empty":
        directory.mkdir()
    with pytest.raises(SourceError):
        await LocalDirectorySource(directory).latest()


async def test_changes_yields_the_current_package_then_each_new_one(tmp_path, package_factory):
    package_factory(tmp_path / "1")
    source = LocalDirectorySource(tmp_path, poll_interval=0.02)
    changes = source.changes()
    assert (await anext(changes)).version == "1"
    following = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.1)
    assert not following.done()  # nothing changed: nothing offered again
    package_factory(tmp_path / "2", seed=4)
    assert (await asyncio.wait_for(following, 5)).version == "2"
    await changes.aclose()


async def test_changes_waits_for_a_package_to_appear(tmp_path, package_factory):
    source = LocalDirectorySource(tmp_path / "models", poll_interval=0.02)
    changes = source.changes()
    first = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.1)
    assert not first.done()
    package_factory(tmp_path / "models" / "1")
    assert (await asyncio.wait_for(first, 5)).version == "1"
    await changes.aclose()


async def test_lower_versions_are_offered_as_fallbacks_highest_first(tmp_path, package_factory):
    for version in ("1", "3", "2"):
        package_factory(tmp_path / version)
    candidate = await LocalDirectorySource(tmp_path).latest()
    assert candidate.version == "3"
    assert [f.version for f in candidate.fallbacks] == ["2", "1"]
    assert [f.directory for f in candidate.fallbacks] == [tmp_path / "2", tmp_path / "1"]
    pinned = await LocalDirectorySource(tmp_path, pinned_version="3").latest()
    assert pinned.fallbacks == ()  # a pin means that version or nothing


async def test_a_change_to_a_fallback_version_is_offered_again(tmp_path, package_factory):
    package_factory(tmp_path / "1")
    package_factory(tmp_path / "2", seed=2)
    changes = LocalDirectorySource(tmp_path, poll_interval=0.02).changes()
    assert (await anext(changes)).version == "2"
    package_factory(tmp_path / "1", seed=5)  # e.g. the good version repaired under a broken one
    again = await asyncio.wait_for(anext(changes), 5)
    assert again.version == "2" and [f.version for f in again.fallbacks] == ["1"]
    await changes.aclose()


async def test_an_optional_directory_offers_none_until_a_package_comes_and_after_it_goes(
    tmp_path, package_factory
):
    """A challenger's directory: no package is nothing to hold, not an error."""
    directory = tmp_path / "challenger"
    source = LocalDirectorySource(directory, poll_interval=0.02, optional=True)
    assert await source.latest() is None
    changes = source.changes()
    following = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.1)
    assert not following.done()  # nothing was held, so there is nothing to withdraw
    package_factory(directory / "2")
    assert (await asyncio.wait_for(following, 5)).version == "2"
    for path in (directory / "2").iterdir():
        path.unlink()
    assert await asyncio.wait_for(anext(changes), 5) is None
    await changes.aclose()
