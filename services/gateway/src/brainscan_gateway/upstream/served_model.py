"""The model inference serves right now, as its manifest describes it, cached for a while.

The gateway decodes and resizes by the manifest, so it must match the model that answers:
predictions name the manifest's version when they call inference, and when inference no longer
serves that version (a hot swap happened) the manifest is fetched again and the call retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from brainscan_manifest import Manifest
from brainscan_servicekit import get_logger
from pydantic import ValidationError

from ..errors import GatewayError
from .client import InferenceClient, InferenceFailed

_log = get_logger(__name__)


class ServedModel:
    """Fetches and caches the served model's manifest from the inference service."""

    def __init__(
        self,
        client: InferenceClient,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._manifest: Manifest | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self.on_change: Callable[[Manifest], None] | None = None

    @property
    def cached(self) -> Manifest | None:
        """The last manifest fetched, however old (None before the first fetch)."""
        return self._manifest

    async def get(self, request_id: str | None = None) -> Manifest:
        """The manifest, fetched again once older than ``refresh_seconds``."""
        if self._manifest is not None and not self._stale():
            return self._manifest
        return await self._fetch(request_id, force=False)

    async def refresh(self, request_id: str | None = None) -> Manifest:
        """Fetch now (inference said our version is gone)."""
        return await self._fetch(request_id, force=True)

    def _stale(self) -> bool:
        return self._clock() - self._fetched_at >= self._refresh_seconds

    async def _fetch(self, request_id: str | None, force: bool) -> Manifest:
        requested_at = self._clock()
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            if self._manifest is not None and self._fetched_at >= requested_at:
                return self._manifest
            if not force and self._manifest is not None and not self._stale():
                return self._manifest
            try:
                document = await self._client.manifest(request_id)
                manifest = Manifest.model_validate(document)
            except ValidationError as exc:
                raise InferenceFailed(
                    f"the inference service sent an invalid model manifest "
                    f"({exc.error_count()} problems)"
                ) from exc
            except GatewayError:
                if self._manifest is not None and not force:
                    # Inference is briefly unreachable: keep using what we know; the inference
                    # call itself will fail fast if it is really down.
                    _log.warning("manifest refresh failed; keeping the cached one")
                    return self._manifest
                raise
            previous = self._manifest
            self._manifest = manifest
            self._fetched_at = self._clock()
        if previous is None or previous.version != manifest.version:
            _log.info(
                "serving model",
                **{
                    "event.action": "model-changed",
                    "model.name": manifest.name,
                    "model.version": manifest.version,
                },
            )
            if self.on_change is not None:
                self.on_change(manifest)
        return manifest
