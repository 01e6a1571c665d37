"""Who may talk to whom under the rendered NetworkPolicies, evaluated as Kubernetes defines them."""

from __future__ import annotations

import itertools

import k8s_network
import k8s_render
import pytest
from k8s_network import Endpoint

COMPONENT_PORTS = {"gateway": 8000, "inference": 8001, "model-sync": 8002, "mlflow": 5000}

OUTSIDE_POD = Endpoint("a pod of another namespace", "elsewhere", {"app": "client"})
INTERNET = Endpoint("a client outside the cluster", None, ip="198.51.100.7")
INGRESS_CONTROLLER = Endpoint(
    "the ingress controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
)
PROMETHEUS = Endpoint("Prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
DNS = Endpoint("CoreDNS", "kube-system", {"k8s-app": "kube-dns"}, ports={53: "dns-tcp"})
EXTERNAL_MLFLOW = Endpoint("the external MLflow", None, ip="203.0.113.10", ports={443: "https"})


def _pods(release: k8s_render.RenderedRelease) -> dict[str, Endpoint]:
    pods = {}
    for deployment in release.of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        ports = {
            port["containerPort"]: port["name"]
            for container in deployment["spec"]["template"]["spec"]["containers"]
            for port in container["ports"]
        }
        pods[component] = Endpoint(component, k8s_render.NAMESPACE, labels, ports=ports)
    return pods


def _allows(release, source, destination, port=None) -> bool:
    port = port if port is not None else next(iter(destination.ports))
    return k8s_network.allows(release.of_kind("NetworkPolicy"), source, destination, port)


def test_every_pod_is_selected_by_a_policy(scenario):
    _, _, release = scenario
    policies = release.of_kind("NetworkPolicy")
    for component, pod in _pods(release).items():
        selecting = [
            p
            for p in policies
            if k8s_network.selector_matches(p["spec"]["podSelector"], pod.labels)
        ]
        assert len(selecting) == 1, component
        assert set(selecting[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_components_reach_only_their_upstream(releases):
    release = releases["defaults"]
    pods = _pods(release)
    allowed = {("gateway", "inference"), ("inference", "model-sync"), ("model-sync", "mlflow")}
    for source, destination in itertools.permutations(pods, 2):
        expected = (source, destination) in allowed
        assert _allows(release, pods[source], pods[destination]) is expected, (
            f"{source} -> {destination}"
        )


@pytest.mark.parametrize("outsider", [OUTSIDE_POD, INTERNET], ids=lambda e: e.name)
def test_only_the_gateway_is_reachable_from_outside_the_release(releases, outsider):
    release = releases["defaults"]
    pods = _pods(release)
    reachable = {c for c, pod in pods.items() if _allows(release, outsider, pod)}
    assert reachable == {"gateway"}


def test_only_model_sync_reaches_mlflow(releases):
    release = releases["defaults"]
    pods = _pods(release)
    everyone = [*pods.values(), OUTSIDE_POD, INTERNET, INGRESS_CONTROLLER, PROMETHEUS]
    others = [e for e in everyone if e is not pods["mlflow"]]
    sources = {e.name for e in others if _allows(release, e, pods["mlflow"])}
    assert sources == {"model-sync"}


def test_with_an_ingress_only_the_controller_reaches_the_gateway(releases):
    release = releases["ingress"]
    gateway = _pods(release)["gateway"]
    assert _allows(release, INGRESS_CONTROLLER, gateway)
    assert not _allows(release, OUTSIDE_POD, gateway)
    assert not _allows(release, INTERNET, gateway)
    assert _allows(release, PROMETHEUS, gateway)


def test_prometheus_scrapes_the_services_but_not_mlflow(releases):
    release = releases["defaults"]
    pods = _pods(release)
    for component in ("gateway", "inference", "model-sync"):
        assert _allows(release, PROMETHEUS, pods[component]), component
    assert not _allows(release, PROMETHEUS, pods["mlflow"])


def test_every_pod_resolves_names(scenario):
    _, _, release = scenario
    for component, pod in _pods(release).items():
        assert _allows(release, pod, DNS, 53), component


def test_no_pod_of_the_release_reaches_the_internet(releases):
    release = releases["defaults"]
    for component, pod in _pods(release).items():
        assert not _allows(release, pod, EXTERNAL_MLFLOW, 443), component


def test_an_external_mlflow_is_reached_by_model_sync_alone(releases):
    release = releases["external-mlflow"]
    pods = _pods(release)
    assert "mlflow" not in pods
    assert _allows(release, pods["model-sync"], EXTERNAL_MLFLOW, 443)
    elsewhere = Endpoint("another address", None, ip="198.51.100.20", ports={443: "https"})
    assert not _allows(release, pods["model-sync"], elsewhere, 443)
    for component in ("gateway", "inference"):
        assert not _allows(release, pods[component], EXTERNAL_MLFLOW, 443), component


def test_in_chart_mlflow_delivers_webhooks_only_when_they_are_on(releases):
    defaults = releases["defaults"]
    pods = _pods(defaults)
    assert not _allows(defaults, pods["mlflow"], pods["model-sync"])
    production = releases["production"]
    pods = _pods(production)
    assert _allows(production, pods["mlflow"], pods["model-sync"])


def test_policies_can_be_switched_off():
    release = k8s_render.render({"networkPolicy": {"enabled": False}})
    assert release.of_kind("NetworkPolicy") == []
    assert "WARNING: networkPolicy.enabled is false" in release.notes
