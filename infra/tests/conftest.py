"""Fixtures for the offline checks of the images and the compose file: the parsed Dockerfile and
each component's image in it, the compose document, the lock file. Nothing here needs podman."""

from __future__ import annotations

import tomllib

import pytest
import yaml
from infra_dockerfiles import COMPONENTS, DOCKERFILE, REPO, Dockerfile, Image


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    return Dockerfile.parse(REPO / DOCKERFILE)


@pytest.fixture(scope="session")
def images(dockerfile) -> dict[str, Image]:
    return {component: dockerfile.image(component) for component in COMPONENTS}


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def uv_lock() -> dict:
    return tomllib.loads((REPO / "uv.lock").read_text())


@pytest.fixture(scope="session")
def workspace_members() -> list[str]:
    """The workspace's member folders, globs expanded as uv expands them."""
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    excluded = {p for pattern in workspace.get("exclude", []) for p in REPO.glob(pattern)}
    return sorted(
        path.relative_to(REPO).as_posix()
        for pattern in workspace["members"]
        for path in REPO.glob(pattern)
        if path not in excluded and (path / "pyproject.toml").is_file()
    )
