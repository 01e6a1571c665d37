"""values.schema.json: every scenario passes, and each kind of bad values file is refused by Helm
with a message naming the key."""

from __future__ import annotations

import helm_python as helm
import k8s_render
import pytest
import yaml

BAD_VALUES = {
    "misspelt top-level key": ("gatewya:\n  replicaCount: 2\n", "gatewya"),
    "misspelt nested key": ("inference:\n  autoscalling:\n    enabled: false\n", "autoscalling"),
    "root user": ("podSecurityContext:\n  runAsUser: 0\n", "/podSecurityContext/runAsUser"),
    "runAsNonRoot off": (
        "containerSecurityContext:\n  runAsNonRoot: false\n",
        "/containerSecurityContext/runAsNonRoot",
    ),
    "privilege escalation": (
        "containerSecurityContext:\n  allowPrivilegeEscalation: true\n",
        "allowPrivilegeEscalation",
    ),
    "a capability added": (
        "containerSecurityContext:\n  capabilities:\n    add: [NET_ADMIN]\n",
        "/containerSecurityContext/capabilities/add",
    ),
    "CPU request removed": (
        "gateway:\n  resources:\n    requests:\n      cpu: null\n",
        "/gateway/resources/requests",
    ),
    "memory limit not a quantity": (
        "inference:\n  resources:\n    limits:\n      memory: lots\n",
        "/inference/resources/limits/memory",
    ),
    "replica count as text": ("gateway:\n  replicaCount: two\n", "/gateway/replicaCount"),
    "CPU target above 100 %": (
        "inference:\n  autoscaling:\n    targetCPUUtilizationPercentage: 150\n",
        "targetCPUUtilizationPercentage",
    ),
    "external MLflow without a URL": ("mlflow:\n  enabled: false\n", "/mlflow/external/url"),
    "MLflow URL without a scheme": (
        "mlflow:\n  enabled: false\n  external:\n    url: mlflow.example.org\n",
        "/mlflow/external/url",
    ),
    "digest that is not sha256": (
        "gateway:\n  image:\n    digest: latest\n",
        "/gateway/image/digest",
    ),
    "setting of another service": (
        "gateway:\n  config:\n    INFERENCE_PORT: '1'\n",
        "INFERENCE_PORT",
    ),
    "setting given as a number": (
        "inference:\n  config:\n    INFERENCE_MAX_BATCH_SIZE: 8\n",
        "/inference/config/INFERENCE_MAX_BATCH_SIZE",
    ),
    "webhook on without its secret": (
        "modelSync:\n  webhook:\n    enabled: true\n",
        "/modelSync/webhook/existingSecret",
    ),
    "ingress on without a host": ("ingress:\n  enabled: true\n  hosts: []\n", "/ingress/hosts"),
    "unknown pull policy": ("mlflow:\n  image:\n    pullPolicy: Sometimes\n", "pullPolicy"),
    "monitoring switch as text": (
        "monitoring:\n  prometheusRule:\n    enabled: 'yes'\n",
        "/monitoring/prometheusRule/enabled",
    ),
    "misspelt monitoring key": (
        "monitoring:\n  prometheusRules:\n    enabled: true\n",
        "prometheusRules",
    ),
    "rules ConfigMap namespace not a DNS label": (
        "monitoring:\n  alertRulesConfigMap:\n    namespace: Monitoring\n",
        "/monitoring/alertRulesConfigMap/namespace",
    ),
    "PodMonitor interval without a unit": (
        "monitoring:\n  podMonitor:\n    interval: '30'\n",
        "/monitoring/podMonitor/interval",
    ),
    "training job on without a data claim": (
        "training:\n  job:\n    enabled: true\n",
        "/training/data/existingClaim",
    ),
    "training retrains on without a data claim": (
        "training:\n  cronJob:\n    enabled: true\n",
        "/training/data/existingClaim",
    ),
    "training job switch as text": (
        "training:\n  job:\n    enabled: 'yes'\n",
        "/training/job/enabled",
    ),
    "negative training backoff": (
        "training:\n  job:\n    backoffLimit: -1\n",
        "/training/job/backoffLimit",
    ),
    "misspelt training key": ("training:\n  dataClaim: mri\n", "dataClaim"),
    "training params that move the data source": (
        "training:\n  params:\n    data.source_dir: /elsewhere\n",
        "invalid propertyName 'data.source_dir'",
    ),
    "training params given as a section": (
        "training:\n  params:\n    profiles:\n      quick: {}\n",
        "/training/params/profiles",
    ),
    "cron schedule with three fields": (
        "training:\n  cronJob:\n    schedule: '0 3 *'\n",
        "/training/cronJob/schedule",
    ),
    "training data claim not a name": (
        "training:\n  data:\n    existingClaim: My_Claim\n",
        "/training/data/existingClaim",
    ),
    "training data sub-path leaving the claim": (
        "training:\n  data:\n    subPath: ../etc\n",
        "/training/data/subPath",
    ),
    "training without memory limit": (
        "training:\n  resources:\n    limits:\n      memory: null\n",
        "/training/resources/limits",
    ),
    "probe without its switch": (
        "gateway:\n  probes:\n    readiness:\n      enabled: null\n",
        "/gateway/probes/readiness",
    ),
}


@pytest.mark.parametrize("name", sorted(k8s_render.scenarios()))
def test_every_scenario_satisfies_the_schema(name, scenario_values):
    with helm.Chart.load(str(k8s_render.CHART_DIR)) as chart:
        chart.validate_schema(scenario_values[name])


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_bad_values_file_is_refused_with_the_key_named(case, tmp_path):
    text, named = BAD_VALUES[case]
    values_file = tmp_path / "values.yaml"
    values_file.write_text(text)
    with pytest.raises(helm.HelmError) as refused:
        k8s_render.render(k8s_render.load_values(values_file))
    message = str(refused.value)
    assert "schema" in message
    assert named in message


def test_the_schema_knows_every_key_of_the_default_values():
    """values.yaml and the schema move together: the defaults are checked key by key."""
    values = yaml.safe_load((k8s_render.CHART_DIR / "values.yaml").read_text())
    with helm.Chart.load(str(k8s_render.CHART_DIR)) as chart:
        chart.validate_schema(values)
        assert chart.schema is not None
