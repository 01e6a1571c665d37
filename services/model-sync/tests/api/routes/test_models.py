"""The models API over real HTTP: current version, long poll, artifact + ETag, history, sync."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import httpx
import pytest
from brainscan_manifest import MODEL_FILE
from modelsync_packages import CONFUSED, good_package
from modelsync_servers import published_version, start_modelsync, wait_until
from structlog.testing import capture_logs


@pytest.fixture
def synced(registry, servers, tmp_path):
    """model-sync (polling only, every 60 s) serving version 1 of a fresh registered model."""
    package = good_package(tmp_path / "v1", registry.name)
    registry.promote(registry.register(package))
    modelsync = start_modelsync(
        servers,
        registry.client.tracking_uri,
        registry.name,
        tmp_path / "cache",
        webhooks=False,
        long_poll_max_wait=20,
    )
    wait_until(lambda: published_version(modelsync, registry.name) == "1", what="v1 published")
    modelsync.package = package
    return modelsync


def get(server, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=30, **kwargs)


def test_the_current_version_comes_with_its_manifest(synced, registry) -> None:
    body = get(synced, f"/v1/models/{registry.name}").json()
    assert body["name"] == registry.name and body["version"] == "1"
    assert body["manifest"]["version"] == "1" and body["manifest"]["name"] == registry.name
    assert body["sha256"] == body["manifest"]["onnx_sha256"]
    assert body["status"] == "ok" and body["degraded_reason"] is None
    assert body["selected_by"] == "alias production"
    assert body["artifact_url"] == f"/v1/models/{registry.name}/versions/1/artifact"
    assert get(synced, "/v1/models").json() == {
        "models": [{"name": registry.name, "version": "1", "status": "ok"}]
    }


def test_a_long_poll_answers_when_another_version_is_published(synced, registry, tmp_path) -> None:
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            get(synced, f"/v1/models/{registry.name}", params={"wait": 20, "known": "1"})
        )
    )
    poll.start()
    v2 = registry.register(good_package(tmp_path / "v2", registry.name, CONFUSED))
    registry.promote(v2)
    assert poll.is_alive()  # held open: version 1 is still the one published
    result = httpx.post(f"{synced.url}/v1/models/{registry.name}/sync", timeout=60).json()
    assert result["outcome"] == "published" and result["trigger"] == "manual"
    poll.join(30)
    assert answers[0].status_code == 200 and answers[0].json()["version"] == v2


class ErrorRecords(logging.Handler):
    """The standard library's error records (uvicorn's, on a cancelled request) while attached."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_open_long_poll_is_answered_when_the_server_stops(synced, registry) -> None:
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            get(synced, f"/v1/models/{registry.name}", params={"wait": 20, "known": "1"})
        )
    )
    publication = synced.app.state.syncer.publications[registry.name]
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    try:
        with capture_logs() as events:  # model-sync's own events (the unhandled-error log)
            poll.start()
            wait_until(lambda: publication.waiting == 1, what="the long poll waiting")
            stopping = time.monotonic()
            synced.stop()
            poll.join(30)
    finally:
        logging.getLogger().removeHandler(errors)
    # Answered with what is served, at once: not cut at the graceful timeout (2 s here).
    assert answers and answers[0].status_code == 200 and answers[0].json()["version"] == "1"
    assert time.monotonic() - stopping < 2
    assert [r.getMessage() for r in errors.records] == []
    assert [e for e in events if e["log_level"] in ("error", "critical")] == []


def test_a_long_poll_without_change_returns_the_same_version_at_the_cap(
    registry, servers, tmp_path
) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    modelsync = start_modelsync(
        servers,
        registry.client.tracking_uri,
        registry.name,
        tmp_path / "cache",
        webhooks=False,
        long_poll_max_wait=0.3,
    )
    wait_until(lambda: published_version(modelsync, registry.name) == "1")
    response = get(modelsync, f"/v1/models/{registry.name}", params={"wait": 3600, "known": "1"})
    assert response.status_code == 200 and response.json()["version"] == "1"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [({"wait": "-1"}, "wait"), ({"wait": "soon"}, "wait"), ({"known": "x" * 65}, "known")],
)
def test_bad_long_poll_parameters_are_400(synced, registry, params, fragment) -> None:
    response = get(synced, f"/v1/models/{registry.name}", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_an_unfollowed_model_is_404_naming_the_followed_ones(synced, registry) -> None:
    response = get(synced, "/v1/models/other-model", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "model_not_followed",
            "message": f"model-sync does not follow a model named 'other-model'; it follows:"
            f" {registry.name}",
            "request_id": "req-42",
        }
    }


def test_unknown_paths_and_methods_get_the_error_shape(synced, registry) -> None:
    missing = get(synced, "/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = httpx.delete(f"{synced.url}/v1/models/{registry.name}")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_before_any_version_the_model_is_503_with_the_reason(registry, servers, tmp_path) -> None:
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache", webhooks=False
    )
    wait_until(lambda: get(modelsync, f"/v1/models/{registry.name}/history").json()["entries"])
    response = get(modelsync, f"/v1/models/{registry.name}")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["code"] == "model_not_available"
    assert "no alias 'production'" in error["message"]


def test_the_artifact_is_the_onnx_file_with_its_sha256_as_etag(synced, registry) -> None:
    path = f"/v1/models/{registry.name}/versions/1/artifact"
    response = get(synced, path)
    expected = (synced.package / MODEL_FILE).read_bytes()
    sha256 = hashlib.sha256(expected).hexdigest()
    assert response.status_code == 200 and response.content == expected
    assert response.headers["etag"] == f'"{sha256}"'
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-model-version"] == "1"

    for etag in (f'"{sha256}"', sha256, f'W/"{sha256}"', f'"other", "{sha256}"', "*"):
        cached = get(synced, path, headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
    assert get(synced, path, headers={"If-None-Match": '"other"'}).status_code == 200
    head = httpx.head(f"{synced.url}{path}")
    assert head.status_code == 200 and head.headers["etag"] == f'"{sha256}"'


@pytest.mark.parametrize("version", ["99", "..", "1.x", "%2E%2E"])
def test_a_version_that_is_not_cached_is_404(synced, registry, version) -> None:
    response = get(synced, f"/v1/models/{registry.name}/versions/{version}/artifact")
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("version_not_found", "not_found")


def test_an_older_cached_version_can_still_be_fetched(synced, registry, tmp_path) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v2", registry.name, CONFUSED)))
    httpx.post(f"{synced.url}/v1/models/{registry.name}/sync", timeout=60)
    old = get(synced, f"/v1/models/{registry.name}/versions/1").json()
    assert old["served"] is False and old["manifest"]["version"] == "1"
    current = get(synced, f"/v1/models/{registry.name}/versions/2").json()
    assert current["served"] is True
    artifact = get(synced, f"/v1/models/{registry.name}/versions/1/artifact")
    assert artifact.content == (synced.package / MODEL_FILE).read_bytes()


def test_the_history_lists_changes_newest_first(synced, registry, tmp_path) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v2", registry.name, CONFUSED)))
    httpx.post(f"{synced.url}/v1/models/{registry.name}/sync", timeout=60)
    body = get(synced, f"/v1/models/{registry.name}/history").json()
    assert body["current_version"] == "2"
    assert [(e["version"], e["trigger"], e["outcome"]) for e in body["entries"]] == [
        ("2", "manual", "published"),
        ("1", "startup", "published"),
    ]
    assert body["entries"][0]["previous_version"] == "1" and body["entries"][0]["at"]
    limited = get(synced, f"/v1/models/{registry.name}/history", params={"limit": 1}).json()
    assert len(limited["entries"]) == 1


def test_a_manual_sync_says_unchanged_when_nothing_moved(synced, registry) -> None:
    response = httpx.post(f"{synced.url}/v1/models/{registry.name}/sync", timeout=60)
    assert response.status_code == 200
    assert response.json() == {
        "model": registry.name,
        "trigger": "manual",
        "outcome": "unchanged",
        "version": "1",
        "reason": "",
    }


def test_the_challenger_has_its_own_resource_and_long_poll(synced, registry, tmp_path) -> None:
    name = registry.name
    absent = get(synced, f"/v1/models/{name}/challenger")
    assert absent.status_code == 404 and absent.json()["error"]["code"] == "no_challenger"
    assert "alias 'challenger' is not set" in absent.json()["error"]["message"]

    answers: list[httpx.Response] = []

    def long_poll(**params) -> threading.Thread:
        poll = threading.Thread(
            target=lambda: answers.append(
                get(synced, f"/v1/models/{name}/challenger", params={"wait": 20, **params})
            )
        )
        poll.start()
        return poll

    poll = long_poll()  # waits for a challenger to appear
    v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
    registry.challenge(v2)
    assert poll.is_alive()
    httpx.post(f"{synced.url}/v1/models/{name}/sync", timeout=60)  # checks both aliases
    poll.join(30)
    body = answers.pop().json()
    assert (body["alias"], body["version"], body["selected_by"]) == (
        "challenger", v2, "alias challenger"
    )  # fmt: skip
    served = get(synced, f"/v1/models/{name}").json()
    assert (served["version"], served["alias"], served["challenger_version"]) == (
        "1", "production", v2
    )  # fmt: skip
    artifact = get(synced, body["artifact_url"])
    assert hashlib.sha256(artifact.content).hexdigest() == body["sha256"]

    poll = long_poll(known=v2)  # answered when the challenger is withdrawn
    registry.remove_challenger()
    httpx.post(f"{synced.url}/v1/models/{name}/sync", timeout=60)
    poll.join(30)
    assert answers.pop().status_code == 404
    history = get(synced, f"/v1/models/{name}/history").json()
    assert history["challenger_version"] is None
    assert [(e["alias"], e["version"], e["outcome"]) for e in history["entries"]][:2] == [
        ("challenger", None, "withdrawn"),
        ("challenger", v2, "published"),
    ]
