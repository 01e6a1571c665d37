"""ansible/scripts/write_vault.py: kubeconfigs flattened to one context with certificates embedded,
secrets from the environment, a private password file, and a vault Ansible opens."""

from __future__ import annotations

import base64
import importlib.util
import stat
import sys

import pytest
import yaml
from ansible_paths import ANSIBLE_DIR

SCRIPT = ANSIBLE_DIR / "scripts/write_vault.py"

_SPEC = importlib.util.spec_from_file_location("ansible_write_vault", SCRIPT)
write_vault = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(write_vault)

CA = b"-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
CLIENT_CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
CLIENT_KEY = b"-----BEGIN TEST KEY-----\nKEY\n-----END TEST KEY-----\n"


@pytest.fixture
def minikube_kubeconfig(tmp_path):
    """A kubeconfig as minikube writes it: certificates as paths, a second unrelated context."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "ca.crt").write_bytes(CA)
    (tmp_path / "profiles/client.crt").write_bytes(CLIENT_CERT)
    (tmp_path / "profiles/client.key").write_bytes(CLIENT_KEY)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "other",
        "contexts": [
            {"name": "minikube", "context": {"cluster": "minikube", "user": "minikube"}},
            {"name": "other", "context": {"cluster": "other", "user": "other"}},
        ],
        "clusters": [
            {
                "name": "minikube",
                "cluster": {
                    "server": "https://192.168.49.2:8443",
                    "certificate-authority": str(tmp_path / "ca.crt"),
                },
            },
            {"name": "other", "cluster": {"server": "https://10.1.1.1"}},
        ],
        "users": [
            {
                "name": "minikube",
                "user": {
                    "client-certificate": "profiles/client.crt",
                    "client-key": "profiles/client.key",
                },
            },
            {"name": "other", "user": {"token": "other-token"}},
        ],
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    return path


def test_flatten_embeds_every_file_and_keeps_one_context(minikube_kubeconfig):
    config = yaml.safe_load(minikube_kubeconfig.read_text())
    flat = write_vault.flatten_kubeconfig(config, minikube_kubeconfig.parent, "minikube")
    assert flat["current-context"] == "minikube"
    assert [c["name"] for c in flat["clusters"]] == ["minikube"]
    assert [u["name"] for u in flat["users"]] == ["minikube"]
    cluster = flat["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == CA
    assert "certificate-authority" not in cluster
    user = flat["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == CLIENT_CERT
    assert base64.b64decode(user["client-key-data"]) == CLIENT_KEY
    assert not {"client-certificate", "client-key"} & set(user)


def test_flatten_names_a_missing_context_or_file(minikube_kubeconfig):
    config = yaml.safe_load(minikube_kubeconfig.read_text())
    with pytest.raises(write_vault.VaultInputError, match="'kind-brainscan' is not in"):
        write_vault.flatten_kubeconfig(config, minikube_kubeconfig.parent, "kind-brainscan")
    (minikube_kubeconfig.parent / "ca.crt").unlink()
    with pytest.raises(write_vault.VaultInputError, match=r"ca\.crt does not exist"):
        write_vault.flatten_kubeconfig(config, minikube_kubeconfig.parent, "minikube")


def test_flatten_refuses_a_login_plugin(minikube_kubeconfig):
    config = yaml.safe_load(minikube_kubeconfig.read_text())
    config["users"][1]["user"] = {"exec": {"command": "aws"}}
    with pytest.raises(write_vault.VaultInputError, match="exec/auth-provider"):
        write_vault.flatten_kubeconfig(config, minikube_kubeconfig.parent, None)


def test_a_short_webhook_secret_is_refused():
    with pytest.raises(write_vault.VaultInputError, match="16 characters"):
        write_vault.vault_variables({}, {"BRAINSCAN_WEBHOOK_SECRET": "short"})


def _write_vault(run_ansible, *args):
    return run_ansible(sys.executable, SCRIPT, *[str(a) for a in args])


def test_the_script_writes_a_vault_ansible_opens(
    minikube_kubeconfig, tmp_path, run_ansible, ansible_env, monkeypatch
):
    monkeypatch.setitem(ansible_env, "BRAINSCAN_REGISTRY_USERNAME", "someone")
    monkeypatch.setitem(ansible_env, "BRAINSCAN_REGISTRY_PASSWORD", "dckr_pat_example")
    monkeypatch.setitem(ansible_env, "BRAINSCAN_GATEWAY_API_KEYS", "k1, k2,")
    monkeypatch.delitem(ansible_env, "BRAINSCAN_MLFLOW_USERNAME", raising=False)
    password_file = tmp_path / "secrets/vault-local.pass"
    out = tmp_path / "vault.yml"
    args = ("local", "--kubeconfig", minikube_kubeconfig, "--context", "minikube",
            "--password-file", password_file, "--out", out)  # fmt: skip
    result = _write_vault(run_ansible, *args)
    assert result.returncode == 0, result.stderr
    # The password file was made: random, readable by its owner only.
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_bytes().strip()
    assert len(password) >= 32
    assert out.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;local\n")

    opened = run_ansible("ansible-vault", "view", "--vault-id", f"local@{password_file}", out)
    assert opened.returncode == 0, opened.stderr
    variables = yaml.safe_load(opened.stdout)
    assert variables["vault_brainscan_registry_username"] == "someone"
    assert variables["vault_brainscan_registry_password"] == "dckr_pat_example"
    assert variables["vault_brainscan_mlflow_username"] == ""
    assert variables["vault_brainscan_gateway_api_keys"] == ["k1", "k2"]
    kubeconfig = yaml.safe_load(variables["vault_brainscan_kubeconfig"])
    assert kubeconfig["current-context"] == "minikube"
    assert "client-key-data" in kubeconfig["users"][0]["user"]

    # A second run keeps the password (the file exists) and replaces the vault.
    assert _write_vault(run_ansible, *args).returncode == 0
    assert password_file.read_bytes().strip() == password


def test_the_script_reports_an_unusable_kubeconfig(tmp_path, run_ansible):
    result = _write_vault(
        run_ansible, "local", "--kubeconfig", tmp_path / "absent",
        "--out", tmp_path / "v.yml", "--password-file", tmp_path / "p",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("write_vault: ")
    assert not (tmp_path / "v.yml").exists()
    assert not (tmp_path / "p").exists()
