"""Client of the inference service: Open Inference Protocol v2 over REST, binary tensors.

One pooled ``httpx.AsyncClient`` for the process (moving its bytes through aiohttp's pool, see
``transport``), explicit timeouts, a retry only for connect errors (the request never
reached the server, so sending it again is safe) and a circuit breaker, so that a dead
inference service costs callers a fast 503, not a hang.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from brainscan_v2protocol import HEADER_LENGTH, InferResponse, decode_response, encode_request

from ..errors import ErrorCode, GatewayError
from .circuit_breaker import CircuitBreaker, CircuitOpen
from .transport import AiohttpTransport

ACTIVATION_MAP_OUTPUT = "activation_map"
NO_CHALLENGER = "no_challenger"
"""Inference's error code for "no challenger in shadow"."""


class InferenceUnavailable(GatewayError):
    """The inference service cannot be reached or refuses for now; retry after a moment."""

    def __init__(self, message: str, retry_after: str = "1") -> None:
        super().__init__(
            ErrorCode.INFERENCE_UNAVAILABLE, message, 503, headers={"Retry-After": retry_after}
        )


class InferenceTimeout(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INFERENCE_TIMEOUT, message, 504)


class InferenceFailed(GatewayError):
    """The inference service answered with an error or with something we cannot read."""

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(ErrorCode.INFERENCE_ERROR, message, 502)
        self.upstream_status = upstream_status


class UpstreamRejected(InferenceFailed):
    """Inference refused the request as malformed (4xx): the model may have changed under us."""


class ModelNotServed(GatewayError):
    """Inference does not serve this model (or this version of it) right now."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.MODEL_NOT_READY, message, 503, headers={"Retry-After": "5"})


class _UpstreamServerError(Exception):
    """A 5xx other than 503: counts against the circuit."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class ClientLimits:
    """Timeouts (seconds), pool size and connect retries of the client."""

    connect_timeout: float = 1.0
    read_timeout: float = 10.0
    pool_timeout: float = 2.0
    max_connections: int = 100
    max_keepalive_connections: int = 20
    connect_retries: int = 2
    retry_backoff: float = 0.05


def _counts_against_circuit(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _UpstreamServerError)


class InferenceClient:
    """Talks to one inference service about one model."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        *,
        limits: ClientLimits | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.limits = limits or ClientLimits()
        self.model_name = model_name
        self.breaker = breaker or CircuitBreaker()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(
                connect=self.limits.connect_timeout,
                read=self.limits.read_timeout,
                write=self.limits.read_timeout,
                pool=self.limits.pool_timeout,
            ),
            transport=AiohttpTransport(
                max_connections=self.limits.max_connections,
                keep_alive=self.limits.max_keepalive_connections > 0,
            ),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One guarded call: connect errors retried, failures counted, errors mapped to ours."""
        try:
            async with self.breaker.guard(_counts_against_circuit):
                response = await self._send_with_connect_retries(method, path, **kwargs)
                if response.status_code >= 500 and response.status_code != 503:
                    raise _UpstreamServerError(response)
                return response
        except CircuitOpen as exc:
            raise InferenceUnavailable(
                "the inference service is failing; requests are paused for a few seconds "
                "while it recovers",
                retry_after=exc.retry_after_header,
            ) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise InferenceUnavailable("the inference service cannot be reached") from exc
        except httpx.PoolTimeout as exc:
            raise InferenceUnavailable("too many requests are waiting for inference") from exc
        except httpx.TimeoutException as exc:
            raise InferenceTimeout("the inference service did not answer in time") from exc
        except httpx.TransportError as exc:
            raise InferenceFailed("the connection to the inference service failed") from exc
        except _UpstreamServerError as exc:
            raise InferenceFailed(
                f"the inference service failed (HTTP {exc.response.status_code})",
                upstream_status=exc.response.status_code,
            ) from exc

    async def _send_with_connect_retries(
        self, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                return await self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Not connected means not sent: the one failure that is always safe to retry.
                if attempt >= self.limits.connect_retries:
                    raise
                await asyncio.sleep(self.limits.retry_backoff * (2**attempt))
                attempt += 1

    @staticmethod
    def _raise_for_unavailable(response: httpx.Response) -> None:
        if response.status_code == 503:
            raise InferenceUnavailable(
                "the inference service is busy or has no model loaded yet",
                retry_after=response.headers.get("Retry-After", "1"),
            )

    async def is_ready(self, request_id: str | None = None) -> bool:
        """Whether inference says it is ready and our model is loaded."""
        try:
            response = await self._send(
                "GET", f"/v2/models/{self.model_name}/ready", headers=_id_header(request_id)
            )
        except GatewayError:
            return False
        return response.status_code == 200

    async def model_metadata(self, request_id: str | None = None) -> dict[str, Any]:
        """The v2 model metadata document (``GET /v2/models/{name}``)."""
        response = await self._send(
            "GET", f"/v2/models/{self.model_name}", headers=_id_header(request_id)
        )
        self._raise_for_unavailable(response)
        return self._json_document(response, "model metadata")

    async def manifest(self, request_id: str | None = None) -> dict[str, Any]:
        """The served model's manifest (brainscan extension ``GET /v2/models/{name}/manifest``)."""
        response = await self._send(
            "GET", f"/v2/models/{self.model_name}/manifest", headers=_id_header(request_id)
        )
        self._raise_for_unavailable(response)
        return self._json_document(response, "model manifest")

    async def challenger_manifest(self, request_id: str | None = None) -> dict[str, Any] | None:
        """The manifest of the challenger inference holds in shadow, or None while it holds
        none (brainscan extension ``GET /v2/models/{name}/challenger/manifest``)."""
        response = await self._send(
            "GET",
            f"/v2/models/{self.model_name}/challenger/manifest",
            headers=_id_header(request_id),
        )
        self._raise_for_unavailable(response)
        if response.status_code == 404 and _upstream_code(response) == NO_CHALLENGER:
            return None
        return self._json_document(response, "challenger manifest")

    def _json_document(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code == 404:
            raise ModelNotServed(
                f"the inference service does not serve model {self.model_name!r} yet"
            )
        if response.status_code != 200:
            raise InferenceFailed(
                f"{what} request failed (HTTP {response.status_code})",
                upstream_status=response.status_code,
            )
        try:
            document = response.json()
        except ValueError as exc:
            raise InferenceFailed(f"{what} is not JSON") from exc
        if not isinstance(document, dict):
            raise InferenceFailed(f"{what} is not a JSON object")
        return document

    async def infer(
        self,
        tensor: np.ndarray,
        input_name: str,
        outputs: list[str],
        *,
        request_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        version: str | None = None,
        timeout: float | None = None,
    ) -> InferResponse:
        """Run one inference with binary tensors in both directions; with ``version``, only
        that version may answer (404 -> ModelNotServed once it has been replaced). ``timeout``:
        seconds to wait for a pooled connection and for the answer, this call only."""
        body, headers = encode_request(
            {input_name: tensor}, outputs, request_id=request_id, parameters=parameters
        )
        headers.update(_id_header(request_id))
        path = f"/v2/models/{self.model_name}"
        if version:
            path += f"/versions/{quote(version, safe='')}"
        options: dict[str, Any] = {}
        if timeout is not None:
            options["timeout"] = httpx.Timeout(timeout, connect=self.limits.connect_timeout)
        response = await self._send(
            "POST", f"{path}/infer", content=body, headers=headers, **options
        )
        self._raise_for_unavailable(response)
        if response.status_code == 404:
            raise ModelNotServed(
                f"the inference service does not serve model {self.model_name!r}"
                + (f" version {version}" if version else "")
                + " right now"
            )
        if 400 <= response.status_code < 500:
            raise UpstreamRejected(
                f"the inference service refused the request (HTTP {response.status_code}): "
                f"{_upstream_message(response)}",
                upstream_status=response.status_code,
            )
        if response.status_code != 200:
            raise InferenceFailed(
                f"unexpected answer from inference (HTTP {response.status_code})",
                upstream_status=response.status_code,
            )
        try:
            return decode_response(response.content, response.headers.get(HEADER_LENGTH))
        except (ValueError, KeyError, TypeError) as exc:
            raise InferenceFailed("the inference service sent a malformed response") from exc


def _id_header(request_id: str | None) -> dict[str, str]:
    return {"X-Request-ID": request_id} if request_id else {}


def _upstream_code(response: httpx.Response) -> str | None:
    """Inference's machine-readable error code (``{"error": ..., "code": ...}``)."""
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _upstream_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return "no details"
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:300] if error else "no details"
