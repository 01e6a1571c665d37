"""What the role would send to a cluster, computed by Ansible from each inventory and the test
vault (tests/role_expressions.yml): Secret contents, the smoke script, the rollouts waited for."""

from __future__ import annotations

import re

import pytest
import yaml
from ansible_paths import ENVIRONMENTS


def _run(run_ansible, inventory, vault_id, work_dir, *extra):
    result = run_ansible(
        "ansible-playbook", "tests/role_expressions.yml",
        "-i", inventory, "--vault-id", vault_id,
        "-e", f"brainscan_deploy_work_dir={work_dir}", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def computed(request, run_ansible, test_inventories, vault_id, tmp_path_factory):
    environment = request.param
    work_dir = tmp_path_factory.mktemp(f"expressions-{environment}")
    result = _run(run_ansible, test_inventories[environment], vault_id, work_dir)
    return environment, work_dir, result.stdout


def test_secret_contents_pass_their_checks_and_stay_out_of_the_output(computed):
    _, _, output = computed
    assert re.search(r"failed=0", output)
    for secret in ("test-only-registry-token", "test-only-mlflow-password", "test-only-key-1"):
        assert secret not in output


def test_the_smoke_script_is_python_asking_a_gateway_route(computed):
    from brainscan_gateway.app import create_app
    from brainscan_gateway.settings import GatewaySettings

    _, work_dir, _ = computed
    script = (work_dir / "smoke_script.py").read_text()
    compile(script, "smoke_script.py", "exec")
    (url,) = re.findall(r'"(http://[^"]+)"', script)
    assert url.startswith("http://127.0.0.1:8000/")  # the gateway container's own port
    path = url.removeprefix("http://127.0.0.1:8000")
    assert "get" in create_app(GatewaySettings()).openapi()["paths"][path]
    assert '"X-API-Key": "test-only-key-1"' in script  # the test vault has API keys


def test_rollouts_waited_for(computed):
    environment, work_dir, _ = computed
    waits = yaml.safe_load((work_dir / "waits.yml").read_text())
    expected = ["gateway", "inference", "model-sync"] + (
        ["mlflow"] if environment == "local" else []
    )
    assert waits == {"deployments": expected, "fullname": "brainscan"}


def test_bootstrap_waits_for_mlflow_alone(run_ansible, test_inventories, vault_id, tmp_path):
    _run(run_ansible, test_inventories["local"], vault_id, tmp_path,
         "-e", "brainscan_deploy_bootstrap=true")  # fmt: skip
    waits = yaml.safe_load((tmp_path / "waits.yml").read_text())
    assert waits["deployments"] == ["mlflow"]
