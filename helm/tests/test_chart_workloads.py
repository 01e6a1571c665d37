"""What the rendered workloads promise: autoscaling that can work, real probes, images from
values, no root, writable paths only where mounted, zero-downtime rollouts, known settings."""

from __future__ import annotations

import copy
import os
from typing import Any

import helm_python as helm
import k8s_render
import pytest

SCALED = ("gateway", "inference")
SERVICES = ("gateway", "inference", "model-sync")


def _pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(deployment)
    return spec.get("initContainers", []) + spec["containers"]


def _component(obj: dict[str, Any]) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


def _env(deployment: dict[str, Any], release: k8s_render.RenderedRelease) -> dict[str, Any]:
    """The container's environment: its ConfigMap's data plus its own env entries."""
    (container,) = _pod_spec(deployment)["containers"]
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env |= release.get("ConfigMap", source["configMapRef"]["name"])["data"]
    for entry in container.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


# --- autoscaling ------------------------------------------------------------------------------


def test_every_hpa_targets_a_deployment_of_the_release(scenario):
    _, _, release = scenario
    for hpa in release.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in release.names("Deployment")
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_hpas_scale_gateway_and_inference_on_cpu_of_requested_cpu(scenario):
    name, _, release = scenario
    hpas = {_component(hpa): hpa for hpa in release.of_kind("HorizontalPodAutoscaler")}
    expected = set() if name == "autoscaling-off" else set(SCALED)
    assert set(hpas) == expected
    for component, hpa in hpas.items():
        cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert cpu[0]["resource"]["name"] == "cpu"
        assert cpu[0]["resource"]["target"]["type"] == "Utilization"
        # Utilisation is a share of the requests: without them the HPA reads nothing.
        deployment = release.get("Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        for container in _containers(deployment):
            assert container["resources"]["requests"]["cpu"]
        # The HPA owns the replica count; a fixed one would fight it on every upgrade.
        assert "replicas" not in release.deployment(component)["spec"]


def test_queue_depth_is_a_second_inference_metric_only_when_asked(releases):
    def pods_metrics(release):
        hpa = release.get("HorizontalPodAutoscaler", "brainscan-inference")
        return [m for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]

    assert pods_metrics(releases["defaults"]) == []
    (metric,) = pods_metrics(releases["production"])
    # The gauge the inference service exports (brainscan_inference.metrics).
    assert metric["pods"]["metric"]["name"] == "brainscan_inference_queue_depth"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_the_queue_depth_metric_name_is_the_one_inference_exports():
    from brainscan_inference.metrics import InferenceMetrics

    exported = {m.name for m in InferenceMetrics().registry.collect()}
    assert "brainscan_inference_queue_depth" in exported


# --- resources and probes ---------------------------------------------------------------------


def test_every_container_has_cpu_and_memory_requests_and_limits(scenario):
    _, _, release = scenario
    for deployment in release.of_kind("Deployment"):
        for container in _containers(deployment):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert set(resources[kind]) >= {"cpu", "memory"}, container["name"]


def test_every_probe_path_is_one_the_service_really_serves(scenario, served_get_paths):
    _, _, release = scenario
    for deployment in release.of_kind("Deployment"):
        served = served_get_paths[_component(deployment)]
        for container in _containers(deployment):
            port_names = {port["name"] for port in container["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                http = container[probe]["httpGet"]
                assert http["path"] in served, f"{container['name']} {probe} {http['path']}"
                assert http["port"] in port_names


def test_readiness_and_liveness_use_different_endpoints_where_the_service_has_both(releases):
    """Liveness must not depend on inference or MLflow, or a dependency outage restarts pods."""
    paths = {
        "gateway": ("/readyz", "/healthz"),
        "inference": ("/v2/health/ready", "/v2/health/live"),
        "model-sync": ("/readyz", "/healthz"),
    }
    for component, (ready, live) in paths.items():
        (container,) = _pod_spec(releases["defaults"].deployment(component))["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == ready
        assert container["livenessProbe"]["httpGet"]["path"] == live
        assert container["startupProbe"]["httpGet"]["path"] == live


# --- images -----------------------------------------------------------------------------------


def _component_values(component: str) -> str:
    return {"model-sync": "modelSync"}.get(component, component)


def test_images_come_from_values():
    values = {
        "gateway": {"image": {"registry": "r1.example", "repository": "a/gw", "tag": "t1"}},
        "inference": {"image": {"registry": "r2.example", "repository": "b/inf", "tag": "t2"}},
        "modelSync": {"image": {"registry": "r3.example", "repository": "c/ms", "tag": "t3"}},
        "mlflow": {"image": {"registry": "r4.example", "repository": "d/ml", "tag": "t4"}},
    }
    release = k8s_render.render(values)
    images = {
        _component(d): [c["image"] for c in _containers(d)] for d in release.of_kind("Deployment")
    }
    assert images == {
        "gateway": ["r1.example/a/gw:t1"],
        "inference": ["r2.example/b/inf:t2"],
        "model-sync": ["r3.example/c/ms:t3"],
        "mlflow": ["r4.example/d/ml:t4"],
    }


def test_image_digest_and_global_registry(releases, scenario_values):
    release = releases["production"]
    values = scenario_values["production"]
    (gateway,) = _containers(release.deployment("gateway"))
    digest = values["gateway"]["image"]["digest"]
    assert gateway["image"] == f"registry.example.org/brainscan/gateway@{digest}"
    (model_sync,) = _containers(release.deployment("model-sync"))
    assert model_sync["image"] == "registry.example.org/brainscan/model-sync:0.1.0-rc1"
    pull_secrets = _pod_spec(release.deployment("inference"))["imagePullSecrets"]
    assert pull_secrets == [{"name": "brainscan-registry"}]


def test_default_tag_is_the_chart_app_version(releases):
    with helm.Chart.load(str(k8s_render.CHART_DIR)) as chart:
        app_version = chart.metadata["appVersion"]
    (container,) = _containers(releases["defaults"].deployment("inference"))
    assert container["image"] == f"docker.io/brainscan/inference:{app_version}"


# --- security ---------------------------------------------------------------------------------


def test_nothing_runs_as_root_or_with_privileges(scenario):
    _, _, release = scenario
    for deployment in release.of_kind("Deployment"):
        pod = _pod_spec(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field)
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v]
        for container in _containers(deployment):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context.get("runAsUser", 1) > 0
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert not context["capabilities"].get("add")
            assert not context.get("privileged")


def test_writable_paths_are_mounted_volumes(scenario):
    """The root filesystem is read-only: /tmp and every cache directory must be volumes."""
    _, _, release = scenario
    cache_settings = {
        "inference": "INFERENCE_MODELSYNC_CACHE_DIR",
        "model-sync": "MODELSYNC_CACHE_DIR",
    }
    for deployment in release.of_kind("Deployment"):
        volumes = {v["name"] for v in _pod_spec(deployment)["volumes"]}
        (container,) = _pod_spec(deployment)["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert set(mounts.values()) <= volumes
        assert "/tmp" in mounts
        component = _component(deployment)
        if component in cache_settings:
            assert _env(deployment, release)[cache_settings[component]] in mounts


def test_service_accounts_exist_and_mount_no_token(scenario):
    _, _, release = scenario
    accounts = {sa["metadata"]["name"]: sa for sa in release.of_kind("ServiceAccount")}
    for deployment in release.of_kind("Deployment"):
        account = accounts[_pod_spec(deployment)["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False


# --- rollouts ---------------------------------------------------------------------------------


def test_rolling_updates_never_take_a_serving_pod_away_first(scenario):
    name, _, release = scenario
    for component in SERVICES:
        strategy = release.deployment(component)["spec"]["strategy"]
        if component == "model-sync" and name == "external-mlflow":
            # With a ReadWriteOnce cache volume the old pod must let go of it first.
            assert strategy == {"type": "Recreate"}
            continue
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        assert strategy["rollingUpdate"]["maxSurge"] >= 1
        (container,) = _pod_spec(release.deployment(component))["containers"]
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"


def test_disruption_budgets_select_the_scaled_pods(scenario):
    _, _, release = scenario
    budgets = {_component(pdb): pdb for pdb in release.of_kind("PodDisruptionBudget")}
    assert set(budgets) == set(SCALED)
    for component, pdb in budgets.items():
        labels = release.deployment(component)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["minAvailable"] >= 1


def test_services_select_their_pods_and_name_a_container_port(scenario):
    _, _, release = scenario
    for service in release.of_kind("Service"):
        deployment = release.get("Deployment", service["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        port_names = {p["name"] for c in _containers(deployment) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names


def test_a_config_change_rolls_only_that_component(releases):
    values = {"gateway": {"config": {"GATEWAY_LOG_LEVEL": "DEBUG"}}}
    changed = k8s_render.render(values)

    def checksum(release, component):
        annotations = release.deployment(component)["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"]

    assert checksum(changed, "gateway") != checksum(releases["defaults"], "gateway")
    for component in ("inference", "model-sync"):
        assert checksum(changed, component) == checksum(releases["defaults"], component)


# --- configuration ----------------------------------------------------------------------------


def test_components_find_each_other_through_their_services(scenario):
    _, values, release = scenario

    def url_of(component):
        service = release.get("Service", f"brainscan-{component}")
        return f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"

    gateway = _env(release.deployment("gateway"), release)
    inference = _env(release.deployment("inference"), release)
    model_sync = _env(release.deployment("model-sync"), release)
    assert gateway["GATEWAY_INFERENCE_URL"] == url_of("inference")
    assert inference["INFERENCE_MODEL_SOURCE"] == "modelsync"
    assert inference["INFERENCE_MODELSYNC_URL"] == url_of("model-sync")
    expected_mlflow = values.get("mlflow", {}).get("external", {}).get("url") or url_of("mlflow")
    assert model_sync["MODELSYNC_MLFLOW_TRACKING_URI"] == expected_mlflow
    model = "brainscan-mobilenetv2"
    assert (
        gateway["GATEWAY_MODEL_NAME"],
        inference["INFERENCE_MODEL_NAME"],
        model_sync["MODELSYNC_MODELS"],
    ) == (model, model, model)


def _settings_classes():
    from brainscan_gateway.settings import GatewaySettings
    from brainscan_inference.settings import InferenceSettings
    from brainscan_modelsync.settings import ModelSyncSettings

    return {
        "gateway": ("GATEWAY_", GatewaySettings),
        "inference": ("INFERENCE_", InferenceSettings),
        "model-sync": ("MODELSYNC_", ModelSyncSettings),
    }


def test_every_setting_the_chart_sets_is_one_the_service_reads(scenario):
    _, _, release = scenario
    for component, (prefix, settings_class) in _settings_classes().items():
        env = _env(release.deployment(component), release)
        names = {key.removeprefix(prefix).lower() for key in env if key.startswith(prefix)}
        unknown = names - set(settings_class.model_fields)
        assert not unknown, f"{component}: {sorted(unknown)} are not settings of the service"


def test_the_rendered_environment_is_accepted_by_each_service(scenario, monkeypatch, tmp_path):
    """Build each service's settings from the rendered environment, as the pod would."""
    _, _, release = scenario
    for component, (prefix, settings_class) in _settings_classes().items():
        env = {
            key: value
            for key, value in _env(release.deployment(component), release).items()
            if key.startswith(prefix)
        }
        if "GATEWAY_API_KEYS_FILE" in env:  # the mounted Secret, here a file of our own
            keys = tmp_path / "api-keys"
            keys.write_text("k" * 32 + "\n")
            env["GATEWAY_API_KEYS_FILE"] = str(keys)
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith(prefix)]:
                patch.delenv(key)
            for key, value in env.items():
                # A value from a Secret: any well-formed secret will do.
                patch.setenv(key, "s" * 32 if isinstance(value, dict) else value)
            settings = settings_class()
        assert settings.port == {"gateway": 8000, "inference": 8001, "model-sync": 8002}[component]


def test_secrets_are_referenced_by_name_from_values(releases, scenario_values):
    release = releases["external-mlflow"]
    values = scenario_values["external-mlflow"]
    env = _env(release.deployment("model-sync"), release)
    credentials = values["mlflow"]["auth"]["existingSecret"]
    for variable, key in (
        ("MLFLOW_TRACKING_USERNAME", "username"),
        ("MLFLOW_TRACKING_PASSWORD", "password"),
        ("MLFLOW_TRACKING_TOKEN", "token"),
    ):
        assert env[variable]["secretKeyRef"] == {"name": credentials, "key": key, "optional": True}
    webhook = env["MODELSYNC_WEBHOOK_SECRET"]["secretKeyRef"]
    assert webhook["name"] == values["modelSync"]["webhook"]["existingSecret"]

    gateway = releases["ingress"].deployment("gateway")
    (volume,) = [v for v in _pod_spec(gateway)["volumes"] if "secret" in v]
    assert (
        volume["secret"]["secretName"]
        == scenario_values["ingress"]["gateway"]["apiKeys"]["existingSecret"]
    )
    assert "MLFLOW_TRACKING_USERNAME" not in _env(
        releases["defaults"].deployment("model-sync"), releases["defaults"]
    )


@pytest.mark.parametrize("component", ["gateway", "inference"])
def test_the_chart_keeps_its_own_settings_over_config(component):
    """A config entry cannot point a service at another upstream than the chart wires."""
    key = {"gateway": "GATEWAY_INFERENCE_URL", "inference": "INFERENCE_MODELSYNC_URL"}[component]
    values = {component: {"config": {key: "http://elsewhere:1"}}}
    release = k8s_render.render(copy.deepcopy(values))
    assert _env(release.deployment(component), release)[key] != "http://elsewhere:1"


def test_the_prometheus_adapter_rule_serves_the_metric_the_hpa_reads(releases):
    adapter = k8s_render.load_values(
        k8s_render.CHART_DIR.parent / "monitoring/prometheus-adapter-values.yaml"
    )
    (rule,) = adapter["rules"]["custom"]
    hpa = releases["production"].get("HorizontalPodAutoscaler", "brainscan-inference")
    (pods,) = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert rule["name"]["as"] == pods["metric"]["name"]
    assert rule["seriesQuery"].startswith(pods["metric"]["name"] + "{")
    # Per pod: the HPA averages the pods' values against averageValue.
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


# --- reviewers' feedback ----------------------------------------------------------------------


def test_feedback_is_off_by_default_and_a_values_switch_gives_it_a_claim(releases):
    default = releases["defaults"]
    env = _env(default.deployment("gateway"), default)
    assert "GATEWAY_FEEDBACK_DIR" not in env
    assert not [
        c for c in default.of_kind("PersistentVolumeClaim") if "feedback" in c["metadata"]["name"]
    ]

    release = k8s_render.render({"gateway": {"feedback": {"enabled": True, "storageClass": "nfs"}}})
    assert not k8s_render.validation_errors(release.objects)
    deployment = release.deployment("gateway")
    env = _env(deployment, release)
    assert env["GATEWAY_FEEDBACK_DIR"] == "/var/lib/brainscan/feedback"
    assert env["GATEWAY_FEEDBACK_MAX_PENDING_BYTES"] == "67108864"
    (container,) = _pod_spec(deployment)["containers"]
    assert {"name": "feedback", "mountPath": "/var/lib/brainscan/feedback"} in container[
        "volumeMounts"
    ]
    [claim] = [
        c for c in release.of_kind("PersistentVolumeClaim") if "feedback" in c["metadata"]["name"]
    ]
    volume = next(v for v in _pod_spec(deployment)["volumes"] if v["name"] == "feedback")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every replica writes to it
    assert claim["spec"]["storageClassName"] == "nfs"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    existing = k8s_render.render(
        {"gateway": {"feedback": {"enabled": True, "existingClaim": "reviews"}}}
    )
    assert not [
        c for c in existing.of_kind("PersistentVolumeClaim") if "feedback" in c["metadata"]["name"]
    ]
    volume = next(
        v for v in _pod_spec(existing.deployment("gateway"))["volumes"] if v["name"] == "feedback"
    )
    assert volume["persistentVolumeClaim"]["claimName"] == "reviews"
