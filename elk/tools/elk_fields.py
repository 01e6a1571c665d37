"""The field catalogue (ECS + elk/schema/fields.yml) and checks of log events against it.

A log event is valid when each of its fields is an ECS field or a catalogued custom or
shipped field, and its JSON value is one Elasticsearch indexes as that field's type.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

ELK_DIR = Path(__file__).resolve().parents[1]
ECS_FIELDS = ELK_DIR / "schema" / "ecs_fields.json"
CUSTOM_FIELDS = ELK_DIR / "schema" / "fields.yml"

STRING_TYPES = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text"}
INTEGER_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
FLOAT_TYPES = {"float", "double", "half_float", "scaled_float"}
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    origin: str  # "ecs", "custom" or "shipped"
    array: bool = False


class Catalogue:
    """Looks fields up by their flat name; ``kubernetes.labels.*`` entries match any key below."""

    def __init__(self, fields: Mapping[str, Field]) -> None:
        self.fields = dict(fields)
        self.prefixes = {n[:-1]: f for n, f in fields.items() if n.endswith(".*")}
        self.objects = {n: f for n, f in fields.items() if f.type in ("object", "flattened")}

    @classmethod
    def load(cls) -> Catalogue:
        ecs = json.loads(ECS_FIELDS.read_text())
        fields: dict[str, Field] = {}
        for name, kind in ecs["fields"].items():
            array = isinstance(kind, list)
            fields[name] = Field(name, kind[0] if array else kind, "ecs", array)
        catalogue = yaml.safe_load(CUSTOM_FIELDS.read_text())
        for origin in ("custom", "shipped"):
            for name, spec in catalogue[origin].items():
                if name in fields:
                    raise ValueError(f"{name} is an ECS field: do not list it in fields.yml")
                fields[name] = Field(name, spec["type"], origin, bool(spec.get("array")))
        return cls(fields)

    @property
    def ecs_version(self) -> str:
        return json.loads(ECS_FIELDS.read_text())["ecs_version"]

    def custom(self) -> dict[str, Field]:
        return {n: f for n, f in self.fields.items() if f.origin == "custom"}

    def lookup(self, name: str) -> Field | None:
        if name in self.fields:
            return self.fields[name]
        for prefix, field in self.prefixes.items():
            if name.startswith(prefix):
                return field
        # A key below an ECS `object` field (labels.*) or inside a flattened one.
        for parent, field in self.objects.items():
            if name.startswith(parent + "."):
                return Field(name, "keyword" if field.type == "object" else "flattened", "ecs")
        return None


def flatten(event: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """(flat name, value) pairs: dotted keys ("log.level") and nested objects name alike."""
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, name + ".")
        else:
            yield name, value


def value_fits(kind: str, value: object) -> bool:
    """Would Elasticsearch index ``value`` (not null) as a field of type ``kind`` as it is?"""
    if kind in STRING_TYPES:
        return isinstance(value, str)
    if kind in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in FLOAT_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return isinstance(value, str) and _is_iso_date(value)
    if kind == "ip":
        return isinstance(value, str) and _is_ip(value)
    if kind in ("object", "flattened"):
        return isinstance(value, Mapping)
    if kind == "geo_point":
        return isinstance(value, Mapping | str | list)
    raise ValueError(f"no rule for Elasticsearch type {kind!r}")


def _is_iso_date(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_event(event: Mapping[str, object], catalogue: Catalogue) -> list[str]:
    """Every problem with one event, in words (an empty list: the event is valid)."""
    problems = []
    for name, value in flatten(event):
        field = catalogue.lookup(name)
        if field is None:
            problems.append(f"{name}: neither ECS nor listed in elk/schema/fields.yml")
            continue
        if value is None or value == {}:
            continue  # Elasticsearch indexes nothing for null
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v is not None and not value_fits(field.type, v)]
        if bad:
            problems.append(f"{name}: {bad[0]!r} is not a {field.type} ({field.origin} field)")
    return problems


def observed_types(events: list[Mapping[str, object]]) -> dict[str, set[str]]:
    """Flat field name -> JSON value types seen (str, int, float, bool, dict, list)."""
    seen: dict[str, set[str]] = {}
    for event in events:
        for name, value in flatten(event):
            if value is None:
                continue
            seen.setdefault(name, set()).add(type(value).__name__)
    return seen
