"""The settings base every service subclasses, and the uvicorn set-up every service runs with."""

import socket

import pytest
from brainscan_servicekit import ServiceSettings, serve, server_config
from pydantic_settings import SettingsConfigDict


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    model_name: str = "m"
    """The model."""


def test_a_subclass_keeps_the_shared_config_and_reads_its_own_prefix(monkeypatch):
    monkeypatch.setenv("DEMO_LOG_LEVEL", "debug")
    monkeypatch.setenv("DEMO_MODEL_NAME", "other")
    monkeypatch.setenv("DEMO_SOMETHING_ELSE", "ignored")  # extra="ignore"
    settings = DemoSettings()
    assert settings.log_level == "DEBUG" and settings.model_name == "other"
    assert DemoSettings.model_fields["model_name"].description == "The model."
    assert DemoSettings.model_fields["log_level"].description.startswith("Log level")


def test_an_unknown_log_level_is_refused_naming_the_known_ones(monkeypatch):
    monkeypatch.setenv("DEMO_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match=r"unknown log level 'loud' .*DEBUG, INFO"):
        DemoSettings()


def test_servers_keep_the_apps_logging_and_write_no_access_log_of_their_own():
    async def app(scope, receive, send):  # pragma: no cover - never called
        raise AssertionError

    config = server_config(app, port=8123, graceful_shutdown_seconds=5, ws="none")
    assert config.log_config is None and config.access_log is False
    assert (config.port, config.timeout_graceful_shutdown, config.ws) == (8123, 5, "none")


def test_a_server_that_cannot_bind_exits_with_uvicorns_startup_failure_status():
    async def app(scope, receive, send):  # pragma: no cover - never called
        raise AssertionError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exited:
            serve(app, host="127.0.0.1", port=taken.getsockname()[1], lifespan="off")
    assert exited.value.code == 3  # uvicorn.main.STARTUP_FAILURE, as `uvicorn.run` exits
