"""Inference: ``POST /v2/models/{name}[/versions/{version}]/infer``, JSON or binary tensors."""

from __future__ import annotations

import asyncio
import time
import zlib

from brainscan_servicekit import get_logger
from fastapi import APIRouter, Request, Response
from starlette.types import Receive

from ..batching import BatcherClosed, QueueFull
from ..codec import HEADER_LENGTH, decode_request, encode_response
from ..errors import BadRequest, InferenceError, PayloadTooLarge, Unavailable
from ..metrics import InferenceMetrics
from ..model import LoadedModel
from ..registry import ModelRegistry
from ..settings import InferenceSettings

router = APIRouter(tags=["inference"])
_log = get_logger(__name__)

CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer was ready


# The hot path reads the app state directly instead of through Depends: resolving dependencies
# costs more per request than everything else the route does besides the model call.


@router.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    """Run the served model on the request's input tensor."""
    return await _infer(request, name, None)


@router.post("/v2/models/{name}/versions/{version}/infer")
async def infer_version(name: str, version: str, request: Request) -> Response:
    """Run one version of the model (404 unless it is the version served)."""
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    state = request.app.state
    registry: ModelRegistry = state.registry
    metrics: InferenceMetrics = state.metrics
    settings: InferenceSettings = state.settings
    started = time.perf_counter()
    labels = ("", "")
    outcome = "error"
    try:
        model = registry.resolve(name, version)  # 404/503 before reading the body
        labels = (model.name, model.version)
        body = await _read_body(request, settings.max_request_bytes)
        parsed = decode_request(body, request.headers.get(HEADER_LENGTH))
        for _attempt in range(2):
            model = registry.resolve(name, version)
            labels = (model.name, model.version)
            try:
                outputs = await _unless_client_leaves(request.receive, model, parsed)
                break
            except BatcherClosed:
                continue  # swapped between resolve and submit: the new model takes it
        else:
            raise Unavailable("the model is being replaced; retry", code="swapping")
        if outputs is None:
            outcome = "cancelled"
            return Response(status_code=CLIENT_CLOSED)
        content, headers = encode_response(
            model_name=model.name,
            model_version=model.version,
            request_id=parsed.id,
            outputs=outputs,
        )
        outcome = "success"
        return Response(content, headers=headers)
    except QueueFull as exc:
        outcome = "unavailable"
        raise Unavailable(
            f"the inference queue is full ({exc}); retry later", code="queue_full"
        ) from None
    except InferenceError as exc:
        outcome = {503: "unavailable", 500: "error"}.get(exc.status, "client_error")
        raise
    except Exception:
        _log.exception("inference failed", **{"model.name": labels[0], "model.version": labels[1]})
        raise InferenceError("internal error while running the model") from None
    finally:
        metrics.requests.labels(*labels, outcome).inc()
        metrics.request_duration.labels(*labels, outcome).observe(time.perf_counter() - started)


async def _unless_client_leaves(receive: Receive, model: LoadedModel, parsed):
    """The model's outputs, or None if the client disconnects first (its request is dropped)."""
    work = asyncio.ensure_future(model.infer(parsed))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()  # the client left (or this handler was cancelled): drop the request
    return work.result() if work.done() and not work.cancelled() else None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed if the client compressed it; 413 beyond ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over the {limit} byte limit")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the {limit} byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequest(
            f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)",
            code="malformed_header",
        )
    decompressor = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        plain = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding} data: {exc}") from None
    if len(plain) > limit or decompressor.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body is over the {limit} byte limit")
    return plain
