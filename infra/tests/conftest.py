"""Fixtures for the offline checks of the images and the compose file: parsed Dockerfiles, the
compose document, the lock file. Nothing here needs podman."""

from __future__ import annotations

import tomllib

import pytest
import yaml
from infra_dockerfiles import DOCKERFILES, REPO, Dockerfile


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, Dockerfile]:
    return {name: Dockerfile.parse(REPO / path) for name, path in DOCKERFILES.items()}


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def uv_lock() -> dict:
    return tomllib.loads((REPO / "uv.lock").read_text())


@pytest.fixture(scope="session")
def workspace_members() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    return root["tool"]["uv"]["workspace"]["members"]
