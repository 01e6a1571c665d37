"""Writes elk/kibana/saved_objects.ndjson: the data view, the Lens panels and the dashboards.

The ndjson is what Kibana imports (elk/scripts/import-kibana-objects.sh); this builder is its
readable source. After editing a panel here: `python elk/kibana/build_saved_objects.py` (the
tests fail while the two differ). Saved-object formats: Kibana 8.9+ (Lens "formBased").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("saved_objects.ndjson")
DATA_VIEW_ID = "brainscan-logs"
DATA_VIEW_TITLE = "logs-brainscan.*"
CORE_MIGRATION = "8.8.0"
TYPE_MIGRATION = {
    "index-pattern": "8.0.0",
    "search": "8.0.0",
    "lens": "8.9.0",
    "dashboard": "8.9.0",
}
LAYER = "layer1"

ACCESS = 'event.category : "web"'
GATEWAY_PREDICTIONS = (
    f'{ACCESS} and service.name : "brainscan-gateway" and url.path : "/api/v1/predictions"'
)
PREDICTIONS = 'event.dataset : "brainscan.gateway" and event.action : "predict"'
MODEL_SYNC_CHANGES = (
    'event.dataset : "brainscan.model_sync" and '
    'event.action : ("published" or "rolled_back" or "restored" or "refused")'
)
BUILDS = 'event.dataset : "brainscan.ci"'
# The gateway's comparisons with the challenger in shadow that the challenger answered (a failed
# mirrored call logs outcome failure, and has no labels to compare).
SHADOW_PAIRS = (
    'event.dataset : "brainscan.gateway" and event.action : "shadow-compare" and '
    'event.outcome : "success"'
)
K8S_EVENTS = 'event.dataset : "brainscan.kubernetes_events"'
# Reviewers' feedback on answers (POST /api/v1/predictions/{id}/feedback), one event each.
FEEDBACK = 'event.dataset : "brainscan.gateway" and event.action : "feedback"'


# --- Lens columns ----------------------------------------------------------------------------
def date_histogram() -> dict:
    return {
        "label": "@timestamp",
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": "@timestamp",
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
    }


def metric(operation: str, field: str, label: str, **params: object) -> dict:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": operation,
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
        "params": {"emptyAsNull": True, **params} if operation != "percentile" else params,
    }


def count(label: str) -> dict:
    return metric("count", "___records___", label)


def terms(field: str, order_by: str | None, size: int = 10, label: str | None = None) -> dict:
    """Top values of ``field`` ranked by the column ``order_by``; None: alphabetically, what Lens
    falls back to when the only metric is a formula (terms cannot rank by one)."""
    order = {"type": "column", "columnId": order_by}
    if order_by is None:
        order = {"type": "alphabetical", "fallback": True}
    return {
        "label": label or field,
        "customLabel": label is not None,
        "dataType": "string",
        "operationType": "terms",
        "sourceField": field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": size,
            "orderBy": order,
            "orderDirection": "desc" if order_by else "asc",
            "otherBucket": True,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
    }


def filters(label: str, named_queries: dict[str, str]) -> dict:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "filters",
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "filters": [
                {"label": name, "input": {"query": query, "language": "kuery"}}
                for name, query in named_queries.items()
            ]
        },
    }


def share(column_id: str, label: str, part: str) -> dict[str, dict]:
    """The Lens formula `count(kql=part) / count()`: the share of the panel's events that match
    ``part``, with the helper columns Kibana saves beside a formula (two counts, their ratio)."""
    text = f"count(kql='{part}') / count()"
    helper = {
        "label": f"Part of {label}",
        "customLabel": True,
        "dataType": "number",
        "isBucketed": False,
        "scale": "ratio",
    }
    count_helper = {
        **helper,
        "operationType": "count",
        "sourceField": "___records___",
        "params": {"emptyAsNull": False},
    }
    matching, every, ratio = (f"{column_id}X{index}" for index in range(3))
    return {
        column_id: {
            "label": label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "formula",
            "isBucketed": False,
            "scale": "ratio",
            "params": {
                "formula": text,
                "isFormulaBroken": False,
                "format": {"id": "percent", "params": {"decimals": 1}},
            },
            "references": [ratio],
        },
        matching: {**count_helper, "filter": {"query": part, "language": "kuery"}},
        every: count_helper,
        ratio: {
            **helper,
            "operationType": "math",
            "params": {
                "tinymathAst": {
                    "type": "function",
                    "name": "divide",
                    "args": [matching, every],
                    "location": {"min": 0, "max": len(text)},
                    "text": text,
                }
            },
            "references": [matching, every],
        },
    }


# --- Lens visualizations -----------------------------------------------------------------------
def lens(
    object_id: str,
    title: str,
    description: str,
    columns: dict[str, dict],
    visualization_type: str,
    visualization: dict,
    query: str,
) -> dict:
    return {
        "id": object_id,
        "type": "lens",
        "coreMigrationVersion": CORE_MIGRATION,
        "typeMigrationVersion": TYPE_MIGRATION["lens"],
        "attributes": {
            "title": title,
            "description": description,
            "visualizationType": visualization_type,
            "state": {
                "datasourceStates": {
                    "formBased": {
                        "layers": {
                            LAYER: {
                                "columns": columns,
                                "columnOrder": list(columns),
                                "incompleteColumns": {},
                            }
                        }
                    }
                },
                "visualization": visualization,
                "query": {"query": query, "language": "kuery"},
                "filters": [],
            },
        },
        "references": [
            {
                "type": "index-pattern",
                "id": DATA_VIEW_ID,
                "name": f"indexpattern-datasource-layer-{LAYER}",
            }
        ],
    }


def xy(series_type: str, x: str, accessors: list[str], split: str | None = None) -> dict:
    layer = {
        "layerId": LAYER,
        "layerType": "data",
        "seriesType": series_type,
        "xAccessor": x,
        "accessors": accessors,
    }
    if split:
        layer["splitAccessor"] = split
    return {
        "preferredSeriesType": series_type,
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "layers": [layer],
    }


def time_series(
    object_id: str,
    title: str,
    description: str,
    metrics: dict[str, dict],
    query: str,
    series_type: str = "line",
    breakdown: dict | None = None,
) -> dict:
    columns = {"time": date_histogram(), **metrics}
    if breakdown is not None:
        columns = {"time": date_histogram(), "breakdown": breakdown, **metrics}
    visualization = xy(series_type, "time", list(metrics), "breakdown" if breakdown else None)
    return lens(object_id, title, description, columns, "lnsXY", visualization, query)


def single_number(object_id: str, title: str, description: str, column: dict, query: str) -> dict:
    visualization = {"layerId": LAYER, "layerType": "data", "metricAccessor": "value"}
    return lens(object_id, title, description, {"value": column}, "lnsMetric", visualization, query)


def donut(object_id: str, title: str, description: str, field: str, query: str) -> dict:
    columns = {"group": terms(field, "value"), "value": count("Predictions")}
    visualization = {
        "shape": "donut",
        "layers": [
            {
                "layerId": LAYER,
                "layerType": "data",
                "primaryGroups": ["group"],
                "metrics": ["value"],
                "numberDisplay": "percent",
                "categoryDisplay": "default",
                "legendDisplay": "default",
                "nestedLegend": False,
            }
        ],
    }
    return lens(object_id, title, description, columns, "lnsPie", visualization, query)


def table(object_id: str, title: str, description: str, columns: dict[str, dict], query: str):
    # A formula's helper columns (share()) are computed for it, not shown.
    helpers = {ref for column in columns.values() for ref in column.get("references", [])}
    visualization = {
        "layerId": LAYER,
        "layerType": "data",
        "columns": [{"columnId": column} for column in columns if column not in helpers],
    }
    return lens(object_id, title, description, columns, "lnsDatatable", visualization, query)


# --- saved searches, data view, dashboards -----------------------------------------------------
def saved_search(object_id: str, title: str, description: str, columns: list[str], query: str):
    source = {
        "query": {"query": query, "language": "kuery"},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return {
        "id": object_id,
        "type": "search",
        "coreMigrationVersion": CORE_MIGRATION,
        "typeMigrationVersion": TYPE_MIGRATION["search"],
        "attributes": {
            "title": title,
            "description": description,
            "columns": columns,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        "references": [
            {
                "type": "index-pattern",
                "id": DATA_VIEW_ID,
                "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
            }
        ],
    }


def data_view() -> dict:
    duration_ms = {
        "id": "duration",
        "params": {"inputFormat": "nanoseconds", "outputFormat": "asMilliseconds"},
    }
    return {
        "id": DATA_VIEW_ID,
        "type": "index-pattern",
        "coreMigrationVersion": CORE_MIGRATION,
        "typeMigrationVersion": TYPE_MIGRATION["index-pattern"],
        "attributes": {
            "title": DATA_VIEW_TITLE,
            "name": "brainscan logs",
            "timeFieldName": "@timestamp",
            "fieldFormatMap": json.dumps({"event.duration": duration_ms}),
            "allowNoIndex": True,
        },
        "references": [],
    }


def dashboard(object_id: str, title: str, description: str, panels: list[tuple]) -> dict:
    """``panels``: (saved object, x, y, w, h) on Kibana's 48-column grid."""
    panels_json, references = [], []
    for index, (saved, x, y, w, h) in enumerate(panels, start=1):
        panel_id = f"p{index}"
        panels_json.append(
            {
                "version": TYPE_MIGRATION["dashboard"],
                "type": saved["type"],
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_id},
                "panelIndex": panel_id,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{panel_id}",
            }
        )
        references.append(
            {"name": f"{panel_id}:panel_{panel_id}", "type": saved["type"], "id": saved["id"]}
        )
    options = {
        "useMargins": True,
        "syncColors": False,
        "syncCursor": True,
        "syncTooltips": False,
        "hidePanelTitles": False,
    }
    search_source = {"query": {"query": "", "language": "kuery"}, "filter": []}
    return {
        "id": object_id,
        "type": "dashboard",
        "coreMigrationVersion": CORE_MIGRATION,
        "typeMigrationVersion": TYPE_MIGRATION["dashboard"],
        "attributes": {
            "title": title,
            "description": description,
            "panelsJSON": json.dumps(panels_json),
            "optionsJSON": json.dumps(options),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(search_source)},
        },
        "references": references,
    }


def api_dashboard() -> list[dict]:
    latency = time_series(
        "brainscan-gateway-latency",
        "Gateway response time p50 / p95",
        "POST /api/v1/predictions as the gateway saw it (event.duration of its access events).",
        {
            "p50": metric("percentile", "event.duration", "p50", percentile=50),
            "p95": metric("percentile", "event.duration", "p95", percentile=95),
        },
        GATEWAY_PREDICTIONS,
    )
    latency_by_service = time_series(
        "brainscan-latency-by-service",
        "Response time p95 by service",
        "Every request of gateway and inference; model-sync's long polls would dwarf them.",
        {"p95": metric("percentile", "event.duration", "p95", percentile=95)},
        f'{ACCESS} and not service.name : "brainscan-model-sync"',
        breakdown=terms("service.name", "p95", size=5, label="service"),
    )
    requests = time_series(
        "brainscan-requests-by-service",
        "Requests by service",
        "Access events per service.",
        {"count": count("Requests")},
        ACCESS,
        series_type="bar_stacked",
        breakdown=terms("service.name", "count", size=5, label="service"),
    )
    status_classes = {
        "2xx/3xx": "http.response.status_code < 400",
        "4xx": "http.response.status_code >= 400 and http.response.status_code < 500",
        "5xx": "http.response.status_code >= 500",
    }
    error_rate = lens(
        "brainscan-error-rate-by-service",
        "Error rate by service",
        "Share of each service's responses that were 4xx (refused) or 5xx (failed).",
        {
            "service": terms("service.name", "count", size=5, label="service"),
            "class": filters("status", status_classes),
            "count": count("Responses"),
        },
        "lnsXY",
        xy("bar_horizontal_percentage_stacked", "service", ["count"], "class"),
        ACCESS,
    )
    errors_over_time = time_series(
        "brainscan-errors-by-status",
        "Error responses by status code",
        "4xx and 5xx responses over time.",
        {"count": count("Responses")},
        f"{ACCESS} and http.response.status_code >= 400",
        series_type="bar_stacked",
        breakdown=terms("http.response.status_code", "count", size=10, label="status"),
    )
    errors_table = table(
        "brainscan-errors-table",
        "Errors by service and status",
        "Count of 4xx and 5xx responses per service, status code and error code.",
        {
            "service": terms("service.name", "count", size=5, label="service"),
            "status": terms("http.response.status_code", "count", size=10, label="status"),
            "count": count("Responses"),
        },
        f"{ACCESS} and http.response.status_code >= 400",
    )
    refusals = table(
        "brainscan-refusal-codes",
        "Refused uploads by error code",
        "Why the gateway refused requests (error.code of its 'request refused' events).",
        {
            "code": terms("error.code", "count", size=20, label="error.code"),
            "count": count("Refusals"),
        },
        'event.dataset : "brainscan.gateway" and error.code : *',
    )
    objects = [
        latency,
        latency_by_service,
        requests,
        error_rate,
        errors_over_time,
        errors_table,
        refusals,
    ]
    board = dashboard(
        "brainscan-api",
        "brainscan · API health",
        "Response times, traffic and errors of gateway, inference and model-sync.",
        [
            (latency, 0, 0, 24, 14),
            (latency_by_service, 24, 0, 24, 14),
            (requests, 0, 14, 24, 14),
            (error_rate, 24, 14, 24, 14),
            (errors_over_time, 0, 28, 24, 14),
            (errors_table, 24, 28, 12, 14),
            (refusals, 36, 28, 12, 14),
        ],
    )
    return [*objects, board]


def predictions_dashboard() -> list[dict]:
    total = single_number(
        "brainscan-predictions-total",
        "Predictions",
        "Predictions answered in the time range.",
        count("Predictions"),
        PREDICTIONS,
    )
    uncertain = single_number(
        "brainscan-predictions-below-threshold",
        "Below threshold",
        "Predictions whose confidence was under the class threshold (answered as uncertain).",
        count("Below threshold"),
        f"{PREDICTIONS} and prediction.below_threshold : true",
    )
    by_class = donut(
        "brainscan-predictions-by-class",
        "Predictions by class",
        "Share of each predicted class.",
        "prediction.label",
        PREDICTIONS,
    )
    confidence = time_series(
        "brainscan-confidence-over-time",
        "Average confidence over time",
        "Mean probability of the predicted class; a drop can mean drifting inputs.",
        {"confidence": metric("average", "prediction.confidence", "average confidence")},
        PREDICTIONS,
    )
    classes_over_time = time_series(
        "brainscan-predictions-over-time",
        "Predictions over time by class",
        "",
        {"count": count("Predictions")},
        PREDICTIONS,
        series_type="bar_stacked",
        breakdown=terms("prediction.label", "count", size=10, label="class"),
    )
    below_over_time = time_series(
        "brainscan-below-threshold-over-time",
        "Below-threshold predictions over time",
        "",
        {"count": count("Below threshold")},
        f"{PREDICTIONS} and prediction.below_threshold : true",
        series_type="bar_stacked",
        breakdown=terms("prediction.label", "count", size=10, label="class"),
    )
    latency = time_series(
        "brainscan-prediction-latency",
        "Prediction latency p95 (ms)",
        "Inside the gateway: the whole prediction and the inference call in it.",
        {
            "total": metric("percentile", "prediction.latency.total_ms", "total", percentile=95),
            "inference": metric(
                "percentile", "prediction.latency.inference_ms", "inference", percentile=95
            ),
        },
        PREDICTIONS,
    )
    by_version = time_series(
        "brainscan-predictions-by-model-version",
        "Predictions by model version",
        "Which registry version answered: a rollout shows as a hand-over.",
        {"count": count("Predictions")},
        PREDICTIONS,
        series_type="bar_stacked",
        breakdown=terms("model.version", "count", size=10, label="model version"),
    )
    # The out-of-distribution guard: events without prediction.in_distribution come from a
    # model that carries no training reference, so they count in no rate.
    ood_rate = lens(
        "brainscan-ood-rate-by-model-version",
        "Out-of-distribution rate by model version",
        "Share of the checked predictions (prediction.in_distribution set) that were out of "
        "distribution; a rise means inputs unlike the training images.",
        {
            "time": date_histogram(),
            "version": terms("model.version", None, size=10, label="model version"),
            **share("rate", "out of distribution", "prediction.in_distribution : false"),
        },
        "lnsXY",
        xy("line", "time", ["rate"], "version"),
        f"{PREDICTIONS} and prediction.in_distribution : *",
    )
    not_assessed = single_number(
        "brainscan-predictions-not-assessed",
        "Not assessed (out of distribution)",
        "Predictions answered as not assessed: the image was out of distribution.",
        count("Not assessed"),
        f"{PREDICTIONS} and prediction.assessed : false",
    )
    ood_cues = donut(
        "brainscan-ood-reasons",
        "Out-of-distribution predictions by cue",
        "The strongest cue that flagged each out-of-distribution image.",
        "prediction.ood_reason",
        f"{PREDICTIONS} and prediction.in_distribution : false",
    )
    feedback = feedback_panels()
    objects = [
        total,
        uncertain,
        by_class,
        confidence,
        classes_over_time,
        below_over_time,
        latency,
        by_version,
        not_assessed,
        ood_rate,
        ood_cues,
        *feedback,
    ]
    board = dashboard(
        "brainscan-predictions",
        "brainscan · Predictions",
        "What the model answers: volume, classes, confidence, uncertain answers, latency, "
        "out-of-distribution inputs.",
        [
            (total, 0, 0, 12, 8),
            (uncertain, 12, 0, 12, 8),
            (by_class, 24, 0, 24, 16),
            (confidence, 0, 8, 24, 14),
            (classes_over_time, 0, 22, 24, 14),
            (below_over_time, 24, 16, 24, 14),
            (latency, 0, 36, 24, 14),
            (by_version, 24, 30, 24, 14),
            (not_assessed, 24, 44, 24, 6),
            (ood_rate, 0, 50, 24, 14),
            (ood_cues, 24, 50, 24, 14),
            (feedback[0], 0, 64, 12, 8),
            (feedback[1], 12, 64, 36, 8),
            (feedback[2], 0, 72, 48, 14),
        ],
    )
    return [*objects, board]


def feedback_panels() -> list[dict]:
    """What reviewers said about the answers: how often they agreed with the model, and which
    classes they corrected to which, per model version."""
    agreement = table(
        "brainscan-feedback-agreement",
        "Reviewer agreement by model version",
        "Reviews per model version and the share that confirmed the model's answer.",
        {
            "version": terms("model.version", "count", size=10, label="model version"),
            "count": count("Reviews"),
            **share("agreement", "agreement", 'feedback.outcome : "confirmation"'),
        },
        FEEDBACK,
    )
    columns = {
        "model": terms("prediction.label", "count", label="model's label"),
        "reviewer": terms("feedback.label", "count", label="reviewer's label"),
        "count": count("Reviews"),
    }
    corrections = table(
        "brainscan-feedback-labels",
        "Model label by reviewer label",
        "Reviews by the model's label (rows) and the reviewer's (columns): off the diagonal the "
        "reviewer corrected it. These images become Training images at the next feedback import.",
        columns,
        FEEDBACK,
    )
    corrections["attributes"]["state"]["visualization"]["columns"] = [
        {"columnId": column, **({"isTransposed": True} if column == "reviewer" else {})}
        for column in columns
    ]
    total = single_number(
        "brainscan-feedback-reviews", "Reviews", "Answers reviewers confirmed or corrected.",
        count("Reviews"), FEEDBACK,
    )  # fmt: skip
    return [total, agreement, corrections]


def shadow_dashboard() -> list[dict]:
    """The challenger in shadow against the served model (the champion), per challenger version:
    the evidence `brainscan-train promote` weighs, as the gateways logged it."""
    version = "brainscan.shadow.challenger.version"
    agreed = "brainscan.shadow.agreed : true"
    pairs = single_number(
        "brainscan-shadow-pairs",
        "Compared predictions",
        "Predictions mirrored to the challenger in shadow and answered by it.",
        count("Compared"),
        SHADOW_PAIRS,
    )
    agreement_over_time = lens(
        "brainscan-shadow-agreement-over-time",
        "Challenger agreement over time",
        "Share of compared predictions on whose label the challenger agreed with the served "
        "model, per challenger version.",
        {
            "time": date_histogram(),
            # A formula cannot rank the terms (Lens): versions alphabetically.
            "version": terms(version, None, size=10, label="challenger version"),
            **share("agreement", "agreement", agreed),
        },
        "lnsXY",
        xy("line", "time", ["agreement"], "version"),
        SHADOW_PAIRS,
    )
    by_version = table(
        "brainscan-shadow-agreement-by-version",
        "Challenger agreement by version",
        "Compared predictions and the share agreed, per challenger version, over the time range.",
        {
            "version": terms(version, "count", size=10, label="challenger version"),
            "count": count("Compared"),
            **share("agreement", "agreement", agreed),
        },
        SHADOW_PAIRS,
    )
    # The confusion matrix: a row per challenger version and champion label, a column per
    # challenger label (Lens' transposed column), compared predictions in the cells.
    matrix_columns = {
        "version": terms(version, "count", size=10, label="challenger version"),
        "champion": terms("brainscan.shadow.champion.label", "count", label="champion"),
        "challenger": terms("brainscan.shadow.challenger.label", "count", label="challenger"),
        "count": count("Predictions"),
    }
    matrix = table(
        "brainscan-shadow-confusion",
        "Champion label by challenger label",
        "Compared predictions by the served model's label (rows) and the challenger's "
        "(columns); off the diagonal it disagrees.",
        matrix_columns,
        SHADOW_PAIRS,
    )
    matrix["attributes"]["state"]["visualization"]["columns"] = [
        {"columnId": column, **({"isTransposed": True} if column == "challenger" else {})}
        for column in matrix_columns
    ]
    latency = time_series(
        "brainscan-shadow-latency",
        "Inference latency p95 (ms): champion vs challenger",
        "Each model's inference call on the same mirrored images: a slower challenger shows "
        "before it serves.",
        {
            "champion": metric(
                "percentile", "brainscan.shadow.champion.latency_ms", "champion", percentile=95
            ),
            "challenger": metric(
                "percentile", "brainscan.shadow.challenger.latency_ms", "challenger", percentile=95
            ),
        },
        SHADOW_PAIRS,
    )
    objects = [pairs, by_version, agreement_over_time, matrix, latency]
    board = dashboard(
        "brainscan-shadow",
        "brainscan · Shadow",
        "The challenger in shadow against the served model: agreement, the label matrix and "
        "latency, per challenger version.",
        [
            (pairs, 0, 0, 12, 8),
            (by_version, 12, 0, 36, 8),
            (agreement_over_time, 0, 8, 24, 14),
            (matrix, 24, 8, 24, 14),
            (latency, 0, 22, 48, 14),
        ],
    )
    return [*objects, board]


def deployments_dashboard() -> list[dict]:
    changes = time_series(
        "brainscan-model-changes",
        "Model version changes",
        "model-sync's decisions: published, rolled back, restored from cache, refused.",
        {"count": count("Changes")},
        MODEL_SYNC_CHANGES,
        series_type="bar_stacked",
        breakdown=terms("event.action", "count", size=5, label="decision"),
    )
    timeline = saved_search(
        "brainscan-model-timeline",
        "Model version timeline",
        "Every version model-sync published, rolled back to or refused, and why.",
        ["event.action", "model.version", "model.previous_version", "event.reason"],
        MODEL_SYNC_CHANGES,
    )
    loads = time_series(
        "brainscan-model-loads",
        "Versions loaded by inference replicas",
        "One event per replica and version it loaded (hot swap).",
        {"count": count("Loads")},
        'event.dataset : "brainscan.inference" and event.action : "model-loaded"',
        series_type="bar_stacked",
        breakdown=terms("model.version", "count", size=10, label="model version"),
    )
    builds = time_series(
        "brainscan-jenkins-builds",
        "Jenkins builds by result",
        "One event per build (elk/jenkins/build_event.py).",
        {"count": count("Builds")},
        BUILDS,
        series_type="bar_stacked",
        breakdown=terms("cicd.pipeline.result", "count", size=5, label="result"),
    )
    build_list = saved_search(
        "brainscan-jenkins-build-list",
        "Jenkins builds",
        "",
        [
            "cicd.pipeline.name",
            "cicd.pipeline.run.id",
            "cicd.pipeline.result",
            "vcs.ref.head.name",
            "event.duration",
        ],
        BUILDS,
    )
    k8s = time_series(
        "brainscan-pod-events",
        "Pod restarts and scaling",
        "Kubernetes events: restarts and back-offs (pod-lifecycle), HPA and Deployment "
        "rescaling (scaling).",
        {"count": count("Events")},
        f'{K8S_EVENTS} and event.action : ("pod-lifecycle" or "scaling")',
        series_type="bar_stacked",
        breakdown=terms("event.reason", "count", size=10, label="reason"),
    )
    k8s_list = saved_search(
        "brainscan-pod-event-list",
        "Kubernetes events",
        "",
        ["event.reason", "orchestrator.resource.type", "orchestrator.resource.name", "message"],
        K8S_EVENTS,
    )
    objects = [changes, timeline, loads, builds, build_list, k8s, k8s_list]
    board = dashboard(
        "brainscan-deployments",
        "brainscan · Deployments",
        "Model versions, Jenkins builds and what Kubernetes did to the pods.",
        [
            (changes, 0, 0, 24, 12),
            (timeline, 24, 0, 24, 12),
            (loads, 0, 12, 24, 12),
            (builds, 24, 12, 24, 12),
            (build_list, 0, 24, 24, 12),
            (k8s, 24, 24, 24, 12),
            (k8s_list, 0, 36, 48, 12),
        ],
    )
    return [*objects, board]


def saved_objects() -> list[dict]:
    return [
        data_view(),
        *api_dashboard(),
        *predictions_dashboard(),
        *shadow_dashboard(),
        *deployments_dashboard(),
    ]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in saved_objects())


def main() -> int:
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
