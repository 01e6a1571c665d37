"""Repository endpoints: the index, and "reload from the source now" with refusals explained."""

from __future__ import annotations

import httpx
import pytest

TOKEN = "repository-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def manual_server(serve, settings_factory, model_dir):
    """A service that only looks at its directory when told to (polling off)."""
    return serve(
        settings_factory(
            model_dir, model_poll_interval=0, repository_api=True, repository_token=TOKEN
        )
    )


def post(url: str, headers: dict[str, str] = AUTH) -> httpx.Response:
    return httpx.post(url, headers=headers)


def index(server) -> list[dict]:
    return post(f"{server.url}/v2/repository/index").json()


def test_index_shows_the_model_served(manual_server) -> None:
    assert index(manual_server) == [
        {"name": "tiny", "version": "1", "state": "READY", "reason": ""}
    ]


def test_load_picks_up_a_new_version(manual_server, model_dir, package_factory) -> None:
    url = f"{manual_server.url}/v2/repository/models/tiny/load"
    assert post(url).json() == {"name": "tiny", "version": "1", "state": "unchanged"}
    package_factory(model_dir / "2", seed=7)
    assert httpx.get(f"{manual_server.url}/v2/models/tiny").json()["versions"] == ["1"]
    response = post(url)
    assert response.status_code == 200
    assert response.json() == {"name": "tiny", "version": "2", "state": "loaded"}
    assert httpx.get(f"{manual_server.url}/v2/models/tiny").json()["versions"] == ["2"]


def test_a_refused_load_says_why_and_the_old_model_keeps_serving(
    manual_server, model_dir, package_factory
) -> None:
    package_factory(model_dir / "2", num_outputs=3)
    response = post(f"{manual_server.url}/v2/repository/models/tiny/load")
    assert response.status_code == 400
    assert response.json()["code"] == "model_refused"
    assert "3 probability outputs" in response.json()["error"]
    assert "serving version 1" in response.json()["error"]  # the fallback, already serving
    served, refused = index(manual_server)
    assert served["version"] == "1" and served["state"] == "READY"
    assert refused["version"] == "2" and refused["state"] == "UNAVAILABLE"
    assert "3 probability outputs" in refused["reason"]
    assert httpx.get(f"{manual_server.url}/v2/models/tiny/ready").status_code == 200


def test_load_of_another_model_name_is_404(manual_server) -> None:
    response = post(f"{manual_server.url}/v2/repository/models/other/load")
    assert response.status_code == 404


def test_the_repository_api_is_off_by_default(serve, settings_factory, model_dir) -> None:
    server = serve(settings_factory(model_dir))
    for path in ("/v2/repository/index", "/v2/repository/models/tiny/load"):
        assert post(server.url + path).status_code == 404
    assert "model_repository" not in httpx.get(f"{server.url}/v2").json()["extensions"]


def test_when_on_it_is_listed_as_an_extension(manual_server) -> None:
    assert "model_repository" in httpx.get(f"{manual_server.url}/v2").json()["extensions"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-of-the-same-kind-0123456"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Repository-Token": TOKEN},
    ],
    ids=["none", "wrong", "longer", "no-scheme", "basic", "other-header"],
)
@pytest.mark.parametrize("path", ["/v2/repository/index", "/v2/repository/models/tiny/load"])
def test_without_the_token_it_is_401_and_nothing_is_loaded(
    manual_server, model_dir, package_factory, headers, path
) -> None:
    package_factory(model_dir / "2", seed=7)
    response = post(manual_server.url + path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == "unauthorized" and "Authorization: Bearer" in body["error"]
    assert body["request_id"]
    assert httpx.get(f"{manual_server.url}/v2/models/tiny").json()["versions"] == ["1"]
