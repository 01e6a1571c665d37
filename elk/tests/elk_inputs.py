"""Paths of the ELK configuration, the gateway's out-of-distribution and shadow fields, and the
envelope Filebeat puts around a container log line."""

from __future__ import annotations

from pathlib import Path

ELK_DIR = Path(__file__).resolve().parents[1]
REPO = ELK_DIR.parent
PIPELINE = ELK_DIR / "logstash" / "pipeline" / "brainscan.conf"
DEAD_LETTERS = ELK_DIR / "logstash" / "pipeline" / "dead_letters.conf"
SAVED_OBJECTS = ELK_DIR / "kibana" / "saved_objects.ndjson"
METRICBEAT_SAMPLES = ELK_DIR / "samples" / "metricbeat-kubernetes-events.json"
# What the gateway logs of the guard's verdict (issue 12); none of it when the model has no guard.
OOD_FIELDS = frozenset(
    {
        "prediction.in_distribution",
        "prediction.ood_score",
        "prediction.ood_threshold",
        "prediction.ood_reason",
        "prediction.assessed",
    }
)
# What the gateway logs of one comparison with the challenger in shadow (issue 15), by the JSON
# type each must keep on its way to Elasticsearch.
SHADOW_FIELDS: dict[str, type] = {
    "brainscan.shadow.agreed": bool,
    "brainscan.shadow.champion.label": str,
    "brainscan.shadow.champion.confidence": float,
    "brainscan.shadow.champion.in_distribution": bool,
    "brainscan.shadow.champion.latency_ms": float,
    "brainscan.shadow.challenger.version": str,
    "brainscan.shadow.challenger.label": str,
    "brainscan.shadow.challenger.confidence": float,
    "brainscan.shadow.challenger.in_distribution": bool,
    "brainscan.shadow.challenger.latency_ms": float,
}
# Containers as the Helm chart names them (app.kubernetes.io/component).
CONTAINERS = {"gateway": "gateway", "inference": "inference", "model-sync": "model-sync"}


def filebeat_envelope(line: str, service: str, offset: int) -> dict:
    """What Filebeat (Kubernetes autodiscover, filestream + container parser) sends for one
    stdout line of a brainscan pod: the line in `message` and the pod's metadata."""
    container = CONTAINERS[service]
    pod = f"brainscan-{container}-7c9f8d6b5-x2k8q"
    log_file = f"/var/log/containers/{pod}_brainscan_{container}-0a1b.log"
    image = f"brainscan/{container}:0.1.0"
    agent = {"type": "filebeat", "version": "8.19.20", "name": "node-1", "id": "a1"}
    return {
        "@timestamp": "2026-11-26T10:00:00.000Z",
        "message": line,
        "stream": "stdout",
        "input": {"type": "filestream"},
        "log": {"file": {"path": log_file}, "offset": offset},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "node-1"},
        "agent": {**agent, "ephemeral_id": "e1"},
        "container": {"id": "0a1b2c3d", "runtime": "containerd", "image": {"name": image}},
        "kubernetes": {
            "namespace": "brainscan",
            "node": {"name": "node-1"},
            "pod": {"name": pod, "uid": "9a0b1c2d-3e4f", "ip": "10.42.0.17"},
            "container": {"name": container},
            "deployment": {"name": f"brainscan-{container}"},
            "replicaset": {"name": f"brainscan-{container}-7c9f8d6b5"},
            "labels": {
                "app_kubernetes_io/part-of": "brainscan",
                "app_kubernetes_io/component": container,
            },
        },
    }
