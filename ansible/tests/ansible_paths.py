"""Where the Ansible tests find things: ansible/, the CI-only test vault, the environments."""

from __future__ import annotations

from pathlib import Path

ANSIBLE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = ANSIBLE_DIR.parent
ROLE_DIR = ANSIBLE_DIR / "roles/brainscan_deploy"
# The only vault password in the repository: it opens the CI test vault and nothing else.
TEST_VAULT = ANSIBLE_DIR / "tests/vault/TEST-ONLY-vault.yml"
TEST_VAULT_PASSWORD = ANSIBLE_DIR / "tests/vault/TEST-ONLY-vault-password.txt"
ENVIRONMENTS = ("local", "production")
