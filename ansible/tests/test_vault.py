"""Ansible Vault: the CI test vault opens with its test password and holds what the inventories
expect; every real vault is encrypted; no other vault password is in the repository.

Vaults are opened with the ansible-vault command, as an operator would (and because pytest's
importlib mode would take this repository's ansible/ folder for the `ansible` package).
"""

from __future__ import annotations

import base64
import re
import subprocess

import pytest
import yaml
from ansible_paths import ANSIBLE_DIR, ENVIRONMENTS, REPO_DIR, TEST_VAULT, TEST_VAULT_PASSWORD


def _expected_vault_variables() -> set[str]:
    """The vault_* variables the inventories' plain variable files refer to."""
    names = set()
    for environment in ENVIRONMENTS:
        main = ANSIBLE_DIR / "inventories" / environment / "group_vars/brainscan/main.yml"
        text = main.read_text()
        names |= set(re.findall(r"\b(vault_[a-z0-9_]+)\b", text))
    return names


@pytest.fixture(scope="module")
def test_vault(run_ansible, vault_id) -> dict:
    """The test vault's variables, decrypted with the test password."""
    result = run_ansible("ansible-vault", "view", "--vault-id", vault_id, TEST_VAULT)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_test_vault_holds_exactly_the_variables_the_inventories_use(test_vault):
    expected = _expected_vault_variables()
    assert expected >= {
        "vault_brainscan_kubeconfig",
        "vault_brainscan_registry_username",
        "vault_brainscan_registry_password",
        "vault_brainscan_mlflow_username",
        "vault_brainscan_mlflow_password",
    }
    assert set(test_vault) == expected


def test_the_test_vault_kubeconfig_embeds_its_certificate(test_vault):
    kubeconfig = yaml.safe_load(test_vault["vault_brainscan_kubeconfig"])
    (cluster,) = kubeconfig["clusters"]
    assert "certificate-authority" not in cluster["cluster"]
    pem = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    for user in kubeconfig["users"]:
        assert not {"client-certificate", "client-key"} & set(user["user"])


def test_the_test_vault_is_refused_with_another_password(run_ansible, tmp_path):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    result = run_ansible("ansible-vault", "view", "--vault-id", f"test@{wrong}", TEST_VAULT)
    assert result.returncode != 0
    assert "Decryption failed" in result.stderr
    assert "vault_brainscan" not in result.stdout


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_vault_is_encrypted_under_its_own_vault_id(
    environment, run_ansible, vault_id
):
    vault = ANSIBLE_DIR / "inventories" / environment / "group_vars/brainscan/vault.yml"
    header = vault.read_text().splitlines()[0]
    assert header == f"$ANSIBLE_VAULT;1.2;AES256;{environment}"
    # The test password opens the test vault only.
    result = run_ansible("ansible-vault", "view", "--vault-id", vault_id, vault)
    assert result.returncode != 0


def test_no_vault_password_but_the_test_one_is_tracked():
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    password_like = [
        path
        for path in tracked
        if re.search(r"(vault[-_.]?pass|\.pass$|vault.*password|password.*vault)", path, re.I)
    ]
    assert password_like == [str(TEST_VAULT_PASSWORD.relative_to(REPO_DIR))]


def test_no_plain_file_under_ansible_assigns_a_vault_variable():
    """vault_* values live only in encrypted files; plain files may only refer to them."""
    for path in ANSIBLE_DIR.rglob("*.yml"):
        text = path.read_text()
        if text.startswith("$ANSIBLE_VAULT") or ".work" in path.parts:
            continue
        assert not re.search(r"^\s*vault_[a-z0-9_]+\s*:", text, re.MULTILINE), path
