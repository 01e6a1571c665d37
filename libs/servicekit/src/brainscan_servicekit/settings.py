"""What every service's settings share: documented fields, unknown variables ignored, a log level.

Each service subclasses ``ServiceSettings`` with its own ``env_prefix`` (pydantic merges the
subclass's ``model_config`` into this one).
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ServiceSettings(BaseSettings):
    """The base of GatewaySettings, InferenceSettings and ModelSyncSettings."""

    model_config = SettingsConfigDict(
        # Each field's docstring is its description (in /docs and the docs' tables).
        use_attribute_docstrings=True,
        # Fields such as model_name are the domain's words, not pydantic's namespace.
        protected_namespaces=(),
        # One environment holds every service's variables (compose, the chart's ConfigMaps).
        extra="ignore",
    )

    log_level: str = "INFO"
    """Log level of the service's ECS JSON logs (DEBUG, INFO, WARNING, ERROR)."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r} (use one of {', '.join(LOG_LEVELS)})")
        return level
