"""monitoring.*: the stack's Prometheus rules as a PrometheusRule or a ConfigMap, and a PodMonitor,
all off by default. kubernetes-validate knows no custom resource, so the PrometheusRule and the
PodMonitor are checked here against the structure of their CRDs (prometheus-operator's
monitoring.coreos.com/v1), and the rules they carry are parsed by promtool itself."""

from __future__ import annotations

import copy
import re
from typing import Any

import k8s_render
import kubernetes_validate
import prometheus_rules as pr
import pytest
import yaml

RULES_KEY = "brainscan-alerts.yml"
# The duration pattern of the operator's CRDs.
DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
GROUP_FIELDS = {"name", "interval", "labels", "limit", "partial_response_strategy", "query_offset"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
SCRAPED = {"gateway", "inference", "model-sync"}


@pytest.fixture(scope="module")
def monitoring(releases) -> k8s_render.RenderedRelease:
    return releases["monitoring"]


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def prometheus_rule_problems(obj: dict[str, Any]) -> list[str]:
    """What the PrometheusRule CRD's schema (and the operator) would refuse in ``obj``."""
    problems = []
    if set(obj) - {"apiVersion", "kind", "metadata", "spec"}:
        problems.append(
            f"unknown top-level fields {set(obj) - {'apiVersion', 'kind', 'metadata', 'spec'}}"
        )
    spec = obj.get("spec")
    if (
        not isinstance(spec, dict)
        or set(spec) - {"groups"}
        or not isinstance(spec.get("groups"), list)
    ):
        return [*problems, "spec must be {groups: [...]}"]
    names = [group.get("name") for group in spec["groups"]]
    if len(names) != len(set(names)):
        problems.append("group names must be unique (a list-map keyed by name)")
    for group in spec["groups"]:
        where = f"group {group.get('name')!r}"
        if not isinstance(group.get("name"), str) or not group["name"]:
            problems.append(f"{where}: name is required")
        if set(group) - GROUP_FIELDS - {"rules"}:
            problems.append(f"{where}: unknown fields {set(group) - GROUP_FIELDS - {'rules'}}")
        if "interval" in group and not DURATION.match(str(group["interval"])):
            problems.append(f"{where}: interval is no duration")
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            if set(rule) - RULE_FIELDS:
                problems.append(f"{where}/{name}: unknown fields {set(rule) - RULE_FIELDS}")
            if ("alert" in rule) == ("record" in rule):
                problems.append(f"{where}/{name}: exactly one of alert and record")
            if not isinstance(rule.get("expr"), (str, int)):
                problems.append(f"{where}/{name}: expr is required (string)")
            for duration in ("for", "keep_firing_for"):
                if duration in rule and not DURATION.match(str(rule[duration])):
                    problems.append(f"{where}/{name}: {duration} is no duration")
            for field in ("labels", "annotations"):
                if field in rule and not _string_map(rule[field]):
                    problems.append(f"{where}/{name}: {field} must map strings to strings")
    return problems


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression.get("values", [])
        if expression["operator"] == "In" and value not in values:
            return False
        if expression["operator"] == "NotIn" and value in values:
            return False
    return True


def test_monitoring_is_off_by_default(releases):
    for name in set(releases) - {"monitoring"}:
        release = releases[name]
        assert release.of_kind("PrometheusRule") == [], name
        assert release.of_kind("PodMonitor") == [], name
        assert "brainscan-alert-rules" not in release.names("ConfigMap"), name


def test_kubernetes_validate_cannot_check_the_operator_kinds(monitoring):
    """Why these objects are left out of the strict validation: no schema exists for them."""
    for api_version, kind in k8s_render.OPERATOR_KINDS:
        (obj,) = [
            o for o in monitoring.objects if (o["apiVersion"], o["kind"]) == (api_version, kind)
        ]
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, "1.32", strict=True)
    # Everything else in the release is still validated, and another unknown kind is an error.
    stray = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
    }
    assert k8s_render.validation_errors([stray], ("1.32",))


def test_the_prometheus_rule_carries_the_rules_file_unchanged(monitoring):
    (rule,) = monitoring.of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "brainscan-alert-rules"
    assert rule["metadata"]["namespace"] == "brainscan"
    labels = rule["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"  # the operator's ruleSelector
    assert labels["app.kubernetes.io/part-of"] == "brainscan"
    assert labels["app.kubernetes.io/component"] == "alert-rules"
    assert rule["spec"] == pr.load_rules()
    assert prometheus_rule_problems(rule) == []


def test_the_crd_check_catches_what_the_operator_would_refuse(monitoring):
    rule = copy.deepcopy(monitoring.of_kind("PrometheusRule")[0])
    group = rule["spec"]["groups"][1]
    group["rules"][0]["expresion"] = group["rules"][0].pop("expr")
    group["rules"][1]["for"] = "ten minutes"
    group["rules"][2]["record"] = "also_a_record"
    rule["spec"]["groups"].append({"name": group["name"], "rules": []})
    problems = prometheus_rule_problems(rule)
    assert len(problems) == 5, problems


def test_promtool_parses_the_rules_the_chart_renders(monitoring, tmp_path):
    (rule,) = monitoring.of_kind("PrometheusRule")
    (config_map,) = [c for c in monitoring.of_kind("ConfigMap") if RULES_KEY in c["data"]]
    for name, text in (
        ("prometheusrule.yml", yaml.safe_dump(rule["spec"], allow_unicode=True)),
        ("configmap.yml", config_map["data"][RULES_KEY]),
    ):
        path = tmp_path / name
        path.write_text(text)
        result = pr.promtool("check", "rules", path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(pr.rules())} rules found" in result.stdout


def test_the_config_map_holds_the_rules_file_where_prometheus_runs(monitoring, scenario_values):
    (config_map,) = [c for c in monitoring.of_kind("ConfigMap") if RULES_KEY in c["data"]]
    metadata = config_map["metadata"]
    assert metadata["name"] == "brainscan-alert-rules"
    wanted = scenario_values["monitoring"]["monitoring"]["alertRulesConfigMap"]
    assert metadata["namespace"] == wanted["namespace"] == "monitoring"
    assert metadata["labels"]["prometheus-rules"] == "brainscan"
    assert config_map["data"] == {RULES_KEY: pr.RULES_FILE.read_text()}
    # Prometheus's own namespace is allowed to scrape the pods (the NetworkPolicies' metricsFrom).
    selector = {"matchLabels": {"kubernetes.io/metadata.name": metadata["namespace"]}}
    assert {"namespaceSelector": selector} in k8s_render.load_values(
        k8s_render.CHART_DIR / "values.yaml"
    )["networkPolicy"]["metricsFrom"]


def test_the_config_map_defaults_to_the_release_namespace():
    release = k8s_render.render({"monitoring": {"alertRulesConfigMap": {"enabled": True}}})
    (config_map,) = [c for c in release.of_kind("ConfigMap") if RULES_KEY in c["data"]]
    assert config_map["metadata"]["namespace"] == k8s_render.NAMESPACE
    assert release.of_kind("PrometheusRule") == []
    assert k8s_render.validation_errors([config_map]) == []


def test_the_pod_monitor_scrapes_exactly_the_annotated_pods(monitoring):
    (monitor,) = monitoring.of_kind("PodMonitor")
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) == {"selector", "podMetricsEndpoints"}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert set(endpoint) == {"port", "path", "interval"}
    assert DURATION.match(endpoint["interval"]) and endpoint["interval"] == "15s"
    selected = set()
    for deployment in monitoring.of_kind("Deployment"):
        template = deployment["spec"]["template"]
        component = template["metadata"]["labels"]["app.kubernetes.io/component"]
        annotations = template["metadata"].get("annotations", {})
        if _matches(monitor["spec"]["selector"], template["metadata"]["labels"]):
            selected.add(component)
            # What the prometheus.io/* annotations say, on a named port of the container.
            assert annotations["prometheus.io/path"] == endpoint["path"]
            (container,) = template["spec"]["containers"]
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            assert ports[endpoint["port"]] == int(annotations["prometheus.io/port"])
        else:
            assert annotations.get("prometheus.io/scrape") != "true", component
    assert selected == SCRAPED
