"""The chart lints clean and every object it renders is valid Kubernetes, for every scenario."""

from __future__ import annotations

import helm_python as helm
import k8s_render
import pytest


@pytest.mark.parametrize("name", sorted(k8s_render.scenarios()))
def test_lint_strict_reports_no_warning_or_error(name, scenario_values):
    report = helm.lint(
        str(k8s_render.CHART_DIR), scenario_values[name], strict=True, namespace="brainscan"
    )
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); 2 is a warning, 3 an error.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_object_validates_strictly_on_each_supported_kubernetes(scenario):
    name, _, release = scenario
    assert release.objects, f"{name}: nothing rendered"
    assert k8s_render.validation_errors(release.objects) == []


def test_strict_validation_catches_an_unknown_field():
    """The validator itself is strict: a misspelt field is an error, not ignored."""
    release = k8s_render.render()
    deployment = release.deployment("gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    errors = k8s_render.validation_errors([deployment], ("1.29",))
    assert len(errors) == 1
    assert "readinesProbe" in errors[0]


def test_defaults_render_the_whole_stack(releases):
    release = releases["defaults"]
    components = ("gateway", "inference", "model-sync", "mlflow")
    assert release.names("Deployment") == {f"brainscan-{c}" for c in components}
    assert release.names("Service") == {f"brainscan-{c}" for c in components}
    assert release.names("ServiceAccount") == {f"brainscan-{c}" for c in components}
    assert release.names("NetworkPolicy") == {f"brainscan-{c}" for c in components}
    assert release.names("ConfigMap") == {f"brainscan-{c}" for c in components[:3]}
    assert release.names("HorizontalPodAutoscaler") == {"brainscan-gateway", "brainscan-inference"}
    assert release.names("PodDisruptionBudget") == {"brainscan-gateway", "brainscan-inference"}
    assert release.names("PersistentVolumeClaim") == {"brainscan-mlflow"}
    assert release.of_kind("Ingress") == []


def test_the_chart_never_renders_a_secret(scenario):
    """Secrets are made from Ansible Vault and only referenced: none in Helm's history."""
    _, _, release = scenario
    assert release.of_kind("Secret") == []


def test_autoscaling_off_fixes_the_replicas(releases, scenario_values):
    release = releases["autoscaling-off"]
    assert release.of_kind("HorizontalPodAutoscaler") == []
    for component in ("gateway", "inference"):
        wanted = scenario_values["autoscaling-off"][component]["replicaCount"]
        assert release.deployment(component)["spec"]["replicas"] == wanted


def test_external_mlflow_renders_no_mlflow_and_points_model_sync_at_the_url(releases):
    release = releases["external-mlflow"]
    assert not any(obj["metadata"]["name"].endswith("-mlflow") for obj in release.objects)
    config = release.get("ConfigMap", "brainscan-model-sync")["data"]
    assert config["MODELSYNC_MLFLOW_TRACKING_URI"] == "https://mlflow.example.org"


def test_ingress_routes_every_path_to_the_gateway_service(releases):
    release = releases["ingress"]
    (ingress,) = release.of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"][0]["secretName"] == "brainscan-tls"
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    service = release.get("Service", path["backend"]["service"]["name"])
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert path["backend"]["service"]["port"]["name"] in port_names


def test_notes_tell_how_to_reach_the_page(releases):
    assert "port-forward service/brainscan-gateway 8000:8000" in releases["defaults"].notes
    assert "https://brainscan.example.org/" in releases["ingress"].notes
    assert "custom.metrics.k8s.io" in releases["production"].notes
