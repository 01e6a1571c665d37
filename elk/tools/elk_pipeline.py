"""Runs the filter section of a Logstash pipeline on events, for checks where no Logstash runs.

Only what elk/logstash/pipeline uses is implemented (conditionals; json, de_dot, mutate copy /
replace / add_field / add_tag / remove_field, truncate), with Logstash's semantics for it; any
other plugin or option is refused, so the pipeline cannot grow past what this checks. Its
reading of the pipeline is parsed by lscl. A real Logstash remains the final word
(docs/observability.md says how to run the same events through one).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from lscl import lang
from lscl.parser import parse_lscl

SUPPORTED_FILTERS = {
    "json": {"id", "source", "tag_on_failure"},
    "de_dot": {"id", "fields", "nested"},
    "mutate": {"id", "copy", "replace", "add_field", "add_tag", "remove_field"},
    "truncate": {"id", "fields", "length_bytes"},
}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_SPRINTF = re.compile(r"%\{([^}]+)\}")


class UnsupportedConfig(ValueError):
    """The pipeline uses something this simulator does not implement."""


def parse_reference(reference: str) -> list[str]:
    """``[a][b]`` -> ["a", "b"]; a bare name (``log.level``) is one top-level key."""
    reference = reference.strip()
    if reference.startswith("["):
        parts = re.findall(r"\[([^\]]+)\]", reference)
        if "".join(f"[{p}]" for p in parts) != reference:
            raise UnsupportedConfig(f"malformed field reference {reference!r}")
        return parts
    return [reference]


def get(event: Mapping, path: list[str]) -> object | None:
    node: object = event
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def has(event: Mapping, path: list[str]) -> bool:
    node: object = event
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def put(event: dict, path: list[str], value: object) -> None:
    node = event
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


def remove(event: dict, path: list[str]) -> None:
    parent = get(event, path[:-1]) if len(path) > 1 else event
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


@dataclass
class Pipeline:
    """One pipeline file: its inputs' decorations and its filter section."""

    path: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tree = parse_lscl(self.path.read_text())
        sections = {block.name: block for block in self.tree}
        self.filters = sections["filter"].content if "filter" in sections else []
        self.inputs = sections["input"].content if "input" in sections else []
        self.outputs = sections["output"].content if "output" in sections else []
        for block in self.plugin_blocks(self.filters):
            allowed = SUPPORTED_FILTERS.get(block.name)
            if allowed is None:
                raise UnsupportedConfig(f"filter {block.name!r} is not simulated")
            for attribute in block.content:
                if attribute.name not in allowed:
                    raise UnsupportedConfig(f"{block.name} option {attribute.name!r}")

    # --- reading the configuration ------------------------------------------------------------
    @staticmethod
    def plugin_blocks(content: list) -> Iterator[lang.LsclBlock]:
        """Every plugin block, inside conditionals too."""
        for item in content:
            if isinstance(item, lang.LsclBlock):
                yield item
            elif isinstance(item, lang.LsclConditions):
                for _condition, body in item.conditions:
                    yield from Pipeline.plugin_blocks(body)
                if item.default:
                    yield from Pipeline.plugin_blocks(item.default)

    @staticmethod
    def options(block: lang.LsclBlock) -> dict[str, object]:
        return {attribute.name: attribute.content for attribute in block.content}

    def input_options(self, plugin: str) -> dict[str, object]:
        for block in self.inputs:
            if block.name == plugin:
                return self.options(block)
        raise KeyError(f"no {plugin} input")

    def conditions(self) -> Iterator[object]:
        def walk(content):
            for item in content:
                if isinstance(item, lang.LsclConditions):
                    for condition, body in item.conditions:
                        yield condition
                        yield from walk(body)
                    if item.default:
                        yield from walk(item.default)

        yield from walk(self.filters)

    # --- running it ------------------------------------------------------------------------------
    def run(self, event: Mapping, input_plugin: str) -> dict:
        """The document the output receives for ``event`` arriving through ``input_plugin``."""
        document = copy.deepcopy(dict(event))
        tags = self.input_options(input_plugin).get("tags")
        if tags:
            document["tags"] = list(document.get("tags", [])) + list(tags)
        self._run(self.filters, document)
        document.pop("@metadata", None)
        return document

    def _run(self, content: list, event: dict) -> None:
        for item in content:
            if isinstance(item, lang.LsclConditions):
                for condition, body in item.conditions:
                    if self._true(condition, event):
                        self._run(body, event)
                        break
                else:
                    if item.default:
                        self._run(item.default, event)
            else:
                getattr(self, f"_filter_{item.name}")(self.options(item), event)

    def _expand(self, value: object, event: Mapping) -> object:
        if isinstance(value, list):
            return [self._expand(v, event) for v in value]
        if not isinstance(value, str):
            return value
        value = _ENV.sub(lambda m: self.env.get(m[1], os.environ.get(m[1], m[2] or "")), value)
        return _SPRINTF.sub(lambda m: str(get(event, parse_reference(m[1])) or ""), value)

    def _filter_json(self, options: dict, event: dict) -> None:
        text = get(event, parse_reference(options["source"]))
        try:
            parsed = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            tags = options.get("tag_on_failure", ["_jsonparsefailure"])
            event["tags"] = list(event.get("tags", [])) + list(tags)
            return
        event.update(parsed)  # no target: each top-level key replaces the event's

    def _filter_de_dot(self, options: dict, event: dict) -> None:
        for name in options.get("fields", []):
            if name in event and "." in name:
                value = event.pop(name)
                if str(options.get("nested", "false")).lower() == "true":
                    put(event, name.split("."), value)
                else:
                    event[name.replace(".", "_")] = value

    def _filter_mutate(self, options: dict, event: dict) -> None:
        # Logstash's order inside one mutate: replace before copy; then add_field, add_tag,
        # remove_field (the common options, applied once the filter succeeded).
        for target, value in options.get("replace", {}).items():
            put(event, parse_reference(target), self._expand(value, event))
        for source, target in options.get("copy", {}).items():
            source_path = parse_reference(source)
            if has(event, source_path):
                put(event, parse_reference(target), copy.deepcopy(get(event, source_path)))
        for target, value in options.get("add_field", {}).items():
            path, value = parse_reference(target), self._expand(value, event)
            if has(event, path):
                current = get(event, path)
                put(event, path, [*(current if isinstance(current, list) else [current]), value])
            else:
                put(event, path, value)
        if "add_tag" in options:
            tags = list(event.get("tags", []))
            tags += [t for t in self._expand(options["add_tag"], event) if t not in tags]
            event["tags"] = tags
        for target in options.get("remove_field", []):
            remove(event, parse_reference(target))

    def _filter_truncate(self, options: dict, event: dict) -> None:
        limit = int(options["length_bytes"])
        for reference in options["fields"]:
            path = parse_reference(reference)
            value = get(event, path)
            if isinstance(value, str) and len(value.encode()) > limit:
                put(event, path, value.encode()[:limit].decode(errors="ignore"))

    # --- conditions ---------------------------------------------------------------------------
    def _value(self, rvalue: object, event: Mapping) -> object:
        if isinstance(rvalue, lang.LsclSelector):
            return get(event, rvalue.names)
        if isinstance(rvalue, Decimal):
            return float(rvalue)
        if isinstance(rvalue, list):
            return [self._value(v, event) for v in rvalue]
        if isinstance(rvalue, str):
            return self._expand(rvalue, event)
        if isinstance(rvalue, int):
            return rvalue
        raise UnsupportedConfig(f"condition value {rvalue!r}")

    def _true(self, condition: object, event: Mapping) -> bool:
        match condition:
            case lang.LsclAnd(conditions=parts):
                return all(self._true(part, event) for part in parts)
            case lang.LsclOr(conditions=parts):
                return any(self._true(part, event) for part in parts)
            case lang.LsclNot(condition=inner):
                return not self._true(inner, event)
            case lang.LsclIn(needle=needle, haystack=haystack):
                return _contains(self._value(haystack, event), self._value(needle, event))
            case lang.LsclNotIn(needle=needle, haystack=haystack):
                return not _contains(self._value(haystack, event), self._value(needle, event))
            case lang.LsclEqualTo(first=first, second=second):
                return self._value(first, event) == self._value(second, event)
            case lang.LsclNotEqualTo(first=first, second=second):
                return self._value(first, event) != self._value(second, event)
            case lang.LsclMatch(value=value, pattern=pattern):
                text = self._value(value, event)
                return isinstance(text, str) and pattern.search(text) is not None
            case lang.LsclGreaterThanOrEqualTo(first=first, second=second):
                return _compare(self._value(first, event), self._value(second, event), ">=")
            case lang.LsclGreaterThan(first=first, second=second):
                return _compare(self._value(first, event), self._value(second, event), ">")
            case lang.LsclLessThan(first=first, second=second):
                return _compare(self._value(first, event), self._value(second, event), "<")
            case lang.LsclLessThanOrEqualTo(first=first, second=second):
                return _compare(self._value(first, event), self._value(second, event), "<=")
            case lang.LsclSelector():
                value = self._value(condition, event)
                return value is not None and value is not False
        raise UnsupportedConfig(f"condition {condition!r}")


def _contains(haystack: object, needle: object) -> bool:
    if isinstance(haystack, list):
        return needle in haystack
    if isinstance(haystack, str) and isinstance(needle, str):
        return needle in haystack
    return False


def _compare(first: object, second: object, operator: str) -> bool:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (first, second)):
        return False
    return {
        ">=": first >= second,
        ">": first > second,
        "<": first < second,
        "<=": first <= second,
    }[operator]


def field_reads(pipeline: Pipeline) -> set[str]:
    """Flat names of the fields the filters read (conditions, copy sources, decoded fields)."""
    reads: set[str] = set()

    def selectors(node: object) -> Iterator[list[str]]:
        if isinstance(node, lang.LsclSelector):
            yield node.names
        elif isinstance(node, list):
            for item in node:
                yield from selectors(item)
        elif hasattr(node, "__dict__") and not isinstance(node, str | int | Decimal):
            for value in vars(node).values():
                yield from selectors(value)

    for condition in pipeline.conditions():
        reads.update(".".join(names) for names in selectors(condition))
    for block in pipeline.plugin_blocks(pipeline.filters):
        options = pipeline.options(block)
        if block.name == "mutate":
            reads.update(".".join(parse_reference(s)) for s in options.get("copy", {}))
        elif block.name == "json":
            reads.add(".".join(parse_reference(options["source"])))
        elif block.name in ("truncate",):
            reads.update(".".join(parse_reference(f)) for f in options["fields"])
    return {name for name in reads if not name.startswith("@metadata")}


def field_writes(pipeline: Pipeline) -> set[str]:
    """Flat names of the fields the filters set (replace, copy and add_field targets)."""
    writes: set[str] = set()
    for block in pipeline.plugin_blocks(pipeline.filters):
        options = pipeline.options(block)
        if block.name == "mutate":
            targets = [*options.get("replace", {}), *options.get("add_field", {})]
            targets += list(options.get("copy", {}).values())
            writes.update(".".join(parse_reference(t)) for t in targets)
    return {name for name in writes if not name.startswith("@metadata")}
