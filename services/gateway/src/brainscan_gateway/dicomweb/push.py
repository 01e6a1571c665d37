"""The STOW-RS client that stores the receiver's SRs at the configured DICOMweb server.

httpx, not dicomweb-client: the gateway is asynchronous and already speaks httpx, while
dicomweb-client is built on requests (blocking: a worker thread per push, a second HTTP stack
and connection pool beside httpx) for a STOW-RS request that is one POST of a multipart/related
body (``multipart.encode``). What the server answers is read as PS3.18 says: 200 all stored,
202 some not (its FailedSOPSequence names them), anything else none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from .multipart import DICOM_JSON, encode

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"


@dataclass(frozen=True)
class PushOutcome:
    """Which SRs the server did not store (by SOP Instance UID), and why, in words."""

    status: int | None
    """The server's HTTP status; None when it could not be reached or did not answer."""
    failed: dict[str, str] = field(default_factory=dict)


class StowClient:
    """POSTs instances to ``{base_url}/studies`` (PS3.18 10.5)."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        username: str | None = None,
        password: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.url = base_url.rstrip("/") + "/studies"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            auth=auth,
            transport=transport,
            headers={"Accept": DICOM_JSON},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def store(self, instances: dict[str, bytes]) -> PushOutcome:
        """Store ``instances`` (SOP Instance UID -> Part 10 bytes) in one STOW-RS request."""
        if not instances:
            return PushOutcome(status=None)
        body, content_type = encode(list(instances.values()))
        try:
            response = await self._client.post(
                self.url, content=body, headers={"Content-Type": content_type}
            )
        except httpx.TimeoutException:
            return _all_failed(instances, None, "the push server did not answer in time")
        except httpx.HTTPError:
            return _all_failed(instances, None, "the push server could not be reached")
        status = response.status_code
        if status == 200:
            return PushOutcome(status)
        if status == 202:
            failed = _failed_uids(response)
            if failed is None:
                return _all_failed(
                    instances, status, "the push server answered 202 without a readable answer"
                )
            reason = "the push server refused to store it (listed in its FailedSOPSequence)"
            return PushOutcome(status, {uid: reason for uid in failed & instances.keys()})
        return _all_failed(instances, status, f"the push server answered HTTP {status}")


def _all_failed(instances: dict[str, bytes], status: int | None, reason: str) -> PushOutcome:
    return PushOutcome(status, dict.fromkeys(instances, reason))


def _failed_uids(response: httpx.Response) -> set[str] | None:
    try:
        answer = json.loads(response.content)
        items = answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", [])
        return {
            str(item[REFERENCED_SOP_INSTANCE_UID]["Value"][0])
            for item in items
            if REFERENCED_SOP_INSTANCE_UID in item
        }
    except (ValueError, AttributeError, KeyError, IndexError, TypeError):
        return None
