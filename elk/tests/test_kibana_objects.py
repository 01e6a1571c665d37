"""Kibana saved objects: the ndjson parses and matches its builder, every reference resolves to
an object in the file, and every field a panel uses exists with a type that suits its use."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
from elk_fields import NUMERIC_TYPES, flatten
from elk_inputs import ELK_DIR, SAVED_OBJECTS

KQL_FIELD = re.compile(r"([A-Za-z@][\w.@]*)\s*(?::|<=|>=|<|>)")
NUMERIC_OPERATIONS = {"percentile", "average", "sum", "min", "max", "median"}
# The dashboards the issue asks for, by the panel titles that show each.
REQUIRED_PANELS = {
    "API response times p50/p95": "Gateway response time p50 / p95",
    "total predictions": "Predictions",
    "predictions by class": "Predictions by class",
    "average confidence over time": "Average confidence over time",
    "count below threshold": "Below threshold",
    "error rate by service and status": "Error rate by service",
    "errors by service and status": "Errors by service and status",
    "model version timeline": "Model version timeline",
    "deployments and refusals": "Model version changes",
    "Jenkins builds": "Jenkins builds by result",
    "pod restarts and scaling events": "Pod restarts and scaling",
}


def builder():
    spec = importlib.util.spec_from_file_location(
        "elk_build_saved_objects", ELK_DIR / "kibana" / "build_saved_objects.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lens_fields(obj: dict) -> list[tuple[str, str]]:
    """(field, operation) of every column of a Lens object, and the fields of its queries."""
    state = obj["attributes"]["state"]
    used = []
    for layer in state["datasourceStates"]["formBased"]["layers"].values():
        for column in layer["columns"].values():
            if column.get("sourceField") and column["sourceField"] != "___records___":
                used.append((column["sourceField"], column["operationType"]))
            for item in column.get("params", {}).get("filters", []):
                used += [(f, "query") for f in KQL_FIELD.findall(item["input"]["query"])]
    used += [(f, "query") for f in KQL_FIELD.findall(state["query"]["query"])]
    return used


def search_fields(obj: dict) -> list[tuple[str, str]]:
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    used = [(f, "column") for f in obj["attributes"]["columns"]]
    return used + [(f, "query") for f in KQL_FIELD.findall(source["query"]["query"])]


def all_fields(saved_objects: list[dict]) -> list[tuple[str, str, str]]:
    used = []
    for obj in saved_objects:
        if obj["type"] == "lens":
            used += [(obj["id"], *pair) for pair in lens_fields(obj)]
        elif obj["type"] == "search":
            used += [(obj["id"], *pair) for pair in search_fields(obj)]
        elif obj["type"] == "index-pattern":
            formats = json.loads(obj["attributes"]["fieldFormatMap"])
            used += [(obj["id"], name, "format") for name in formats]
    return used


def test_every_line_is_a_saved_object(saved_objects):
    assert SAVED_OBJECTS.read_text().endswith("\n")
    for obj in saved_objects:
        assert {"id", "type", "attributes", "references"} <= set(obj)
        assert obj["type"] in {"index-pattern", "lens", "search", "dashboard"}
        assert obj["coreMigrationVersion"] == "8.8.0"
    ids = [obj["id"] for obj in saved_objects]
    assert len(ids) == len(set(ids))


def test_the_file_is_what_the_builder_writes():
    assert SAVED_OBJECTS.read_text() == builder().render(), (
        "run python elk/kibana/build_saved_objects.py"
    )


def test_the_data_view_covers_the_brainscan_data_streams(saved_objects):
    (view,) = [obj for obj in saved_objects if obj["type"] == "index-pattern"]
    pattern = view["attributes"]["title"]
    template = json.loads((ELK_DIR / "elasticsearch" / "index-template.json").read_text())
    regex = pattern.replace(".", r"\.").replace("*", ".*")
    for stream in ("logs-brainscan.gateway-default", "logs-brainscan.ci-default"):
        assert re.fullmatch(regex, stream)
    assert template["index_patterns"] == ["logs-brainscan.*-*"]
    assert view["attributes"]["timeFieldName"] == "@timestamp"


def test_every_reference_resolves(saved_objects):
    by_id = {obj["id"]: obj for obj in saved_objects}
    for obj in saved_objects:
        for reference in obj["references"]:
            target = by_id.get(reference["id"])
            assert target is not None, f"{obj['id']} references missing {reference['id']}"
            assert target["type"] == reference["type"], reference
        if obj["type"] == "lens":
            layers = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
            names = {r["name"] for r in obj["references"]}
            assert {f"indexpattern-datasource-layer-{layer}" for layer in layers} <= names
        if obj["type"] == "dashboard":
            panels = json.loads(obj["attributes"]["panelsJSON"])
            names = {r["name"]: r for r in obj["references"]}
            for panel in panels:
                reference = names[f"{panel['panelIndex']}:{panel['panelRefName']}"]
                assert reference["type"] == panel["type"]
                grid = panel["gridData"]
                assert grid["x"] + grid["w"] <= 48 and grid["i"] == panel["panelIndex"]


def test_every_lens_column_the_visualization_uses_exists(saved_objects):
    for obj in saved_objects:
        if obj["type"] != "lens":
            continue
        state = obj["attributes"]["state"]
        (layer,) = state["datasourceStates"]["formBased"]["layers"].values()
        visualization = json.dumps(state["visualization"])
        for column in layer["columns"]:
            assert f'"{column}"' in visualization, f"{obj['id']}: column {column} is not shown"
        for column in layer["columns"].values():
            order = column.get("params", {}).get("orderBy", {}).get("columnId")
            assert order is None or order in layer["columns"], obj["id"]


def test_dashboards_show_what_the_issue_asks_for(saved_objects):
    titles = {obj["attributes"]["title"] for obj in saved_objects if obj["type"] != "dashboard"}
    on_dashboards = {
        ref["id"]
        for obj in saved_objects
        if obj["type"] == "dashboard"
        for ref in obj["references"]
    }
    shown = {obj["attributes"]["title"] for obj in saved_objects if obj["id"] in on_dashboards}
    for need, title in REQUIRED_PANELS.items():
        assert title in titles and title in shown, need


def test_every_field_used_is_mapped_or_ecs(saved_objects, catalogue):
    for object_id, name, use in all_fields(saved_objects):
        field = catalogue.lookup(name)
        assert field is not None, f"{object_id} uses unknown field {name}"
        if use in NUMERIC_OPERATIONS:
            assert field.type in NUMERIC_TYPES, f"{object_id}: {use} of {field.type} {name}"
        if use == "date_histogram":
            assert field.type == "date", name


@pytest.mark.slow
def test_every_field_used_occurs_in_real_documents_with_a_fitting_value(
    saved_objects, documents, catalogue
):
    values: dict[str, list] = {}
    for document in documents:
        for name, value in flatten(document):
            values.setdefault(name, []).append(value)
    for object_id, name, use in all_fields(saved_objects):
        assert name in values, f"{object_id} uses {name}, which no document carries"
        if use in NUMERIC_OPERATIONS:
            assert all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values[name]
            ), f"{object_id}: {name} is not always a number"


@pytest.mark.slow
def test_every_query_value_matches_what_documents_hold(saved_objects, documents):
    """`field : "value"` in a panel's query must match some document, or the panel stays empty."""
    quoted = re.compile(r'([\w.]+)\s*:\s*\(?("[^"]+"(?:\s+or\s+"[^"]+")*)\)?')
    values: dict[str, set] = {}
    for document in documents:
        for name, value in flatten(document):
            values.setdefault(name, set()).add(json.dumps(value) if value is not None else "")
    queries = []
    for obj in saved_objects:
        if obj["type"] == "lens":
            queries.append((obj["id"], obj["attributes"]["state"]["query"]["query"]))
        elif obj["type"] == "search":
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            queries.append((obj["id"], source["query"]["query"]))
    for object_id, query in queries:
        for name, alternatives in quoted.findall(query):
            for literal in re.findall(r'"[^"]+"', alternatives):
                assert literal in values.get(name, set()), f"{object_id}: {name} : {literal}"
