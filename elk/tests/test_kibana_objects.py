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
    "out-of-distribution rate by model version": "Out-of-distribution rate by model version",
    "count not assessed (out of distribution)": "Not assessed (out of distribution)",
    "shadow agreement over time by challenger version": "Challenger agreement over time",
    "shadow confusion matrix of labels": "Champion label by challenger label",
    "shadow latency, champion vs challenger": "Inference latency p95 (ms): champion vs challenger",
}
OOD_PANELS = {
    "brainscan-ood-rate-by-model-version",
    "brainscan-predictions-not-assessed",
    "brainscan-ood-reasons",
}
SHADOW_PANELS = {
    "brainscan-shadow-pairs",
    "brainscan-shadow-agreement-by-version",
    "brainscan-shadow-agreement-over-time",
    "brainscan-shadow-confusion",
    "brainscan-shadow-latency",
}
SHADOW_PAIRS = 'event.action : "shadow-compare" and event.outcome : "success"'
AGREEMENT = "count(kql='brainscan.shadow.agreed : true') / count()"
FORMULA_COUNT = re.compile(r"count\((?:kql='([^']*)')?\)")


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
            if "filter" in column:
                used += [(f, "query") for f in KQL_FIELD.findall(column["filter"]["query"])]
    used += [(f, "query") for f in KQL_FIELD.findall(state["query"]["query"])]
    return used


def layer_columns(obj: dict) -> dict[str, dict]:
    (layer,) = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
    return layer["columns"]


def dashboard_panels(obj: dict) -> dict[str, dict]:
    """Saved object id -> grid position of each panel of a dashboard."""
    by_name = {ref["name"]: ref["id"] for ref in obj["references"]}
    return {
        by_name[f"{panel['panelIndex']}:{panel['panelRefName']}"]: panel["gridData"]
        for panel in json.loads(obj["attributes"]["panelsJSON"])
    }


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
        used = {column for column in layer["columns"] if f'"{column}"' in visualization}
        pending = list(used)
        while pending:
            for reference in layer["columns"][pending.pop()].get("references", []):
                assert reference in layer["columns"], f"{obj['id']}: no column {reference}"
                if reference not in used:
                    used.add(reference)
                    pending.append(reference)
        unused = set(layer["columns"]) - used
        assert not unused, f"{obj['id']}: columns {unused} are neither shown nor referenced"
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


def test_formula_columns_carry_the_helper_columns_kibana_computes(saved_objects):
    """Kibana 8 runs a saved formula through its helper columns, not its text: they must agree."""
    formulas = 0
    for obj in saved_objects:
        if obj["type"] != "lens":
            continue
        columns = layer_columns(obj)
        for column in columns.values():
            if column["operationType"] != "formula":
                continue
            formulas += 1
            text = column["params"]["formula"]
            assert column["params"]["isFormulaBroken"] is False
            (math_id,) = column["references"]
            math = columns[math_id]
            ast = math["params"]["tinymathAst"]
            assert math["operationType"] == "math" and ast["text"] == text, obj["id"]
            assert ast["location"] == {"min": 0, "max": len(text)}, obj["id"]
            assert ast["args"] == math["references"], obj["id"]
            counts = [columns[arg] for arg in ast["args"]]
            assert [c["operationType"] for c in counts] == ["count"] * len(counts), obj["id"]
            assert [c.get("filter", {}).get("query", "") for c in counts] == (
                FORMULA_COUNT.findall(text)
            ), f"{obj['id']}: the helper counts are not the formula's"
    assert formulas, "no formula column to check"


def test_the_ood_rate_is_the_share_of_checked_predictions_out_of_distribution(saved_objects):
    (panel,) = [o for o in saved_objects if o["id"] == "brainscan-ood-rate-by-model-version"]
    state = panel["attributes"]["state"]
    # Only predictions the guard checked: a model without a reference logs no verdict.
    assert state["query"]["query"].endswith(" and prediction.in_distribution : *")
    assert 'event.action : "predict"' in state["query"]["query"]
    (layer,) = state["visualization"]["layers"]
    columns = layer_columns(panel)
    assert columns[layer["xAccessor"]]["operationType"] == "date_histogram"
    assert columns[layer["splitAccessor"]]["sourceField"] == "model.version"
    (rate,) = layer["accessors"]
    assert columns[rate]["params"]["formula"] == (
        "count(kql='prediction.in_distribution : false') / count()"
    )
    assert columns[rate]["params"]["format"]["id"] == "percent"


def test_the_ood_panels_sit_on_the_predictions_dashboard(saved_objects, catalogue):
    (board,) = [o for o in saved_objects if o["id"] == "brainscan-predictions"]
    assert set(dashboard_panels(board)) >= OOD_PANELS
    ood_fields = {"prediction.in_distribution", "prediction.assessed", "prediction.ood_reason"}
    panels = [obj for obj in saved_objects if obj["id"] in OOD_PANELS]
    assert {name for obj in panels for name, _ in lens_fields(obj)} >= ood_fields
    for name in ood_fields:
        assert catalogue.lookup(name).origin == "custom", name


def test_dashboard_panels_fit_the_grid_without_overlapping(saved_objects):
    for obj in saved_objects:
        if obj["type"] != "dashboard":
            continue
        grid = list(dashboard_panels(obj).items())
        for panel_id, cell in grid:
            assert cell["x"] >= 0 and cell["y"] >= 0 and cell["w"] > 0 and cell["h"] > 0
            assert cell["x"] + cell["w"] <= 48, f"{obj['id']}: {panel_id} leaves the grid"
        for index, (first_id, a) in enumerate(grid):
            for second_id, b in grid[index + 1 :]:
                apart = (
                    a["x"] + a["w"] <= b["x"]
                    or b["x"] + b["w"] <= a["x"]
                    or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]
                )
                assert apart, f"{obj['id']}: {first_id} overlaps {second_id}"


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
    """`field : "value"` (or `field : true`) in a panel's query or column filter must match some
    document, or the panel stays empty."""
    quoted = re.compile(r'([\w.]+)\s*:\s*\(?("[^"]+"(?:\s+or\s+"[^"]+")*|(?:true|false)\b)\)?')
    values: dict[str, set] = {}
    for document in documents:
        for name, value in flatten(document):
            values.setdefault(name, set()).add(json.dumps(value) if value is not None else "")
    queries = []
    for obj in saved_objects:
        if obj["type"] == "lens":
            queries.append((obj["id"], obj["attributes"]["state"]["query"]["query"]))
            queries += [
                (obj["id"], column["filter"]["query"])
                for column in layer_columns(obj).values()
                if "filter" in column
            ]
        elif obj["type"] == "search":
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            queries.append((obj["id"], source["query"]["query"]))
    for object_id, query in queries:
        for name, alternatives in quoted.findall(query):
            for literal in re.findall(r'"[^"]+"|true|false', alternatives):
                assert literal in values.get(name, set()), f"{object_id}: {name} : {literal}"


def _by_id(saved_objects: list[dict], object_id: str) -> dict:
    (obj,) = [o for o in saved_objects if o["id"] == object_id]
    return obj


def test_the_shadow_panels_read_only_compared_pairs(saved_objects, catalogue):
    """Every shadow panel counts the comparisons the challenger answered (a failed mirrored call
    has no labels), and reads only catalogued brainscan.shadow fields besides ECS."""
    (board,) = [o for o in saved_objects if o["id"] == "brainscan-shadow"]
    assert set(dashboard_panels(board)) == SHADOW_PANELS
    for object_id in SHADOW_PANELS:
        obj = _by_id(saved_objects, object_id)
        assert SHADOW_PAIRS in obj["attributes"]["state"]["query"]["query"], object_id
        for name, _ in lens_fields(obj):
            field = catalogue.lookup(name)
            assert field.origin == "ecs" or name.startswith("brainscan.shadow."), name
            assert field.origin != "shipped", name


def test_the_shadow_agreement_is_the_share_of_pairs_agreed_per_challenger(saved_objects):
    over_time = _by_id(saved_objects, "brainscan-shadow-agreement-over-time")
    (layer,) = over_time["attributes"]["state"]["visualization"]["layers"]
    columns = layer_columns(over_time)
    assert columns[layer["xAccessor"]]["operationType"] == "date_histogram"
    assert columns[layer["splitAccessor"]]["sourceField"] == "brainscan.shadow.challenger.version"
    (rate,) = layer["accessors"]
    assert columns[rate]["params"]["formula"] == AGREEMENT
    assert columns[rate]["params"]["format"]["id"] == "percent"
    by_version = _by_id(saved_objects, "brainscan-shadow-agreement-by-version")
    columns = layer_columns(by_version)
    shown = [c["columnId"] for c in by_version["attributes"]["state"]["visualization"]["columns"]]
    assert [columns[c].get("sourceField") for c in shown] == [
        "brainscan.shadow.challenger.version",
        "___records___",
        None,
    ]
    assert columns[shown[2]]["params"]["formula"] == AGREEMENT


def test_the_shadow_matrix_crosses_champion_and_challenger_labels(saved_objects):
    matrix = _by_id(saved_objects, "brainscan-shadow-confusion")
    columns = layer_columns(matrix)
    shown = matrix["attributes"]["state"]["visualization"]["columns"]
    rows = [columns[c["columnId"]].get("sourceField") for c in shown if not c.get("isTransposed")]
    across = [columns[c["columnId"]]["sourceField"] for c in shown if c.get("isTransposed")]
    assert rows == [
        "brainscan.shadow.challenger.version",
        "brainscan.shadow.champion.label",
        "___records___",
    ]
    assert across == ["brainscan.shadow.challenger.label"]


def test_the_shadow_latency_compares_both_models_alike(saved_objects):
    latency = _by_id(saved_objects, "brainscan-shadow-latency")
    columns = layer_columns(latency)
    percentiles = {
        c["sourceField"]: c["params"]["percentile"]
        for c in columns.values()
        if c["operationType"] == "percentile"
    }
    assert percentiles == {
        "brainscan.shadow.champion.latency_ms": 95,
        "brainscan.shadow.challenger.latency_ms": 95,
    }


def test_the_feedback_panels_read_reviews_and_cross_the_models_label_with_the_reviewers(
    saved_objects,
):
    """Reviewers' feedback on the predictions dashboard: the reviews, the share confirming the
    model per version, and the model's label by the reviewer's (the corrections)."""
    feedback = 'event.action : "feedback"'
    ids = (
        "brainscan-feedback-reviews",
        "brainscan-feedback-agreement",
        "brainscan-feedback-labels",
    )
    (board,) = [o for o in saved_objects if o["id"] == "brainscan-predictions"]
    assert set(ids) <= set(dashboard_panels(board))
    for object_id in ids:
        assert feedback in _by_id(saved_objects, object_id)["attributes"]["state"]["query"]["query"]
    agreement = _by_id(saved_objects, "brainscan-feedback-agreement")
    columns = layer_columns(agreement)
    shown = [c["columnId"] for c in agreement["attributes"]["state"]["visualization"]["columns"]]
    assert columns[shown[0]]["sourceField"] == "model.version"
    assert columns[shown[2]]["params"]["formula"] == (
        "count(kql='feedback.outcome : \"confirmation\"') / count()"
    )
    labels = _by_id(saved_objects, "brainscan-feedback-labels")
    columns = layer_columns(labels)
    shown = labels["attributes"]["state"]["visualization"]["columns"]
    rows = [columns[c["columnId"]].get("sourceField") for c in shown if not c.get("isTransposed")]
    across = [columns[c["columnId"]]["sourceField"] for c in shown if c.get("isTransposed")]
    assert rows == ["prediction.label", "___records___"]
    assert across == ["feedback.label"]
