"""Fixtures shared by servicekit's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the services' loop), via anyio's pytest plugin."""
    return "asyncio"
