"""Inference: ``POST /v2/models/{name}[/versions/{version}]/infer``, JSON or binary tensors."""

from __future__ import annotations

import asyncio
import time
import zlib
from concurrent.futures import Executor
from functools import partial

from brainscan_servicekit import get_logger
from fastapi import APIRouter, Request, Response
from starlette.types import Receive

from ..batching import BatcherClosed, QueueFull
from ..codec import HEADER_LENGTH, InferRequest, decode_request, encode_response
from ..errors import BadRequest, InferenceError, PayloadTooLarge, Unavailable
from ..metrics import InferenceMetrics
from ..model import CheckedRequest, LoadedModel
from ..registry import ModelRegistry
from ..settings import InferenceSettings

router = APIRouter(tags=["inference"])
_log = get_logger(__name__)

CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer was ready
_INLINE_JSON_BYTES = 16 * 1024
"""Request JSON up to this size is decoded on the event loop (well under a millisecond)."""
_INLINE_JSON_VALUES = 4096
"""Response JSON values up to this many are encoded on the event loop."""


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
    codec_thread: Executor = state.codec_executor
    started = time.perf_counter()
    labels = ("", "")
    outcome = "error"
    try:
        model = registry.resolve(name, version)  # 404/503 before reading the body
        labels = (model.name, model.version)
        header_length = request.headers.get(HEADER_LENGTH)
        body = await _read_body(request, settings, binary=header_length is not None)
        # JSON tensors take 20-100 ms per MB to parse and turn into arrays: a worker thread does
        # that so the event loop keeps answering. A binary request's small JSON header and
        # np.frombuffer cost microseconds, less than the hop to a thread: done right here.
        off_loop = _json_bytes(body, header_length) > _INLINE_JSON_BYTES
        parsed = None
        for _attempt in range(2):
            model = registry.resolve(name, version)
            labels = (model.name, model.version)
            if off_loop:
                parsed, checked = await asyncio.get_running_loop().run_in_executor(
                    codec_thread, _decode_and_check, model, body, header_length, parsed
                )
            else:
                parsed, checked = _decode_and_check(model, body, header_length, parsed)
            try:
                outputs = await _unless_client_leaves(request.receive, model, checked)
                break
            except BatcherClosed:
                continue  # swapped between resolve and submit: the new model takes it
        else:
            raise Unavailable("the model is being replaced; retry", code="swapping")
        if outputs is None:
            outcome = "cancelled"
            return Response(status_code=CLIENT_CLOSED)
        encode = partial(
            encode_response,
            model_name=model.name,
            model_version=model.version,
            request_id=parsed.id,
            outputs=outputs,
        )
        if sum(o.tensor.size for o in outputs if not o.binary) > _INLINE_JSON_VALUES:
            content, headers = await asyncio.get_running_loop().run_in_executor(
                codec_thread, encode
            )
        else:
            content, headers = encode()
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


def _json_bytes(body: bytes, header_length: str | None) -> int:
    """Size of the request's JSON: the whole body, or the binary extension's header."""
    if header_length is None:
        return len(body)
    return int(header_length) if header_length.isdigit() else 0


def _decode_and_check(
    model: LoadedModel, body: bytes, header_length: str | None, parsed: InferRequest | None
) -> tuple[InferRequest, CheckedRequest]:
    """Parse the body (unless already parsed) and check it against ``model``."""
    if parsed is None:
        parsed = decode_request(body, header_length)
    return parsed, model.check(parsed)


async def _unless_client_leaves(receive: Receive, model: LoadedModel, checked: CheckedRequest):
    """The model's outputs, or None if the client disconnects first (its request is dropped)."""
    work = asyncio.ensure_future(model.run(checked))
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


async def _read_body(request: Request, settings: InferenceSettings, *, binary: bool) -> bytes:
    """The request body, decompressed if the client compressed it; 413 beyond its limit.

    JSON has a lower limit than binary tensor data: the whole body of a JSON request, the JSON
    header of a binary one (checked here, before anything parses it).
    """
    json_limit = min(settings.max_json_request_bytes, settings.max_request_bytes)
    if binary:
        limit, advice = settings.max_request_bytes, ""
        header_length = request.headers.get(HEADER_LENGTH, "")
        if header_length.isdigit() and int(header_length) > json_limit:
            raise PayloadTooLarge(
                f"JSON header of {header_length} bytes is over the limit of {json_limit} bytes "
                "for JSON; send large tensors as binary data (binary_data_size)"
            )
    else:
        limit = json_limit
        advice = (
            " for JSON tensors; send large batches as binary tensor data "
            f"(Inference-Header-Content-Length), up to {settings.max_request_bytes} bytes"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes is over the limit of {limit} bytes{advice}"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes{advice}")
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
        raise PayloadTooLarge(
            f"decompressed request body is over the limit of {limit} bytes{advice}"
        )
    return plain
