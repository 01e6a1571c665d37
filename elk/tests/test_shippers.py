"""Filebeat and Metricbeat for Kubernetes and compose, and the compose `elk` profile: valid
Kubernetes objects, configurations that parse, one pinned Elastic version, memory set."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml
from elk_inputs import ELK_DIR, REPO

K8S_DIR = ELK_DIR / "kubernetes"
KUBE_VERSION = "1.32"
ELASTIC_IMAGE = re.compile(r"^docker\.elastic\.co/[a-z]+/[a-z]+:(\d+\.\d+\.\d+)$")


def k8s_objects() -> list[dict]:
    objects = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def compose() -> dict:
    return yaml.safe_load((ELK_DIR / "compose.elk.yml").read_text())


def images() -> list[str]:
    found = [service["image"] for service in compose()["services"].values()]
    for obj in k8s_objects():
        if obj["kind"] in ("DaemonSet", "Deployment"):
            found += [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]
    return found


@pytest.mark.parametrize("obj", k8s_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_kubernetes_objects_are_valid(obj):
    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_every_namespaced_object_is_in_the_logging_namespace():
    kinds = {obj["kind"] for obj in k8s_objects()}
    assert {"DaemonSet", "Deployment", "ConfigMap", "ClusterRole", "Namespace"} <= kinds
    for obj in k8s_objects():
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "logging", obj["metadata"]["name"]


def test_workloads_are_bounded_and_locked_down():
    for obj in k8s_objects():
        if obj["kind"] not in ("DaemonSet", "Deployment"):
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec["containers"]:
            assert container["resources"]["limits"]["memory"]
            assert container["resources"]["requests"]["cpu"]
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]


def embedded_config(name: str, key: str) -> dict:
    (config_map,) = [
        o for o in k8s_objects() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name
    ]
    return yaml.safe_load(config_map["data"][key])


def test_filebeat_follows_the_pods_of_the_helm_chart():
    config = embedded_config("filebeat-config", "filebeat.yml")
    (provider,) = config["filebeat.autodiscover"]["providers"]
    assert provider["type"] == "kubernetes"
    (template,) = provider["templates"]
    label = template["condition"]["equals"]
    assert label == {"kubernetes.labels.app_kubernetes_io/part-of": "brainscan"}
    # The chart puts that label on every pod (componentLabels includes brainscan.labels).
    helpers = (REPO / "helm" / "brainscan" / "templates" / "_helpers.tpl").read_text()
    assert "app.kubernetes.io/part-of: brainscan" in helpers
    (input_config,) = template["config"]
    assert input_config["type"] == "filestream"
    assert input_config["parsers"] == [{"container": {"stream": "all", "format": "auto"}}]
    assert config["output.logstash"]["hosts"] == ["${LOGSTASH_HOSTS}"]


def test_the_shippers_send_to_the_pipeline_beats_port(pipeline):
    port = pipeline.input_options("beats")["port"]
    for obj in k8s_objects():
        if obj["kind"] in ("DaemonSet", "Deployment"):
            (container,) = obj["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["LOGSTASH_HOSTS"].endswith(f":{port}")
    assert compose()["services"]["filebeat"]["environment"]["LOGSTASH_HOSTS"].endswith(f":{port}")


def test_metricbeat_watches_kubernetes_events():
    config = embedded_config("metricbeat-events-config", "metricbeat.yml")
    (module,) = config["metricbeat.modules"]
    assert module["module"] == "kubernetes" and module["metricsets"] == ["event"]
    (deployment,) = [o for o in k8s_objects() if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1  # each event once


def test_compose_filebeat_config_picks_the_service_containers():
    config = yaml.safe_load((ELK_DIR / "filebeat" / "filebeat-compose.yml").read_text())
    (provider,) = config["filebeat.autodiscover"]["providers"]
    (template,) = provider["templates"]
    pattern = template["condition"]["regexp"]["docker.container.labels.com_docker_compose_service"]
    for service in ("gateway", "inference", "model-sync"):
        assert re.fullmatch(pattern, service)
    for other in ("elasticsearch", "logstash", "mlflow"):
        assert not re.fullmatch(pattern, other)


def test_one_pinned_elastic_version_everywhere():
    versions = set()
    for image in images():
        match = ELASTIC_IMAGE.match(image)
        assert match, f"{image} is not a pinned Elastic image"
        versions.add(match[1])
    assert len(versions) == 1, versions
    (version,) = versions
    assert (
        f'"version": "{version}"'
        in (ELK_DIR / "samples" / "metricbeat-kubernetes-events.json").read_text()
    )


def test_compose_profile_services_have_memory_and_existing_mounts():
    services = compose()["services"]
    assert set(services) == {"elasticsearch", "elk-setup", "kibana", "logstash", "filebeat"}
    for name, service in services.items():
        assert service["profiles"] == ["elk"], name
        assert service["mem_limit"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    for port in [p for s in services.values() for p in s.get("ports", [])]:
        assert port.startswith("127.0.0.1:"), port
    assert "-Xmx1g" in services["elasticsearch"]["environment"]["ES_JAVA_OPTS"]
    assert "-Xmx512m" in services["logstash"]["environment"]["LS_JAVA_OPTS"]


def test_the_profile_merges_with_the_stack_compose_file():
    stack = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    elk = compose()
    assert not set(stack["services"]) & set(elk["services"])
    assert not set(stack.get("volumes", {})) & set(elk["volumes"])
    for service in elk["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "/")):
                assert source in elk["volumes"], source
    # Filebeat's container filter names the stack's services as docker-compose.yml does.
    config = yaml.safe_load((ELK_DIR / "filebeat" / "filebeat-compose.yml").read_text())
    (template,) = config["filebeat.autodiscover"]["providers"][0]["templates"]
    pattern = template["condition"]["regexp"]["docker.container.labels.com_docker_compose_service"]
    shipped = {name for name in stack["services"] if re.fullmatch(pattern, name)}
    assert shipped == {"gateway", "inference", "model-sync"}
