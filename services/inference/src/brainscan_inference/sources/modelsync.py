"""model-sync as the model source: long poll for the version to serve, download it, check sha256.

A replica asks ``GET /v1/models/{name}?wait=S`` on start and gets the current version at once;
after that each long poll (``&known=V``) answers as soon as model-sync publishes another version
(a newer one or a rollback). The ONNX file is hashed while it streams and must match the sha256
model-sync announced and its ETag; the model slot then runs the full package checks before the
hot swap. While model-sync is unreachable the source retries with backoff and the model already
loaded keeps serving.

With ``challenger=True`` it follows ``GET /v1/models/{name}/challenger`` instead: the version in
shadow. model-sync answers 404 ``no_challenger`` while there is none; a challenger that goes away
is offered as None (the replica then drops it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urljoin

import httpx
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.verify import sha256_file
from brainscan_servicekit import current_request_id, get_logger, new_request_id

from .base import ModelCandidate, SourceError

_log = get_logger(__name__)
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CHUNK = 1 << 20
_MIN_POLL_SECONDS = 1.0


class ModelSyncSource:
    """The version model-sync publishes for one registered model, downloaded to a local cache."""

    def __init__(
        self,
        base_url: str,
        model: str,
        cache_dir: Path,
        *,
        wait: float = 30.0,
        timeout: float = 10.0,
        retry_max_delay: float = 10.0,
        keep_versions: int = 2,
        challenger: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.wait = wait
        self.timeout = timeout
        self.retry_max_delay = retry_max_delay
        self.keep_versions = keep_versions
        self.challenger = challenger
        role = " challenger" if challenger else ""
        self.description = f"model-sync {self.base_url} model {model}{role}"

    def _client(self) -> httpx.AsyncClient:
        # The read timeout covers the long poll plus the usual allowance.
        timeout = httpx.Timeout(self.timeout, read=self.wait + self.timeout)
        return httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def latest(self) -> ModelCandidate | None:
        async with self._client() as client:
            info = await self._current(client, None, wait=0.0)
            return await self._fetch(client, info) if info is not None else None

    async def changes(self) -> AsyncIterator[ModelCandidate | None]:
        known: str | None = None
        failures = 0
        last_error: str | None = None
        async with self._client() as client:
            while True:
                asked_at = time.monotonic()
                try:
                    info = await self._current(client, known, wait=self.wait)
                    candidate = None
                    if info is None:  # no challenger (any more)
                        if known is not None:
                            known = None
                            yield None
                            continue
                    elif info["version"] != known:
                        candidate = await self._fetch(client, info)
                except SourceError as exc:
                    failures += 1
                    if str(exc) != last_error:  # say it once, not on every retry
                        _log.warning(
                            "model-sync unavailable; retrying", **{"error.message": str(exc)}
                        )
                        last_error = str(exc)
                    await asyncio.sleep(min(self.retry_max_delay, 0.25 * 2 ** min(failures, 8)))
                    continue
                failures, last_error = 0, None
                if candidate is not None:
                    known = candidate.version
                    yield candidate
                elif time.monotonic() - asked_at < _MIN_POLL_SECONDS:
                    # A server that does not hold the poll open must not make this a busy loop.
                    await asyncio.sleep(_MIN_POLL_SECONDS)

    # --- protocol --------------------------------------------------------------------------------
    async def _current(
        self, client: httpx.AsyncClient, known: str | None, *, wait: float
    ) -> dict | None:
        """The version model-sync offers; None for a challenger while there is none."""
        params: dict[str, str] = {"wait": f"{wait:g}"}
        if known is not None:
            params["known"] = known
        path = f"v1/models/{quote(self.model, safe='')}"
        if self.challenger:
            path += "/challenger"
        try:
            response = await client.get(path, params=params, headers=_request_headers())
        except httpx.HTTPError as exc:
            raise SourceError(f"model-sync at {self.base_url} unreachable: {exc!r}") from exc
        if (
            self.challenger
            and response.status_code == 404
            and _error_code(response) == NO_CHALLENGER
        ):
            return None
        if response.status_code != 200:
            raise SourceError(
                f"model-sync answered {response.status_code} for {self.model}: "
                f"{_error_message(response)}"
            )
        try:
            info = response.json()
            version, sha256 = str(info["version"]), str(info["sha256"])
            Manifest.model_validate(info["manifest"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"model-sync sent an unreadable model description: {exc}") from exc
        if not _VERSION.match(version) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise SourceError(f"model-sync sent an unusable version {version!r} or sha256")
        return info

    async def _fetch(self, client: httpx.AsyncClient, info: dict) -> ModelCandidate:
        """Put the package on local disk (unless it is there already) and offer it."""
        version, sha256 = str(info["version"]), str(info["sha256"])
        manifest = Manifest.model_validate(info["manifest"])
        target = self.cache_dir / version
        if not await asyncio.to_thread(_holds, target, sha256):
            await self._download(client, info, target)
            manifest.save(target / MANIFEST_FILE)
        os.utime(target, (time.time(), time.time()))
        self._prune(keep=target)
        return ModelCandidate(
            directory=target,
            version=version,
            expected_sha256=sha256,
            origin=f"model-sync:{self.base_url}",
        )

    async def _download(self, client: httpx.AsyncClient, info: dict, target: Path) -> None:
        sha256 = str(info["sha256"])
        url = urljoin(self.base_url, str(info.get("artifact_url") or "").lstrip("/"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache_dir))
        try:
            digest = hashlib.sha256()
            async with client.stream("GET", url, headers=_request_headers()) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise SourceError(
                        f"artifact of version {info['version']}: model-sync answered"
                        f" {response.status_code}: {_error_message(response)}"
                    )
                etag = response.headers.get("etag", "").removeprefix("W/").strip('"')
                with open(staging / MODEL_FILE, "wb") as handle:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        digest.update(chunk)
                        handle.write(chunk)
            if digest.hexdigest() != sha256 or (etag and etag != sha256):
                raise SourceError(
                    f"artifact of version {info['version']} arrived with sha256"
                    f" {digest.hexdigest()[:12]}…, expected {sha256[:12]}… (ETag {etag[:12]}…)"
                )
            if target.exists():
                _remove(target)
            os.rename(staging, target)
        except httpx.HTTPError as exc:
            raise SourceError(f"artifact download from {url} failed: {exc!r}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _prune(self, keep: Path) -> None:
        """Keep the newest ``keep_versions`` downloads (the one just offered among them).

        Only package folders count: the challenger source's folder inside this one (see
        ``app.challenger_source``) is not a download of this source's."""
        versions = [
            p
            for p in self.cache_dir.iterdir()
            if _VERSION.match(p.name) and (p / MANIFEST_FILE).is_file()
        ]
        versions.sort(key=lambda p: (p != keep, -p.stat().st_mtime))
        for old in versions[self.keep_versions :]:
            _remove(old)


def _holds(directory: Path, sha256: str) -> bool:
    """A complete, intact earlier download of this exact file (e.g. after a rollback)."""
    try:
        manifest = Manifest.load(directory / MANIFEST_FILE)
        return manifest.onnx_sha256 == sha256 and sha256_file(directory / MODEL_FILE) == sha256
    except (OSError, ValueError):
        return False


def _remove(directory: Path) -> None:
    trash = directory.with_name(f".trash-{directory.name}-{time.monotonic_ns()}")
    os.rename(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _request_headers() -> dict[str, str]:
    return {"X-Request-ID": current_request_id() or new_request_id()}


NO_CHALLENGER = "no_challenger"
"""model-sync's error code for "no version in shadow"."""


def _error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return str(error.get("message", error)) if isinstance(error, dict) else str(error)
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase
