"""The role's templating tasks run for real on localhost (the deploy playbook with --tags values)
for each environment, with the test vault; the values files they write render, through Helm's
engine, into a release that validates strictly and is what the environment asked for."""

from __future__ import annotations

import re

import k8s_render
import pytest
import yaml
from ansible_paths import ANSIBLE_DIR, ENVIRONMENTS, ROLE_DIR


def _environment_vars(environment: str) -> dict:
    path = ANSIBLE_DIR / "inventories" / environment / "group_vars/brainscan/main.yml"
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def rendered(request, run_ansible, test_inventories, vault_id, tmp_path_factory):
    """Run the role's values tasks for one environment; its values files and their release."""
    environment = request.param
    work_dir = tmp_path_factory.mktemp(f"values-{environment}")
    command = (
        "ansible-playbook", "playbooks/deploy.yml",
        "-i", test_inventories[environment],
        "--vault-id", vault_id,
        "--tags", "values",
        "-e", f"brainscan_deploy_work_dir={work_dir}",
    )  # fmt: skip
    first = run_ansible(*command)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_ansible(*command)
    assert second.returncode == 0, second.stdout + second.stderr
    values_file = work_dir / "brainscan-values.yaml"
    extra_file = work_dir / "brainscan-extra-values.yaml"
    values = k8s_render.merge_values(
        k8s_render.load_values(values_file), k8s_render.load_values(extra_file)
    )
    return {
        "environment": environment,
        "files": (values_file, extra_file),
        "values": values,
        "release": k8s_render.render(values),
        "runs": (first.stdout, second.stdout),
    }


def test_only_the_templating_tasks_ran_and_a_second_run_changes_nothing(rendered):
    first, second = rendered["runs"]
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=[1-9]", first)
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", second)
    for step in ("Ensure the namespace", "Create the image pull Secret", "Install or upgrade"):
        assert step not in first


def test_the_values_files_are_private_and_hold_no_secret(rendered, run_ansible, vault_id):
    from ansible_paths import TEST_VAULT

    opened = run_ansible("ansible-vault", "view", "--vault-id", vault_id, TEST_VAULT)
    secrets = yaml.safe_load(opened.stdout)
    secret_values = [
        secrets["vault_brainscan_registry_password"],
        secrets["vault_brainscan_mlflow_password"],
        secrets["vault_brainscan_webhook_secret"],
        *secrets["vault_brainscan_gateway_api_keys"],
        "certificate-authority-data",
        "token",
    ]
    for path in rendered["files"]:
        text = path.read_text()
        assert oct(path.stat().st_mode & 0o777) == "0o640"
        for secret in secret_values:
            assert secret not in text, f"{secret!r} leaked into {path.name}"


def test_the_release_validates_strictly_on_each_supported_kubernetes(rendered):
    assert k8s_render.validation_errors(rendered["release"].objects) == []


def test_images_are_the_environment_ones(rendered):
    defaults = yaml.safe_load((ROLE_DIR / "defaults/main.yml").read_text())
    chosen = defaults | _environment_vars(rendered["environment"])
    registry = chosen["brainscan_deploy_image_registry"]
    tag = chosen["brainscan_deploy_initial_image_tag"]  # no release read: as a first install
    for deployment in rendered["release"].of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        repository = chosen["brainscan_deploy_image_repositories"][component.replace("-", "_")]
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == f"{registry}/{repository}:{tag}"
        pull_secrets = deployment["spec"]["template"]["spec"]["imagePullSecrets"]
        # The test vault has registry credentials, so the pull Secret is used.
        assert pull_secrets == [{"name": "brainscan-registry"}]


def test_secrets_made_by_the_role_are_the_ones_the_chart_references(rendered):
    release = rendered["release"]
    model_sync = release.deployment("model-sync")["spec"]["template"]["spec"]["containers"][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in model_sync["env"]
        if "valueFrom" in e
    }
    assert refs["MODELSYNC_WEBHOOK_SECRET"] == "brainscan-model-sync-webhook"
    assert refs["MLFLOW_TRACKING_USERNAME"] == "brainscan-mlflow-credentials"
    gateway = release.deployment("gateway")["spec"]["template"]["spec"]
    secret_volumes = [v["secret"]["secretName"] for v in gateway["volumes"] if "secret" in v]
    assert secret_volumes == ["brainscan-gateway-api-keys"]


def test_the_environment_shape(rendered):
    release = rendered["release"]
    environment_vars = _environment_vars(rendered["environment"])
    hpas = {h["metadata"]["name"]: h["spec"] for h in release.of_kind("HorizontalPodAutoscaler")}
    gateway_replicas = environment_vars["brainscan_deploy_gateway_replicas"]
    assert hpas["brainscan-gateway"]["minReplicas"] == gateway_replicas["min"]
    assert hpas["brainscan-gateway"]["maxReplicas"] == gateway_replicas["max"]
    pods_metrics = [m for m in hpas["brainscan-inference"]["metrics"] if m["type"] == "Pods"]
    if rendered["environment"] == "local":
        assert "brainscan-mlflow" in release.names("Deployment")
        assert release.of_kind("Ingress") == []
        assert pods_metrics == []
        inference = release.deployment("inference")["spec"]["template"]["spec"]["containers"][0]
        assert inference["resources"]["requests"]["cpu"] == "250m"
        config = release.get("ConfigMap", "brainscan-inference")["data"]
        assert config["INFERENCE_INTRA_OP_THREADS"] == "1"  # from the extra values file
    else:
        assert "brainscan-mlflow" not in release.names("Deployment")
        config = release.get("ConfigMap", "brainscan-model-sync")["data"]
        assert (
            config["MODELSYNC_MLFLOW_TRACKING_URI"]
            == environment_vars["brainscan_deploy_mlflow_external_url"]
        )
        (ingress,) = release.of_kind("Ingress")
        host = environment_vars["brainscan_deploy_ingress_host"]
        assert ingress["spec"]["rules"][0]["host"] == host
        assert ingress["spec"]["tls"][0]["secretName"] == "brainscan-tls"
        assert [m["pods"]["metric"]["name"] for m in pods_metrics] == [
            "brainscan_inference_queue_depth"
        ]
