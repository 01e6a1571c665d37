"""ansible-lint (production profile) and yamllint pass on ansible/, and both playbooks parse."""

from __future__ import annotations

import pytest
import yaml
from ansible_paths import ENVIRONMENTS, ROLE_DIR


def test_ansible_lint_production_profile_is_clean(run_ansible):
    result = run_ansible("ansible-lint", "--offline", "--nocolor")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output


def test_yamllint_is_clean(run_ansible):
    result = run_ansible("yamllint", "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("playbook", ["deploy", "rollback"])
def test_playbook_syntax(run_ansible, test_inventories, vault_id, environment, playbook):
    result = run_ansible(
        "ansible-playbook",
        "--syntax-check",
        "-i",
        test_inventories[environment],
        "--vault-id",
        vault_id,
        f"playbooks/{playbook}.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_notified_handler_exists(run_ansible):
    """A notify naming no handler is silently ignored by Ansible at run time: catch it here."""
    role = ROLE_DIR
    handlers = yaml.safe_load((role / "handlers/main.yml").read_text())
    names = {h["name"] for h in handlers} | {
        listen for h in handlers for listen in _as_list(h.get("listen"))
    }
    notified = set()
    for tasks_file in (role / "tasks").glob("*.yml"):
        for task in yaml.safe_load(tasks_file.read_text()) or []:
            notified |= set(_as_list(task.get("notify")))
    assert notified, "the role notifies no handler at all"
    assert notified <= names


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
