"""The gateway when inference stops, comes back, or swaps its model, over real HTTP."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from brainscan_inference.app import create_app as create_inference
from gateway_images import png_bytes
from gateway_servers import RunningServer, inference_settings, write_package


def predict(url: str, **params) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/predictions",
        files={"file": ("a.png", png_bytes(64))},
        params=params,
        timeout=30,
    )


def wait_for(condition, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


@pytest.fixture
def own_inference(tmp_path):
    """An inference service this test may stop, restart and feed new model versions."""
    model_dir = tmp_path / "models"
    write_package(model_dir / "1")
    server = RunningServer(lambda: create_inference(inference_settings(model_dir))).start()
    server.wait_until("/v2/health/ready")
    server.model_dir = model_dir
    yield server
    server.stop()


def test_circuit_opens_when_inference_stops_and_closes_when_it_returns(
    own_inference, start_gateway
):
    gateway = start_gateway(
        own_inference.url, breaker_failure_threshold=2, breaker_open_seconds=1.0
    )
    assert predict(gateway.url).status_code == 200
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200

    own_inference.stop()
    first = predict(gateway.url)
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "inference_unavailable"
    assert "cannot be reached" in first.json()["error"]["message"]
    assert first.headers["retry-after"].isdigit()
    predict(gateway.url)  # the second failure in a row opens the circuit
    refused = predict(gateway.url)
    assert refused.status_code == 503
    assert "paused" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    not_ready = httpx.get(f"{gateway.url}/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["inference"] == "not ready"
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_circuit_breaker_state{state="open"} 1.0' in metrics
    assert 'gateway_upstream_errors_total{code="inference_unavailable"}' in metrics

    own_inference.start()  # same port
    own_inference.wait_until("/v2/health/ready")
    # After the open period a probe goes through, succeeds, and the circuit closes by itself.
    wait_for(lambda: predict(gateway.url).status_code == 200)
    assert predict(gateway.url).status_code == 200
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_circuit_breaker_state{state="closed"} 1.0' in metrics


def test_gateway_started_before_inference_becomes_ready_later(tmp_path, start_gateway):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    server = RunningServer(lambda: create_inference(inference_settings(model_dir))).start()
    try:
        gateway = start_gateway(server.url)
        assert httpx.get(f"{gateway.url}/readyz").status_code == 503
        early = predict(gateway.url)
        assert early.status_code == 503
        assert early.json()["error"]["code"] in {"model_not_ready", "inference_unavailable"}
        write_package(model_dir / "1")
        wait_for(lambda: httpx.get(f"{gateway.url}/readyz").status_code == 200)
        assert predict(gateway.url).status_code == 200
    finally:
        server.stop()


def test_new_model_version_is_followed_without_failed_requests(own_inference, start_gateway):
    gateway = start_gateway(own_inference.url, manifest_refresh_seconds=3600)
    assert predict(gateway.url).json()["model"]["version"] == "1"
    # Clients keep sending from before version 2 is written until each has been answered by
    # it. The gateway's cached manifest says version 1; inference no longer serves it after
    # the swap, so the gateway re-reads the manifest and retries: every answer is a success.
    answers: list[tuple[int, str | None]] = []
    sending = threading.Barrier(4)

    def client() -> None:
        answers.append(answer(predict(gateway.url)))
        sending.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answers.append(answer(predict(gateway.url)))
            if answers[-1][1] == "2":
                return

    with ThreadPoolExecutor(3) as pool:
        clients = [pool.submit(client) for _ in range(3)]
        sending.wait(timeout=30)  # every client has had an answer from version 1
        write_package(own_inference.model_dir / "2", seed=7)
        for done in clients:
            done.result()
    failures = [a for a in answers if a[0] != 200]
    assert not failures, f"{len(failures)} of {len(answers)} requests failed: {failures[:5]}"
    versions = [version for _, version in answers]
    assert versions.count("1") >= 3 and versions.count("2") >= 3, versions
    assert httpx.get(f"{gateway.url}/api/v1/model").json()["version"] == "2"


def answer(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json().get("model", {}).get("version")


def test_inference_timeout_is_a_504(start_gateway):
    # A server that accepts the connection and never answers stands in for a stuck inference.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        gateway = start_gateway(
            f"http://127.0.0.1:{listener.getsockname()[1]}", inference_timeout=0.5
        )
        response = predict(gateway.url)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "inference_timeout"
    finally:
        listener.close()


def test_explain_on_a_model_without_activation_data_is_a_clear_422(tmp_path, start_gateway):
    model_dir = tmp_path / "models"
    write_package(model_dir / "1", with_cam=False)
    server = RunningServer(lambda: create_inference(inference_settings(model_dir))).start()
    try:
        server.wait_until("/v2/health/ready")
        gateway = start_gateway(server.url)
        assert httpx.get(f"{gateway.url}/api/v1/model").json()["explain_available"] is False
        response = predict(gateway.url, explain="true")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "explanation_unavailable"
        assert predict(gateway.url).status_code == 200
    finally:
        server.stop()
