"""Fixtures of the Ansible tests: the CI-only test vault, inventories that use it, and a way to
run ansible-playbook / ansible-lint from ansible/ as an operator would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Helper modules beside this file, and the chart tests' renderer (helm/tests/k8s_render.py) that
# renders what the role writes; pytest's importlib mode puts neither on sys.path.
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parents[1] / "helm/tests"))
sys.path.insert(0, str(_HERE))

from ansible_paths import (  # noqa: E402
    ANSIBLE_DIR,
    ENVIRONMENTS,
    TEST_VAULT,
    TEST_VAULT_PASSWORD,
)


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the Ansible commands: this venv's tools, ansible/ansible.cfg, no colour,
    and a private ANSIBLE_HOME so nothing is written to the user's ~/.ansible."""
    home = tmp_path_factory.mktemp("ansible-home")
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        NO_COLOR="1",
    )
    return env


@pytest.fixture(scope="session")
def run_ansible(ansible_env) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run an Ansible command line from ansible/; the result carries stdout and stderr."""

    def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=ANSIBLE_DIR,
            env=ansible_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def test_inventories(tmp_path_factory) -> dict[str, Path]:
    """Each real inventory (hosts + main.yml) with the test vault in place of its own."""
    inventories = {}
    for environment in ENVIRONMENTS:
        source = ANSIBLE_DIR / "inventories" / environment
        target = tmp_path_factory.mktemp(f"inventory-{environment}")
        shutil.copy(source / "hosts.yml", target / "hosts.yml")
        group_vars = target / "group_vars/brainscan"
        group_vars.mkdir(parents=True)
        shutil.copy(source / "group_vars/brainscan/main.yml", group_vars / "main.yml")
        shutil.copy(TEST_VAULT, group_vars / "vault.yml")
        inventories[environment] = target
    return inventories


@pytest.fixture(scope="session")
def vault_id() -> str:
    """The --vault-id argument that opens the test vault."""
    return f"test@{TEST_VAULT_PASSWORD}"
