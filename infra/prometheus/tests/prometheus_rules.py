"""The stack's Prometheus rules and what they read: the files, promtool, and the metrics the
services really export (read from their metrics classes and the gateway's drift collector), with
issue 12's contract to hold them to.

Shared by the rule tests, the real-Prometheus test, the chart tests and the compose tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
RULES_FILE = REPO / "helm" / "brainscan" / "files" / "prometheus" / "alerts.yml"
RULES_TEST_FILE = Path(__file__).resolve().parent / "alerts_test.yml"
COMPOSE_CONFIG = REPO / "infra" / "prometheus" / "prometheus.yml"
INSTALL_HINT = (
    "install Debian's prometheus package (`apt-get install -y prometheus`: promtool and "
    "prometheus 2.42); .ci/run installs it on CI machines"
)

# Labels Prometheus itself adds to scraped series (compose: job, instance; Kubernetes discovery
# and the operator: also namespace, pod and the pods' labels).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})

# What the gateway gained with issue 12 (the out-of-distribution guard and drift gauges), as the
# contract (scratch/ood_contract.md) names them; test_alert_rules.py holds the code to it.
ISSUE_12_METRICS: dict[str, frozenset[str]] = {
    "gateway_ood_checks_total": frozenset({"model_version", "result"}),
    "gateway_prediction_confidence_bucket": frozenset({"model_version", "le"}),
    "gateway_predictions_total": frozenset({"label", "model_version"}),
    "gateway_drift_psi": frozenset({"model_version", "statistic"}),
    "gateway_drift_out_of_distribution_rate": frozenset({"model_version"}),
    "gateway_drift_expected_out_of_distribution_rate": frozenset({"model_version"}),
    "gateway_drift_window_predictions": frozenset({"model_version"}),
}
ISSUE_12_VALUES: dict[str, frozenset[str]] = {
    "result": frozenset({"in_distribution", "out_of_distribution", "unavailable"}),
    "statistic": frozenset({"class_mix", "confidence", "intensity"}),
}


def promtool_path() -> str:
    """promtool's path; fails the calling test, saying how to install it, when it is missing."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(f"promtool is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def prometheus_path() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail(f"prometheus is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def promtool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output is in the result, for the test's failure message."""
    return subprocess.run(
        [promtool_path(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_rules(path: Path = RULES_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def rules(document: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every rule of every group, recording and alerting."""
    document = document or load_rules()
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts(document: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [rule for rule in rules(document) if "alert" in rule]


# --- reading PromQL just enough to find the series a rule selects --------------------------------

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_SERIES = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{.*\})?\s*$")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
)


@dataclass(frozen=True)
class Selector:
    """One series selector of an expression: `name{label op "value", ...}`."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]


def selectors(expr: str) -> list[Selector]:
    """The series selectors of a PromQL expression (not its functions, keywords or numbers)."""
    text = _GROUPING.sub(" ", re.sub(r"\[[^\]]*\]", " ", expr))
    found = []
    for match in _IDENTIFIER.finditer(text):
        name, braces, call = match.groups()
        if call and not braces:  # rate(, sum(, histogram_quantile(
            continue
        if name.lower() in _KEYWORDS:
            continue
        found.append(Selector(name, tuple(_MATCHER.findall(braces or ""))))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by/without/on/ignoring clauses."""
    return {
        label.strip()
        for clause in _GROUPING.findall(expr)
        for label in clause.split(",")
        if label.strip()
    }


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """`name{a="b", ...}` as promtool's input_series writes it."""
    match = _SERIES.match(text)
    if match is None:
        raise ValueError(f"not a series: {text!r}")
    name, braces = match.groups()
    return name, {label: value for label, _, value in _MATCHER.findall(braces or "")}


# --- what the services export -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedMetric:
    """One sample name a service exports, with its labels (and `le` buckets for histograms)."""

    labels: frozenset[str]
    buckets: frozenset[str] = frozenset()


def _samples(metric) -> dict[str, ExportedMetric]:
    from prometheus_client.utils import floatToGoString

    name, labels = metric._name, frozenset(metric._labelnames)
    kind = metric._type
    if kind == "counter":
        return {f"{name}_total": ExportedMetric(labels)}
    if kind == "histogram":
        buckets = frozenset(floatToGoString(bound) for bound in metric._upper_bounds)
        return {
            f"{name}_bucket": ExportedMetric(labels | {"le"}, buckets),
            f"{name}_count": ExportedMetric(labels),
            f"{name}_sum": ExportedMetric(labels),
        }
    if kind == "info":
        return {f"{name}_info": ExportedMetric(labels)}
    return {name: ExportedMetric(labels)}


def exported_metrics() -> dict[str, ExportedMetric]:
    """Sample name -> labels, for every metric of the gateway, inference and model-sync, and
    the gateway's drift gauges (a collector computed when scraped, registered beside them)."""
    from brainscan_gateway.metrics import GatewayMetrics
    from brainscan_gateway.prediction.monitoring import DriftMonitor
    from brainscan_inference.metrics import InferenceMetrics
    from brainscan_modelsync.metrics import ModelSyncMetrics
    from prometheus_client.metrics import MetricWrapperBase

    exported: dict[str, ExportedMetric] = {}
    for holder in (GatewayMetrics(), InferenceMetrics(), ModelSyncMetrics()):
        for metric in vars(holder).values():
            if isinstance(metric, MetricWrapperBase):
                exported |= _samples(metric)
    for family in DriftMonitor(window_size=10).collect():
        exported[family.name] = ExportedMetric(frozenset(family._labelnames))
    return exported


def gateway_label_values(work_dir: Path) -> dict[str, set[str]]:
    """The `result` and `statistic` values the gateway's code produces: its metric label for
    each verdict (in, out, no guard), and the statistics a drift window of a guarded model
    (built in ``work_dir``) exports."""
    from brainscan_gateway.prediction.distribution_check import DistributionCheck
    from brainscan_gateway.prediction.monitoring import DriftMonitor
    from brainscan_manifest import MANIFEST_FILE, Manifest
    from gateway_servers import write_package

    manifest = Manifest.load(write_package(work_dir, guard=True) / MANIFEST_FILE)
    checks = [DistributionCheck(in_distribution=verdict) for verdict in (True, False, None)]
    monitor = DriftMonitor(window_size=10)
    for check in checks:
        monitor.observe(manifest.with_version("1"), "1", 0, 0.9, 0.5, check)
    statistics = {
        sample.labels["statistic"]
        for family in monitor.collect()
        for sample in family.samples
        if "statistic" in sample.labels
    }
    return {"result": {check.result for check in checks}, "statistic": statistics}


def gateway_routes() -> set[str]:
    """Route templates the gateway labels its requests with: its API's paths, and the label
    of unmatched paths (middleware/request_metrics.py)."""
    from brainscan_gateway.app import create_app
    from brainscan_gateway.settings import GatewaySettings

    with warnings.catch_warnings():
        # FastAPI warns about duplicate operation IDs of HEAD+GET routes; irrelevant here.
        warnings.simplefilter("ignore")
        paths = create_app(GatewaySettings()).openapi()["paths"]
    return set(paths) | {"unmatched"}


def inference_outcomes() -> set[str]:
    """The `outcome` values the inference endpoint records, read from its code."""
    from brainscan_inference.api.routes import infer

    source = Path(infer.__file__).read_text()
    assigned = re.findall(r'outcome = "(\w+)"', source)
    defaults = re.findall(r'outcome = _OUTCOMES\.get\([^,]+, "(\w+)"\)', source)
    return set(assigned) | set(defaults) | set(infer._OUTCOMES.values())
