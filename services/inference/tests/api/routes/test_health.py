"""Server health and metadata over real HTTP: live, ready (only after warm-up), /v2, request IDs."""

from __future__ import annotations

import httpx


def test_live_and_ready_once_the_model_is_warm(shared_server) -> None:
    live = httpx.get(f"{shared_server.url}/v2/health/live")
    assert live.status_code == 200 and live.json() == {"live": True}
    ready = httpx.get(f"{shared_server.url}/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


def test_not_ready_without_a_model_then_ready_when_one_appears(
    serve, settings_factory, tmp_path, package_factory
) -> None:
    server = serve(settings_factory(tmp_path / "models", model_poll_interval=0.05), ready=False)
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    not_ready = httpx.get(f"{server.url}/v2/health/ready")
    assert not_ready.status_code == 503
    assert not_ready.headers["retry-after"] == "1"
    assert not_ready.json() == {"ready": False}
    package_factory(tmp_path / "models" / "1")
    server.wait_ready()


def test_server_metadata_lists_the_extensions(shared_server) -> None:
    body = httpx.get(f"{shared_server.url}/v2").json()
    assert body["name"] == "brainscan-inference"
    assert body["extensions"] == ["binary_tensor_data"]  # model_repository: off by default
    assert body["version"]


def test_request_id_is_taken_from_the_caller_or_made(shared_server) -> None:
    given = httpx.get(f"{shared_server.url}/v2", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{shared_server.url}/v2")
    assert len(made.headers["x-request-id"]) == 32
