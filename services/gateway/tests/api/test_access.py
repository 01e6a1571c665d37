"""API keys, per-client rate limit, upload size limit, CORS and security headers, over HTTP."""

import socket

import httpx
import pytest
from brainscan_gateway.api.deps import forwarded_client
from gateway_images import png_bytes


def predict(url: str, headers: dict | None = None, data: bytes | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/predictions",
        files={"file": ("a.png", data or png_bytes(64))},
        headers=headers or {},
        timeout=30,
    )


def test_api_keys_from_settings_and_from_a_mounted_file(inference, start_gateway, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# one key per line\nfile-key-1\n\nfile-key-2  # rotated in May\n")
    gateway = start_gateway(inference.url, api_keys=["settings-key"], api_keys_file=key_file)

    missing = predict(gateway.url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "api_key_missing"
    assert "X-API-Key" in missing.json()["error"]["message"]
    wrong = predict(gateway.url, {"X-API-Key": "guess"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "api_key_invalid"
    for key in ("settings-key", "file-key-1", "file-key-2"):
        assert predict(gateway.url, {"X-API-Key": key}).status_code == 200, key
    model = httpx.get(f"{gateway.url}/api/v1/model")
    assert model.status_code == 401
    # The page, health and metrics stay reachable without a key.
    for path in ("/", "/healthz", "/metrics"):
        assert httpx.get(f"{gateway.url}{path}").status_code == 200, path


def test_rate_limit_answers_429_with_retry_after_per_client(inference, start_gateway):
    gateway = start_gateway(
        inference.url, rate_limit_per_minute=1, rate_limit_burst=2, api_keys=["a", "b"]
    )
    assert predict(gateway.url, {"X-API-Key": "a"}).status_code == 200
    assert predict(gateway.url, {"X-API-Key": "a"}).status_code == 200
    limited = predict(gateway.url, {"X-API-Key": "a"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another client has its own allowance.
    assert predict(gateway.url, {"X-API-Key": "b"}).status_code == 200
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_rejected_requests_total{code="rate_limited"} 1.0' in metrics


def test_forwarded_for_identifies_clients_only_when_trusted(inference, start_gateway):
    trusted = start_gateway(
        inference.url, rate_limit_per_minute=1, rate_limit_burst=1, trust_forwarded_for=True
    )
    assert predict(trusted.url, {"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert predict(trusted.url, {"X-Forwarded-For": "10.0.0.2"}).status_code == 200
    assert predict(trusted.url, {"X-Forwarded-For": "10.0.0.1"}).status_code == 429

    untrusted = start_gateway(inference.url, rate_limit_per_minute=1, rate_limit_burst=1)
    assert predict(untrusted.url, {"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert predict(untrusted.url, {"X-Forwarded-For": "10.0.0.2"}).status_code == 429


def test_rotating_a_spoofed_forwarded_for_entry_does_not_escape_the_limit(inference, start_gateway):
    gateway = start_gateway(
        inference.url, rate_limit_per_minute=1, rate_limit_burst=2, trust_forwarded_for=True
    )
    # The client writes any first entry it likes; the proxy appends the address it really saw.
    statuses = [
        predict(gateway.url, {"X-Forwarded-For": f"198.51.100.{n}, 10.0.0.1"}).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 429, 429]
    # A second header line from the client counts as earlier entries of the same list.
    spoofed_lines = httpx.post(
        f"{gateway.url}/api/v1/predictions",
        files={"file": ("a.png", png_bytes(64))},
        headers=[("X-Forwarded-For", "198.51.100.99"), ("X-Forwarded-For", "10.0.0.1")],
        timeout=30,
    )
    assert spoofed_lines.status_code == 429
    # Another address seen by the proxy is another client.
    assert predict(gateway.url, {"X-Forwarded-For": "198.51.100.1, 10.0.0.2"}).status_code == 200


def test_two_trusted_hops_take_the_second_entry_from_the_right(inference, start_gateway):
    gateway = start_gateway(
        inference.url,
        rate_limit_per_minute=1,
        rate_limit_burst=1,
        trust_forwarded_for=True,
        trusted_proxy_hops=2,
    )

    # client's own entry, the client as seen by the CDN, the CDN as seen by the ingress
    def status(forwarded_for: str) -> int:
        return predict(gateway.url, {"X-Forwarded-For": forwarded_for}).status_code

    assert status("1.1.1.1, 10.0.0.7, 10.9.9.9") == 200
    assert status("2.2.2.2, 10.0.0.7, 10.9.9.9") == 429
    assert status("1.1.1.1, 10.0.0.8, 10.9.9.9") == 200


@pytest.mark.parametrize(
    ("lines", "hops", "expected"),
    [
        (["203.0.113.9, 10.0.0.1"], 1, "10.0.0.1"),
        (["203.0.113.9, 10.0.0.1"], 2, "203.0.113.9"),
        (["203.0.113.9", "10.0.0.1, 10.0.0.2"], 2, "10.0.0.1"),
        (["10.0.0.1"], 2, None),  # fewer entries than proxies: the connection decides
        ([], 1, None),
        ([" "], 1, None),
    ],
)
def test_forwarded_client_counts_hops_from_the_right(lines, hops, expected):
    assert forwarded_client(lines, hops) == expected


def test_upload_over_the_limit_is_refused_by_its_declared_length(http):
    big = b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024)
    response = http.post("/api/v1/predictions", files={"file": ("big.png", big)})
    assert response.status_code == 413
    body = response.json()["error"]
    assert body["code"] == "upload_too_large" and "2,097,152 bytes" in body["message"]


def raw_request(port: int, head: bytes, body_chunks, read_after: int) -> bytes:
    """Send ``head`` then body chunks; stop sending after ``read_after`` chunks and read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        for index, chunk in enumerate(body_chunks):
            if index == read_after:
                break
            sock.sendall(chunk)
        # The body is left unfinished: the answer must come anyway.
        answer = b""
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
        return answer


def test_declared_huge_upload_is_refused_before_the_body_is_sent(gateway):
    head = (
        b"POST /api/v1/predictions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 10000000000\r\n\r\n"
    )
    answer = raw_request(gateway.port, head, [], read_after=0)  # not one body byte sent
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"upload_too_large"' in answer


def test_chunked_upload_is_refused_once_it_passes_the_limit(gateway):
    head = (
        b"POST /api/v1/predictions HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    megabyte = bytes(1024 * 1024)

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    # 3 MiB sent of a body that never ends: the answer comes without the rest.
    chunks = [chunk(part)] + [chunk(megabyte)] * 3 + [chunk(megabyte)] * 1000
    answer = raw_request(gateway.port, head, chunks, read_after=4)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"upload_too_large"' in answer


def test_security_headers_on_page_and_api(http):
    page = http.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in page.headers
    api = http.get("/api/v1/model")
    assert api.headers["cache-control"] == "no-store"


def test_hsts_when_configured(inference, start_gateway):
    gateway = start_gateway(inference.url, hsts_seconds=31536000)
    response = httpx.get(f"{gateway.url}/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


@pytest.mark.parametrize("origin_allowed", [True, False])
def test_cors_only_for_configured_origins(inference, start_gateway, origin_allowed):
    gateway = start_gateway(inference.url, cors_allow_origins=["https://viewer.example.org"])
    origin = "https://viewer.example.org" if origin_allowed else "https://evil.example.com"
    preflight = httpx.options(
        f"{gateway.url}/api/v1/predictions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    if origin_allowed:
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
    else:
        assert "access-control-allow-origin" not in preflight.headers


def test_no_cors_headers_by_default(http):
    response = http.get("/healthz", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers
