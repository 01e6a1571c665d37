"""The alert rules: promtool accepts them and their unit tests pass (and fail when a rule is
broken), every alert says what to do, and every series they read is one the services export,
with labels and values the code really produces (issue 12's as its contract names them)."""

from __future__ import annotations

import re
from pathlib import Path

import prometheus_rules as pr
import pytest
import yaml

SEVERITIES = {"critical", "warning", "info"}
# Durations as Prometheus writes them (and the operator's CRD requires).
DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"
)
# level:metric:operations, the naming convention of recording rules.
RECORDED_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")


@pytest.fixture(scope="module")
def exported() -> dict[str, pr.ExportedMetric]:
    return pr.exported_metrics()


@pytest.fixture(scope="module")
def known_values(tmp_path_factory) -> dict[str, set[str]]:
    """Label values the code produces, for the labels the rules match on."""
    return {
        "route": pr.gateway_routes(),
        "outcome": pr.inference_outcomes(),
        **pr.gateway_label_values(tmp_path_factory.mktemp("guarded")),
    }


def _labels_of(name: str, exported: dict[str, pr.ExportedMetric]) -> frozenset[str]:
    """A metric's own labels, as the code exports it; unknown names fail."""
    assert name in exported, f"{name} is exported by no service"
    return exported[name].labels


def _promtool_ok(result) -> None:
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"


# --- promtool -----------------------------------------------------------------------------------


def test_promtool_accepts_the_rules():
    _promtool_ok(pr.promtool("check", "rules", pr.RULES_FILE))


def test_the_rules_unit_tests_pass():
    _promtool_ok(pr.promtool("test", "rules", pr.RULES_TEST_FILE))


# Each breaks one promise of a rule; the unit tests must notice every one.
BROKEN_RULES = {
    "drift fires on few predictions": (
        "(gateway_drift_window_predictions >= 100)",
        "(gateway_drift_window_predictions >= 0)",
    ),
    "probes count as API requests": ('route=~"/api/.+"', 'route=~".+"'),
    "the OOD threshold ignores the calibrated rate": (
        "clamp_min(5 * max by",
        "clamp_min(0 * max by",
    ),
    "the OOD share counts unchecked predictions": (
        'rate(gateway_ood_checks_total{result!="unavailable"}[5m]))\n',
        "rate(gateway_ood_checks_total[5m]))\n",
    ),
    "latency alert without its 10 minutes": (
        "        for: 10m\n        labels:\n          severity: warning\n"
        '        annotations:\n          summary: "p99',
        "        for: 1m\n        labels:\n          severity: warning\n"
        '        annotations:\n          summary: "p99',
    ),
    "inference failures count cancelled requests": (
        'outcome=~"error|unavailable|client_error"',
        'outcome!="success"',
    ),
    "the shadow drop share leaves failed calls out of the offered": (
        "            + (sum by (namespace) (rate(gateway_shadow_failed_total[5m])) or",
        "            + 0 * (sum by (namespace) (rate(gateway_shadow_failed_total[5m])) or",
    ),
    "the shadow agreement alert fires on few pairs": (
        "(brainscan:shadow_pairs:total >= 100)",
        "(brainscan:shadow_pairs:total >= 0)",
    ),
    "the shadow agreement mixes challenger versions": (
        "sum by (namespace, challenger_version) (gateway_shadow_agreed_total)",
        "sum by (namespace) (gateway_shadow_agreed_total)",
    ),
    "a rule aggregates namespaces together": (
        'sum by (namespace) (rate(gateway_http_requests_total{route=~"/api/.+", status',
        'sum (rate(gateway_http_requests_total{route=~"/api/.+", status',
    ),
}


def _unit_tests_on(rules_text: str, directory: Path):
    """promtool's unit tests run against ``rules_text`` instead of the repository's rules."""
    rules_file = directory / "alerts.yml"
    rules_file.write_text(rules_text)
    _promtool_ok(pr.promtool("check", "rules", rules_file))
    tests = yaml.safe_load(pr.RULES_TEST_FILE.read_text())
    tests["rule_files"] = [str(rules_file)]
    test_file = directory / "alerts_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False, allow_unicode=True))
    return pr.promtool("test", "rules", test_file)


@pytest.mark.parametrize("case", sorted(BROKEN_RULES))
def test_the_unit_tests_fail_on_a_broken_rule(case, tmp_path):
    old, new = BROKEN_RULES[case]
    text = pr.RULES_FILE.read_text()
    assert old in text, f"the rule this case breaks has changed: {old!r}"
    # The same run on the intact rules passes: a failure below is the broken rule's.
    _promtool_ok(_unit_tests_on(text, tmp_path))
    result = _unit_tests_on(text.replace(old, new), tmp_path)
    assert result.returncode != 0, (
        f"{case}: the unit tests still pass:\n{result.stdout}{result.stderr}"
    )
    assert "FAILED" in result.stdout + result.stderr


# --- what an alert tells the person on call -----------------------------------------------------


@pytest.mark.parametrize("alert", pr.alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_and_says_what_to_do(alert):
    assert re.fullmatch(r"Brainscan[A-Z][A-Za-z]+", alert["alert"])
    assert alert["labels"]["severity"] in SEVERITIES
    assert DURATION.match(alert["for"]) and alert["for"] != "0"
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    # One line a pager can show: short once its {{ templates }} are filled in.
    text = re.sub(r"\{\{.*?\}\}", "", annotations["summary"])
    assert "\n" not in text and len(text) < 120
    assert len(annotations["description"]) > 100 and len(annotations["runbook"]) > 100


def test_every_alert_is_unit_tested_firing_and_silent():
    cases = [
        case
        for test in yaml.safe_load(pr.RULES_TEST_FILE.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in pr.alerts():
        name = alert["alert"]
        own = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in own), f"{name} is never tested firing"
        assert any(not case["exp_alerts"] for case in own), f"{name} is never tested silent"


def test_recorded_series_are_named_by_convention_and_defined_before_use():
    defined = {rule["record"] for rule in pr.rules() if "record" in rule}
    for name in defined:
        assert RECORDED_NAME.match(name), name
    used = {s.name for rule in pr.rules() for s in pr.selectors(rule["expr"]) if ":" in s.name}
    assert used <= defined, f"read but never recorded: {used - defined}"
    assert defined <= used, f"recorded but read by no alert: {defined - used}"


def test_every_group_name_is_unique():
    names = [group["name"] for group in pr.load_rules()["groups"]]
    assert len(names) == len(set(names))


# --- the series the rules read exist --------------------------------------------------------------


def test_every_selected_metric_and_label_is_exported(exported, known_values):
    recorded = {rule["record"]: rule for rule in pr.rules() if "record" in rule}
    for rule in pr.rules():
        name = rule.get("alert") or rule["record"]
        available = set(pr.TARGET_LABELS)
        for selector in pr.selectors(rule["expr"]):
            if selector.name in recorded:
                labels = pr.grouping_labels(recorded[selector.name]["expr"]) - {"le"}
            else:
                labels = _labels_of(selector.name, exported) | pr.TARGET_LABELS
            available |= labels
            for label, op, value in selector.matchers:
                assert label in labels, f"{name}: {selector.name} has no label {label}"
                if label in known_values:
                    _assert_value_exists(name, label, op, value, known_values[label])
        unknown = pr.grouping_labels(rule["expr"]) - available - {"le"}
        assert not unknown, f"{name} groups by labels no series it reads has: {unknown}"


def _assert_value_exists(rule: str, label: str, op: str, value: str, known: set[str]) -> None:
    if op in ("=", "!="):
        assert value in known, f"{rule}: {label}{op}{value!r} is no value the code produces"
        return
    pattern = re.compile(value)
    matched = {each for each in known if pattern.fullmatch(each)}
    assert matched, f"{rule}: {label}{op}{value!r} matches no value the code produces"
    alternatives = value.split("|")
    if all(re.fullmatch(r"[a-z_]+", each) for each in alternatives):
        assert set(alternatives) <= known, f"{rule}: {label} values {alternatives} not all real"


def test_the_unit_tests_feed_series_as_the_services_export_them(exported, known_values):
    """The unit tests prove the rules on their input series; these must look like the real."""
    tests = yaml.safe_load(pr.RULES_TEST_FILE.read_text())["tests"]
    for series in (s["series"] for test in tests for s in test["input_series"]):
        name, labels = pr.parse_series(series)
        own = _labels_of(name, exported)
        assert set(labels) <= own | pr.TARGET_LABELS, f"{series}: unknown labels"
        assert own <= set(labels), f"{series}: lacks labels {set(own) - set(labels)}"
        for label, value in labels.items():
            if label in known_values and value:
                assert value in known_values[label], f"{series}: {label}={value!r} never occurs"
        if name in exported and exported[name].buckets:
            assert labels["le"] in exported[name].buckets, f"{series}: no such bucket"


def test_the_gateway_exports_issue_12s_metrics_as_the_contract_names_them(exported, known_values):
    for name, labels in pr.ISSUE_12_METRICS.items():
        assert _labels_of(name, exported) == labels, name
    for label, values in pr.ISSUE_12_VALUES.items():
        assert known_values[label] == values, label


def test_the_metric_check_catches_a_misspelt_name_label_or_value(exported, known_values):
    """The checks above are not vacuous: a wrong name, label or label value is found."""
    with pytest.raises(AssertionError, match="exported by no service"):
        _labels_of("gateway_http_request_total", exported)
    with pytest.raises(AssertionError, match="no value the code produces"):
        _assert_value_exists("rule", "statistic", "=", "class-mix", known_values["statistic"])
    with pytest.raises(AssertionError, match="not all real"):
        _assert_value_exists(
            "rule", "result", "=~", "out_of_distribution|unknown", known_values["result"]
        )
    (selector,) = pr.selectors(
        'sum by (namespace) (rate(gateway_predictions_total{lable="x"}[5m]))'
    )
    assert ("lable", "=", "x") in selector.matchers
    assert "lable" not in _labels_of(selector.name, exported)


def test_selectors_ignore_functions_keywords_and_grouping():
    expr = (
        'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{route="/x"}[5m])))'
        " > on (namespace) group_left b:c:d and ignoring (statistic) (e >= 100)"
    )
    assert [s.name for s in pr.selectors(expr)] == ["a_bucket", "b:c:d", "e"]
    assert pr.grouping_labels(expr) == {"namespace", "le", "statistic"}


# --- the compose Prometheus -----------------------------------------------------------------------


def test_compose_prometheus_config_passes_promtool(tmp_path):
    """The compose config as Prometheus reads it, its rule path pointed at the repo file."""
    config = yaml.safe_load(pr.COMPOSE_CONFIG.read_text())
    (rule_path,) = config["rule_files"]
    assert Path(rule_path).name == "brainscan-alerts.yml"
    config["rule_files"] = [str(pr.RULES_FILE)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = pr.promtool("check", "config", local)
    _promtool_ok(result)
    assert f"SUCCESS: {len(pr.rules())} rules found" in result.stdout


# --- the documentation ---------------------------------------------------------------------------


def test_the_docs_explain_every_rule_and_name_real_files():
    text = (pr.REPO / "docs" / "observability.md").read_text()
    section = text.split("## Metrics and alerts (Prometheus)", 1)[1]
    for rule in pr.rules():
        name = rule.get("alert") or rule["record"]
        assert f"`{name}`" in section, f"docs/observability.md does not explain {name}"
    for path in re.findall(r"`((?:helm|prometheus|infra)/[\w./-]+)`", section):
        assert (pr.REPO / path).exists(), path
