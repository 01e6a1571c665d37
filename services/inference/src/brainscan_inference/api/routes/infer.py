"""Inference: ``POST /v2/models/{name}[/versions/{version}]/infer``, JSON or binary tensors.

The hot path, so it is a plain ASGI endpoint that ``InferenceRoute`` (a middleware in front of
FastAPI's router) sends these requests to: FastAPI's routing, request objects and exception
middleware cost more per request than everything else here besides the model call. Errors are
answered here in the same JSON form as everywhere else (``api.errors``).
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from concurrent.futures import Executor
from functools import partial

from brainscan_servicekit import get_logger
from brainscan_v2protocol import HEADER_LENGTH
from starlette.types import ASGIApp, Receive, Scope, Send

from ...batching import BatcherClosed, QueueFull
from ...codec import InferRequest, decode_request, encode_response
from ...errors import BadRequest, InferenceError, PayloadTooLarge, Unavailable
from ...metrics import InferenceMetrics
from ...model import CheckedRequest, LoadedModel
from ...model_slot import ModelSlot
from ...settings import InferenceSettings
from ..errors import error_response

_log = get_logger(__name__)

CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer was ready
_INLINE_JSON_BYTES = 16 * 1024
"""Request JSON up to this size is decoded on the event loop (well under a millisecond)."""
_INLINE_JSON_VALUES = 4096
"""Response JSON values up to this many are encoded on the event loop."""
_INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
_HEADERS_READ = {b"content-length", b"content-encoding", HEADER_LENGTH.encode()}


class InferenceRoute:
    """ASGI middleware: requests to the infer paths go to the endpoint below, all else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := _INFER_PATH.match(scope["path"])):
            if scope["method"] == "POST":
                await _infer(scope, receive, send, match[1], match[2])
            else:
                response = error_response(
                    405, f"{scope['method']} is not allowed here; use POST", "http_405"
                )
                response.headers["Allow"] = "POST"
                await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _ClientGone(Exception):
    """The client disconnected before its request body was read."""


async def _infer(scope: Scope, receive: Receive, send: Send, name: str, version: str | None):
    state = scope["app"].state
    slot: ModelSlot = state.model_slot
    metrics: InferenceMetrics = state.metrics
    settings: InferenceSettings = state.settings
    codec_thread: Executor = state.codec_executor
    started = time.perf_counter()
    labels = ("", "")
    outcome = "error"
    try:
        model = slot.resolve(name, version)  # 404/503 before reading the body
        labels = (model.name, model.version)
        headers = {
            k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _HEADERS_READ
        }
        header_length = headers.get(HEADER_LENGTH)
        body = await _read_body(receive, headers, settings)
        # JSON tensors take 20-100 ms per MB to parse and turn into arrays: a worker thread does
        # that so the event loop keeps answering. A binary request's small JSON header and
        # np.frombuffer cost microseconds, less than the hop to a thread: done right here.
        off_loop = _json_bytes(body, header_length) > _INLINE_JSON_BYTES
        parsed = None
        for _attempt in range(2):
            model = slot.resolve(name, version)
            labels = (model.name, model.version)
            if off_loop:
                parsed, checked = await asyncio.get_running_loop().run_in_executor(
                    codec_thread, _decode_and_check, model, body, header_length, parsed
                )
            else:
                parsed, checked = _decode_and_check(model, body, header_length, parsed)
            try:
                outputs = await _unless_client_leaves(receive, model, checked)
                break
            except BatcherClosed:
                continue  # swapped between resolve and submit: the new model takes it
        else:
            raise Unavailable("the model is being replaced; retry", code="swapping")
        if outputs is None:
            outcome = "cancelled"
            await _send(send, CLIENT_CLOSED, b"", {})
            return
        encode = partial(
            encode_response,
            model_name=model.name,
            model_version=model.version,
            request_id=parsed.id,
            outputs=outputs,
        )
        if sum(o.tensor.size for o in outputs if not o.binary) > _INLINE_JSON_VALUES:
            content, response_headers = await asyncio.get_running_loop().run_in_executor(
                codec_thread, encode
            )
        else:
            content, response_headers = encode()
        outcome = "success"
        await _send(send, 200, content, response_headers)
    except _ClientGone:
        outcome = "cancelled"
    except Exception as exc:
        error = _as_inference_error(exc, labels)
        outcome = _OUTCOMES.get(error.status, "client_error")
        retry_after = settings.retry_after_seconds if error.status == 503 else None
        await error_response(error.status, error.message, error.code, retry_after)(
            scope, receive, send
        )
    finally:
        metrics.requests.labels(*labels, outcome).inc()
        metrics.request_duration.labels(*labels, outcome).observe(time.perf_counter() - started)


_OUTCOMES = {503: "unavailable", 500: "error"}


def _as_inference_error(exc: Exception, labels: tuple[str, str]) -> InferenceError:
    """The error to answer with; anything unexpected is logged with its traceback, then a 500."""
    if isinstance(exc, InferenceError):
        return exc
    if isinstance(exc, QueueFull):
        return Unavailable(f"the inference queue is full ({exc}); retry later", code="queue_full")
    _log.error(
        "inference failed",
        exc_info=exc,
        **{"model.name": labels[0], "model.version": labels[1]},
    )
    return InferenceError("internal error while running the model")


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


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


async def _read_body(receive: Receive, headers: dict[str, str], settings) -> bytes:
    """The request body, decompressed if the client compressed it; 413 beyond its limit.

    JSON has a lower limit than binary tensor data: the whole body of a JSON request, the JSON
    header of a binary one (checked here, before anything parses it).
    """
    json_limit = min(settings.max_json_request_bytes, settings.max_request_bytes)
    header_length = headers.get(HEADER_LENGTH)
    if header_length is not None:
        limit, advice = settings.max_request_bytes, ""
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
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes is over the limit of {limit} bytes{advice}"
        )
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes{advice}")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = headers.get("content-encoding", "identity").lower()
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
