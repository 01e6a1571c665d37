"""Hooks for every test run in the repository."""

from __future__ import annotations

import signal


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config) -> None:
    # A CI timeout or `kill` sends SIGTERM, which would end pytest without running finalizers and
    # leave the servers tests started (MLflow, the services, compose projects) running. As
    # KeyboardInterrupt, pytest stops the way Ctrl-C stops it: fixtures are torn down.
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
