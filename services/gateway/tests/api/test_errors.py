"""A bug in the gateway: a logged traceback and a JSON 500 that still carries the request ID."""

import httpx
from brainscan_gateway.app import create_app
from gateway_servers import RunningServer, gateway_settings


def test_unexpected_exception_is_a_500_in_our_shape():
    app = create_app(gateway_settings("http://127.0.0.1:9"))

    @app.get("/api/v1/boom")
    async def boom():
        raise RuntimeError("a bug")

    server = RunningServer(lambda: app).start()
    try:
        response = httpx.get(f"{server.url}/api/v1/boom", headers={"X-Request-ID": "bug-1"})
    finally:
        server.stop()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "bug-1"
    error = response.json()["error"]
    assert error == {
        "code": "internal_error",
        "message": error["message"],
        "request_id": "bug-1",
    }
    assert "a bug" not in error["message"]  # internals stay in the log
