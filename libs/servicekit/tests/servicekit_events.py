"""Reading the ECS JSON events a test captured from stdout."""

from __future__ import annotations

import json


def log_events(text: str) -> list[dict]:
    """The JSON events of captured stdout, in order."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
