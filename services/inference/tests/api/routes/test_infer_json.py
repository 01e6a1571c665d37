"""JSON tensors: decoded off the event loop, and capped in size apart from binary bodies."""

from __future__ import annotations

import gzip
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
from brainscan_inference.api.routes import infer as infer_route


def json_body(images) -> bytes:
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": list(images.shape),
                    "datatype": "UINT8",
                    "data": images.ravel().tolist(),
                }
            ]
        }
    )


def binary_body(images) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": list(images.shape),
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": images.nbytes},
                }
            ]
        }
    )
    return header + images.tobytes(), {"Inference-Header-Content-Length": str(len(header))}


def post(server, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    url = f"{server.url}/v2/models/tiny/infer"
    return httpx.post(url, content=content, headers=headers or {}, timeout=30)


def test_health_answers_while_a_json_request_is_being_decoded(
    serve, settings_factory, model_dir, images, monkeypatch
) -> None:
    server = serve(settings_factory(model_dir, max_batch_size=32))
    body = json_body(images(32))
    assert len(body) > 16 * 1024  # small JSON requests are decoded in place: not this one
    decoding = threading.Event()
    release = threading.Event()
    real_decode = infer_route.decode_request

    def held_decode(*args, **kwargs):
        # Fault injection: the decoding of this request takes as long as the test wants.
        decoding.set()
        release.wait(30)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(infer_route, "decode_request", held_decode)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, server, body)
        try:
            assert decoding.wait(10), "the request was never decoded"
            # The event loop is free while the JSON is decoded: other requests are answered.
            assert httpx.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
            assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
            assert not pending.done()
        finally:
            release.set()
        assert pending.result().status_code == 200


@pytest.fixture
def capped_server(serve, settings_factory, model_dir):
    """JSON capped at 4 KiB, binary at 64 KiB."""
    return serve(settings_factory(model_dir, max_json_request_bytes=4096, max_request_bytes=65536))


def assert_413(response: httpx.Response, text: str) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large" and text in body["error"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_json_body_over_the_json_limit_is_413_while_binary_keeps_its_own_limit(
    capped_server, images
) -> None:
    batch = images(8)  # 1,536 pixels: ~6 KB as JSON, 1.5 KB as binary
    assert len(json_body(batch)) > 4096
    assert_413(post(capped_server, json_body(batch)), "limit of 4096 bytes for JSON")
    assert "binary" in post(capped_server, json_body(batch)).json()["error"]
    content, headers = binary_body(batch)
    assert post(capped_server, content, headers).status_code == 200
    assert post(capped_server, json_body(images(2))).status_code == 200


def test_the_json_limit_holds_after_decompression_and_for_a_binary_requests_json_header(
    capped_server, images
) -> None:
    compressed = gzip.compress(json_body(images(8)))
    assert len(compressed) < 4096
    assert_413(post(capped_server, compressed, {"Content-Encoding": "gzip"}), "limit of 4096 bytes")
    # A binary request whose JSON header carries a JSON tensor over the limit.
    header = json_body(images(8))
    response = post(capped_server, header, {"Inference-Header-Content-Length": str(len(header))})
    assert_413(response, "limit of 4096 bytes for JSON")
