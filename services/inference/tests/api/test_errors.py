"""Every client mistake gets a clear 4xx in the protocol's error form; overload gets 503."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import orjson
import pytest
from brainscan_inference.activation_map import ActivationMapper


def post(server, body, *, path="/v2/models/tiny/infer", headers=None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(server.url + path, content=content, headers=headers or {}, timeout=10)


def good_input(n: int = 1, **changes) -> dict:
    entry = {"name": "image", "shape": [n, 8, 8, 3], "datatype": "UINT8", "data": [1] * (n * 192)}
    entry.update(changes)
    return entry


def assert_error(response: httpx.Response, status: int, code: str, text: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert text in body["error"]
    assert body["request_id"] == response.headers["x-request-id"]


CASES = {
    "wrong input name": ({"inputs": [good_input(name="pixels")]}, "input_name", "'pixels'"),
    "two inputs": ({"inputs": [good_input(), good_input()]}, "input_name", "exactly one"),
    "wrong datatype": ({"inputs": [good_input(datatype="FP32")]}, "input_datatype", "UINT8"),
    "unknown datatype": ({"inputs": [good_input(datatype="BF16")]}, "input_datatype", "BF16"),
    "wrong shape": ({"inputs": [good_input(shape=[1, 8, 3, 8])]}, "input_shape", "[-1, 8, 8, 3]"),
    "wrong rank": ({"inputs": [good_input(shape=[192])]}, "input_shape", "expects"),
    "empty batch": ({"inputs": [good_input(shape=[0, 8, 8, 3], data=[])]}, "input_shape", "0"),
    "data count": ({"inputs": [good_input(data=[1, 2, 3])]}, "input_shape", "holds 3 values"),
    "pixel out of range": ({"inputs": [good_input(data=[256] * 192)]}, "input_data", "0..255"),
    "batch over limit": ({"inputs": [good_input(9)]}, "batch_too_large", "limit of 8"),
    "unknown output": (
        {"inputs": [good_input()], "outputs": [{"name": "logits"}]},
        "output_name",
        "'logits'",
    ),
    "output twice": (
        {"inputs": [good_input()], "outputs": [{"name": "probabilities"}] * 2},
        "output_name",
        "twice",
    ),
    "activation_map not bool": (
        {"inputs": [good_input()], "parameters": {"activation_map": "yes"}},
        "parameter",
        "true",
    ),
    "unknown activation class": (
        {
            "inputs": [good_input()],
            "parameters": {"activation_map": True, "activation_class": "tumour"},
        },
        "parameter",
        "'tumour'",
    ),
    "activation class out of range": (
        {"inputs": [good_input()], "parameters": {"activation_map": True, "activation_class": 4}},
        "parameter",
        "0..3",
    ),
    "not json": (b"\x00\x01", "malformed_json", "JSON"),
    "no inputs": ({"outputs": []}, "malformed_json", "inputs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_client_mistakes_are_400(shared_server, case: str) -> None:
    body, code, text = CASES[case]
    assert_error(post(shared_server, body), 400, code, text)


def binary_request(data: bytes, declared: int, shape=(1, 8, 8, 3), datatype="UINT8"):
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": list(shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": declared},
                }
            ]
        }
    )
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


def test_binary_byte_length_not_matching_the_shape_is_400(shared_server) -> None:
    body, headers = binary_request(b"\x00" * 100, 100)
    assert_error(post(shared_server, body, headers=headers), 400, "input_byte_length", "needs 192")


def test_binary_size_past_the_body_is_400(shared_server) -> None:
    body, headers = binary_request(b"\x00" * 100, 192)
    assert_error(post(shared_server, body, headers=headers), 400, "input_byte_length", "past")


@pytest.mark.parametrize("value", ["abc", "-5", "999999"])
def test_malformed_header_length_is_400(shared_server, value: str) -> None:
    body, _ = binary_request(b"\x00" * 192, 192)
    response = post(shared_server, body, headers={"Inference-Header-Content-Length": value})
    assert_error(response, 400, "malformed_header", "Inference-Header-Content-Length")


def test_binary_size_without_the_header_is_400(shared_server) -> None:
    body, _ = binary_request(b"", 192)
    assert_error(post(shared_server, body), 400, "malformed_header", "no Inference-Header")


def test_unsupported_or_broken_compression_is_400(shared_server) -> None:
    body = orjson.dumps({"inputs": [good_input()]})
    assert_error(
        post(shared_server, body, headers={"Content-Encoding": "br"}), 400, "malformed_header", "br"
    )
    assert_error(
        post(shared_server, body, headers={"Content-Encoding": "gzip"}), 400, "bad_request", "gzip"
    )


def test_a_body_over_the_limit_is_413(serve, settings_factory, model_dir) -> None:
    server = serve(settings_factory(model_dir, max_request_bytes=4096))
    assert_error(post(server, b"x" * 5000), 413, "payload_too_large", "4096")


def test_non_finite_float_input_is_400(serve, settings_factory, tmp_path, package_factory) -> None:
    package_factory(tmp_path / "models" / "1", dtype="float32", layout="NCHW")
    server = serve(settings_factory(tmp_path / "models"))
    pixels = np.zeros((1, 3, 8, 8), "<f4")
    pixels[0, 1, 2, 3] = np.nan
    body, headers = binary_request(pixels.tobytes(), pixels.nbytes, (1, 3, 8, 8), "FP32")
    assert_error(post(server, body, headers=headers), 400, "input_not_finite", "NaN")


def test_activation_map_from_a_model_without_cam_is_400(
    serve, settings_factory, tmp_path, package_factory
) -> None:
    package_factory(tmp_path / "models" / "1", with_cam=False)
    server = serve(settings_factory(tmp_path / "models"))
    response = post(server, {"inputs": [good_input()], "parameters": {"activation_map": True}})
    assert_error(response, 400, "activation_map_unavailable", "cannot give activation maps")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v2/models/other/infer", "model_not_found"),
        ("/v2/models/tiny/versions/5/infer", "version_not_found"),
        ("/v2/models/other/versions/1/infer", "model_not_found"),
    ],
)
def test_unknown_model_or_version_is_404(shared_server, path: str, code: str) -> None:
    assert_error(post(shared_server, {"inputs": [good_input()]}, path=path), 404, code)


def test_unknown_routes_and_methods_answer_in_the_same_error_form(shared_server) -> None:
    assert_error(httpx.get(f"{shared_server.url}/v3/nothing"), 404, "http_404")
    wrong_method = httpx.get(f"{shared_server.url}/v2/models/tiny/infer")
    assert_error(wrong_method, 405, "http_405", "use POST")
    assert wrong_method.headers["allow"] == "POST"


def test_infer_before_a_model_is_loaded_is_503_with_retry_after(
    serve, settings_factory, tmp_path
) -> None:
    server = serve(settings_factory(tmp_path / "empty", retry_after_seconds=3), ready=False)
    response = post(server, {"inputs": [good_input()]})
    assert_error(response, 503, "not_ready", "no model")
    assert response.headers["retry-after"] == "3"


class HeldModel:
    """Holds the real model's batches until released, to make a queue build up on purpose.

    The servers it is used on run one model worker (``model_workers=1``), so a held batch leaves
    every later request waiting in the queue."""

    def __init__(self, server) -> None:
        batcher = server.app.state.model_slot.current.batcher
        self._real = batcher._run_batch  # fault injection around the real onnxruntime call
        self.gate = threading.Event()
        self.running = threading.Event()
        self.batches: list[int] = []
        batcher._run_batch = self._run

    def _run(self, payloads):
        self.running.set()
        self.gate.wait(20)
        self.batches.append(sum(p.shape[0] for p in payloads))
        return self._real(payloads)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_full_queue_is_503_with_retry_after_and_queued_requests_still_succeed(
    serve, settings_factory, model_dir
) -> None:
    server = serve(settings_factory(model_dir, queue_capacity=3, max_batch_size=8, model_workers=1))
    held = HeldModel(server)
    batcher = server.app.state.model_slot.current.batcher
    body = {"inputs": [good_input()]}
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(post, server, body)
        wait_for(held.running.is_set)
        queued = [pool.submit(post, server, body) for _ in range(3)]
        wait_for(lambda: batcher.queue_depth == 3)
        overflow = post(server, body)
        assert_error(overflow, 503, "queue_full", "queue is full")
        assert overflow.headers["retry-after"] == "1"
        held.gate.set()
        assert [f.result().status_code for f in [first, *queued]] == [200, 200, 200, 200]
    assert held.batches == [1, 3]  # the three that waited ran together as one batch


def test_a_client_that_leaves_before_its_turn_is_dropped(serve, settings_factory, model_dir):
    server = serve(settings_factory(model_dir, model_workers=1))
    held = HeldModel(server)
    batcher = server.app.state.model_slot.current.batcher
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, server, {"inputs": [good_input()]})
        wait_for(held.running.is_set)
        body = orjson.dumps({"inputs": [good_input(2)]})
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(
                b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            wait_for(lambda: batcher.queue_depth == 1)
        wait_for(lambda: batcher.queue_depth == 0)  # dropped as soon as the client went away
        held.gate.set()
        assert first.result().status_code == 200
    assert held.batches == [1]  # the abandoned request of 2 images never ran
    cancelled = server.app.state.metrics.registry.get_sample_value(
        "brainscan_inference_requests_total",
        {"model": "tiny", "version": "1", "outcome": "cancelled"},
    )
    assert cancelled == 1


GARBAGE = [
    b"",
    b"null",
    b"{}",
    b'{"inputs": "image"}',
    b'{"inputs": [1]}',
    b'{"inputs": [{"name": 1}]}',
    b'{"inputs": [{"name": "image", "shape": "1", "datatype": "UINT8"}]}',
    b'{"inputs": [{"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": {}}]}',
    b'{"inputs": [{"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": "x"}]}',
    b'{"inputs": [{"name": "image", "shape": [1,8,8,3], "datatype": "UINT8", "data": [1e999]}]}',
    b'{"inputs": [{"name": "image", "shape": [1,8,8,3], "datatype": "UINT8", "data": [[[[1]]]]}]}',
    b'{"inputs": [{"name": "image", "shape": [1e3], "datatype": "UINT8"}]}',
    b'{"id": 5, "inputs": []}',
    b'{"inputs": [{"name": "image", "shape": [1], "datatype": "UINT8", "parameters": []}]}',
    b'{"inputs": [], "outputs": "probabilities"}',
    b'{"inputs": [{"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [1]}],'
    b' "outputs": [{"name": "probabilities", "parameters": {"binary_data": "yes"}}]}',
    b'{"inputs": [{"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [1]}],'
    b' "parameters": {"binary_data_output": 1}}',
    b'{"inputs": [{"name":"image","shape":[99999999999,8,8,3],"datatype":"UINT8","data":[1]}]}',
]


@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_never_gets_a_5xx(shared_server, body: bytes) -> None:
    response = post(shared_server, body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


def test_a_failing_model_call_is_500_for_that_batch_only(serve, settings_factory, model_dir):
    server = serve(settings_factory(model_dir))
    batcher = server.app.state.model_slot.current.batcher
    real = batcher._run_batch

    def broken(payloads):  # fault injection: onnxruntime failing inside the worker thread
        raise RuntimeError("onnxruntime exploded")

    batcher._run_batch = broken
    assert_error(post(server, {"inputs": [good_input()]}), 500, "internal", "internal error")
    batcher._run_batch = real
    assert post(server, {"inputs": [good_input()]}).status_code == 200
    errors = server.app.state.metrics.registry.get_sample_value(
        "brainscan_inference_requests_total", {"model": "tiny", "version": "1", "outcome": "error"}
    )
    assert errors == 1


def test_activation_maps_that_fail_after_load_are_a_plain_500_and_probabilities_still_work(
    serve, settings_factory, model_dir
) -> None:
    server = serve(settings_factory(model_dir))
    model = server.app.state.model_slot.current
    # Fault injection: weights that stopped fitting the feature map after warm-up checked them.
    spec = model.manifest.outputs.activation_map.model_copy(update={"weights": [[1.0] * 4] * 6})
    model.activation_maps = ActivationMapper(spec)
    body = {"inputs": [good_input()], "parameters": {"activation_map": True}}
    response = post(server, body)
    assert_error(response, 500, "activation_map_failed", "cannot compute activation maps")
    assert "5 channels" in response.json()["error"]
    assert "not of the request" in response.json()["error"]
    assert post(server, {"inputs": [good_input()]}).status_code == 200


def test_a_bug_is_a_json_500_that_carries_the_request_id(serve, settings_factory, model_dir):
    server = serve(settings_factory(model_dir))
    slot = server.app.state.model_slot

    def broken(*_args):  # fault injection: a bug anywhere below a route
        raise RuntimeError("a bug")

    slot.resolve = broken
    response = httpx.get(f"{server.url}/v2/models/tiny", headers={"X-Request-ID": "bug-1"})
    assert_error(response, 500, "internal", "internal error")
    assert response.headers["x-request-id"] == "bug-1"
