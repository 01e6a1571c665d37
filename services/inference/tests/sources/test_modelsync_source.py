"""The model-sync source: first fetch, long poll, rollback from the local copy, bad transfers.

The server here speaks model-sync's HTTP protocol from a few in-memory packages, so that failures
the real service never produces on purpose (a corrupted transfer, no version yet, a hanging
poll) can be forced. The real model-sync + MLflow + inference path is tested end to end in
services/model-sync/tests/test_end_to_end.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from pathlib import Path

import httpx
import pytest
from brainscan_inference.settings import InferenceSettings
from brainscan_inference.sources import ModelSyncSource, SourceError
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from fastapi import FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

pytestmark = pytest.mark.anyio
MODEL = "tiny"


class StandInModelSync:
    """model-sync's protocol over packages written by the tests' package factory."""

    def __init__(self) -> None:
        self.packages: dict[str, tuple[dict, bytes]] = {}
        self.current: str | None = None
        self.challenger: str | None = None
        self.corrupt = False
        self.artifact_requests: list[str] = []
        self.request_ids: list[str | None] = []
        self.app = self._build()

    def add(self, directory: Path, version: str) -> None:
        manifest = Manifest.load(directory / MANIFEST_FILE).with_version(version)
        self.packages[version] = (
            manifest.model_dump(mode="json"),
            (directory / MODEL_FILE).read_bytes(),
        )

    def _describe(self) -> dict:
        manifest, _ = self.packages[self.current]
        return {
            "name": MODEL,
            "version": self.current,
            "sha256": manifest["onnx_sha256"],
            "artifact_url": f"/v1/models/{MODEL}/versions/{self.current}/artifact",
            "manifest": manifest,
        }

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models/{name}")
        async def current(request: Request, name: str, wait: float = 0, known: str | None = None):
            self.request_ids.append(request.headers.get("x-request-id"))
            if name != MODEL:
                return JSONResponse(
                    {"error": {"code": "model_not_followed", "message": "not followed"}}, 404
                )
            deadline = time.monotonic() + wait
            while (self.current is None or self.current == known) and time.monotonic() < deadline:
                if await request.is_disconnected():
                    return Response(status_code=499)
                await asyncio.sleep(0.02)
            if self.current is None:
                return JSONResponse(
                    {"error": {"code": "model_not_available", "message": "nothing yet"}}, 503
                )
            return self._describe()

        @app.get("/v1/models/{name}/challenger")
        async def challenger(
            request: Request, name: str, wait: float = 0, known: str | None = None
        ):
            deadline = time.monotonic() + wait
            while self.challenger == known and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.challenger is None:
                return JSONResponse(
                    {"error": {"code": "no_challenger", "message": "none in shadow"}}, 404
                )
            manifest, _ = self.packages[self.challenger]
            return {
                "name": MODEL,
                "alias": "challenger",
                "version": self.challenger,
                "sha256": manifest["onnx_sha256"],
                "artifact_url": f"/v1/models/{MODEL}/versions/{self.challenger}/artifact",
                "manifest": manifest,
            }

        @app.get("/v1/models/{name}/versions/{version}/artifact")
        async def artifact(name: str, version: str, if_none_match: str | None = Header(None)):
            self.artifact_requests.append(version)
            manifest, data = self.packages[version]
            if self.corrupt:
                data = data[: len(data) // 2]
            return Response(
                data,
                media_type="application/octet-stream",
                headers={"ETag": f'"{manifest["onnx_sha256"]}"'},
            )

        return app


@pytest.fixture
def standin(serve, package_factory, tmp_path):
    """A running stand-in with versions 1 and 2 available (nothing published yet)."""
    fake = StandInModelSync()
    fake.add(package_factory(tmp_path / "pkg1", name=MODEL), "1")
    fake.add(package_factory(tmp_path / "pkg2", name=MODEL, seed=5), "2")
    fake.server = serve(fake.app, ready=False)
    return fake


def source_for(standin, tmp_path, **options) -> ModelSyncSource:
    return ModelSyncSource(
        standin.server.url, MODEL, tmp_path / "cache", wait=2.0, timeout=5.0, **options
    )


async def test_latest_downloads_the_current_version_with_its_hash(standin, tmp_path) -> None:
    standin.current = "1"
    candidate = await source_for(standin, tmp_path).latest()
    manifest = Manifest.load(candidate.directory / MANIFEST_FILE)
    assert candidate.version == "1" and manifest.version == "1"
    assert candidate.expected_sha256 == manifest.onnx_sha256
    assert hashlib.sha256((candidate.directory / MODEL_FILE).read_bytes()).hexdigest() == (
        manifest.onnx_sha256
    )
    assert candidate.origin.startswith("model-sync:")


async def test_changes_follow_new_versions_and_a_rollback_reuses_the_local_copy(
    standin, tmp_path
) -> None:
    standin.current = "1"
    changes = source_for(standin, tmp_path).changes()
    assert (await asyncio.wait_for(anext(changes), 10)).version == "1"
    following = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.3)
    assert not following.done()  # the long poll is held open: nothing changed
    standin.current = "2"
    assert (await asyncio.wait_for(following, 10)).version == "2"
    standin.current = "1"
    assert (await asyncio.wait_for(anext(changes), 10)).version == "1"
    assert standin.artifact_requests == ["1", "2"]  # version 1 came from the local copy
    await changes.aclose()


async def test_a_corrupted_transfer_is_not_offered_and_is_retried(standin, tmp_path) -> None:
    standin.current = "1"
    standin.corrupt = True
    with pytest.raises(SourceError, match="arrived with sha256"):
        await source_for(standin, tmp_path).latest()
    assert not (tmp_path / "cache" / "1").exists()

    changes = source_for(standin, tmp_path).changes()
    following = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(1.0)
    assert not following.done() and len(standin.artifact_requests) >= 2
    standin.corrupt = False
    assert (await asyncio.wait_for(following, 15)).version == "1"
    await changes.aclose()


async def test_waits_for_a_first_version(standin, tmp_path) -> None:
    with pytest.raises(SourceError, match="503"):
        await source_for(standin, tmp_path).latest()
    changes = source_for(standin, tmp_path).changes()
    following = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.3)
    standin.current = "2"
    assert (await asyncio.wait_for(following, 15)).version == "2"
    await changes.aclose()


async def test_an_unknown_model_and_an_unreachable_service_are_source_errors(
    standin, tmp_path
) -> None:
    other = ModelSyncSource(standin.server.url, "other", tmp_path / "cache")
    with pytest.raises(SourceError, match=r"404.*not followed"):
        await other.latest()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = ModelSyncSource(f"http://127.0.0.1:{port}", MODEL, tmp_path / "cache", timeout=2.0)
    with pytest.raises(SourceError, match="unreachable"):
        await down.latest()


async def test_only_the_newest_downloads_are_kept(standin, package_factory, tmp_path) -> None:
    standin.add(package_factory(tmp_path / "pkg3", name=MODEL, seed=9), "3")
    source = source_for(standin, tmp_path)
    shadow = tmp_path / "cache" / "challenger" / "7"  # the challenger source's, inside this one
    shadow.mkdir(parents=True)
    for version in ("1", "2", "3"):
        standin.current = version
        await source.latest()
    kept = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert kept == ["2", "3", "challenger"]  # the challenger's folder is not pruned


async def test_a_challenger_source_offers_the_challenger_and_none_when_it_goes(
    standin, tmp_path
) -> None:
    source = source_for(standin, tmp_path, challenger=True)
    assert await source.latest() is None  # 404 no_challenger: nothing in shadow, no error
    offered: list[str | None] = []

    async def follow() -> None:
        async for candidate in source.changes():
            offered.append(candidate.version if candidate is not None else None)

    task = asyncio.get_running_loop().create_task(follow())
    try:
        standin.challenger = "2"
        while offered != ["2"]:
            await asyncio.sleep(0.02)
        standin.challenger = None
        while offered != ["2", None]:
            await asyncio.sleep(0.02)
        assert (tmp_path / "cache" / "2" / MODEL_FILE).is_file()
    finally:
        task.cancel()


def replica_settings(standin, tmp_path, **overrides) -> InferenceSettings:
    """An inference replica following the stand-in."""
    values = {
        "model_source": "modelsync",
        "modelsync_url": standin.server.url,
        "modelsync_model": MODEL,
        "modelsync_wait": 5,
        "modelsync_cache_dir": tmp_path / "replica-cache",
        "intra_op_threads": 1,
        "max_batch_size": 4,
        "log_level": "WARNING",
    }
    return InferenceSettings(**{**values, **overrides})


def test_the_service_serves_what_model_sync_publishes(serve, standin, tmp_path) -> None:
    standin.current = "1"
    server = serve(replica_settings(standin, tmp_path))
    versions = lambda: httpx.get(f"{server.url}/v2/models/{MODEL}").json()["versions"]  # noqa: E731
    assert versions() == ["1"]
    standin.current = "2"
    deadline = time.monotonic() + 20
    while versions() != ["2"]:
        assert time.monotonic() < deadline, "version 2 was not loaded"
        time.sleep(0.05)


def test_a_reload_asks_model_sync_under_the_callers_request_id(serve, standin, tmp_path) -> None:
    standin.current = "1"
    token = "repository-token-for-tests-0123456789"
    server = serve(replica_settings(standin, tmp_path, repository_api=True, repository_token=token))
    standin.request_ids.clear()
    response = httpx.post(
        f"{server.url}/v2/repository/models/{MODEL}/load",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "reload-1"},
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == "reload-1"
    assert "reload-1" in standin.request_ids  # one request, one ID, across both services


def test_settings_need_the_model_to_follow() -> None:
    with pytest.raises(ValidationError, match="INFERENCE_MODELSYNC_MODEL"):
        InferenceSettings(model_source="modelsync")
    assert InferenceSettings(model_source="modelsync", model_name="m").followed_model == "m"
    settings = InferenceSettings(model_source="modelsync", modelsync_model="registered")
    assert settings.followed_model == "registered"
