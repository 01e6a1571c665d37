"""Write an environment's Ansible Vault file: a kubeconfig with its certificates embedded, and the
registry, MLflow, webhook and API-key secrets, encrypted with the environment's vault password.

    python ansible/scripts/write_vault.py local --context kind-brainscan

The kubeconfig is reduced to one context and every certificate or key file it names is read into
the matching `*-data` field (what `kubectl config view --raw --minify --flatten` does): minikube
and kind write file paths that exist on one machine only. Secrets come from environment
variables, never from arguments (shell history, process lists). The password file is created
(random, mode 0600) when it does not exist; it stays outside the repository.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml

ANSIBLE_DIR = Path(__file__).resolve().parents[1]
# File fields of a kubeconfig and the fields that embed their content.
_EMBED = {
    "cluster": {"certificate-authority": "certificate-authority-data"},
    "user": {"client-certificate": "client-certificate-data", "client-key": "client-key-data"},
}
# Vault variable -> environment variable it is read from.
SECRET_VARIABLES = {
    "vault_brainscan_registry_username": "BRAINSCAN_REGISTRY_USERNAME",
    "vault_brainscan_registry_password": "BRAINSCAN_REGISTRY_PASSWORD",
    "vault_brainscan_mlflow_username": "BRAINSCAN_MLFLOW_USERNAME",
    "vault_brainscan_mlflow_password": "BRAINSCAN_MLFLOW_PASSWORD",
    "vault_brainscan_webhook_secret": "BRAINSCAN_WEBHOOK_SECRET",
}
API_KEYS_VARIABLE = "BRAINSCAN_GATEWAY_API_KEYS"


class VaultInputError(Exception):
    """The kubeconfig or a secret cannot be used; the message says why."""


def flatten_kubeconfig(kubeconfig: dict[str, Any], base: Path, context: str | None) -> dict:
    """One context of `kubeconfig`, with every referenced file embedded as base64 data."""
    name = context or kubeconfig.get("current-context")
    contexts = {c["name"]: c["context"] for c in kubeconfig.get("contexts", [])}
    if name not in contexts:
        raise VaultInputError(f"context {name!r} is not in the kubeconfig ({sorted(contexts)})")
    chosen = contexts[name]
    clusters = {c["name"]: c for c in kubeconfig.get("clusters", [])}
    users = {u["name"]: u for u in kubeconfig.get("users", [])}
    cluster = _embed(clusters[chosen["cluster"]], "cluster", base)
    user = _embed(users[chosen["user"]], "user", base)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "contexts": [{"name": name, "context": chosen}],
        "clusters": [cluster],
        "users": [user],
        "preferences": {},
    }


def _embed(entry: dict[str, Any], kind: str, base: Path) -> dict[str, Any]:
    body = dict(entry[kind])
    for path_field, data_field in _EMBED[kind].items():
        if path_field in body:
            path = Path(os.path.expanduser(body.pop(path_field)))
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise VaultInputError(f"{kind} {entry['name']!r}: {path} does not exist")
            body[data_field] = base64.b64encode(path.read_bytes()).decode()
    if "exec" in body or "auth-provider" in body:
        raise VaultInputError(
            f"user {entry['name']!r} logs in through a plugin (exec/auth-provider) that needs "
            "tools on the deploy machine; use a token or client certificate"
        )
    return {"name": entry["name"], kind: body}


def vault_variables(kubeconfig: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """Every variable the inventories expect from a vault."""
    variables: dict[str, Any] = {
        "vault_brainscan_kubeconfig": yaml.safe_dump(kubeconfig, sort_keys=False)
    }
    for variable, source in SECRET_VARIABLES.items():
        variables[variable] = environ.get(source, "")
    keys = environ.get(API_KEYS_VARIABLE, "").split(",")
    variables["vault_brainscan_gateway_api_keys"] = [k.strip() for k in keys if k.strip()]
    secret = variables["vault_brainscan_webhook_secret"]
    if secret and len(secret) < 16:
        raise VaultInputError("BRAINSCAN_WEBHOOK_SECRET must have at least 16 characters")
    return variables


def password_from(path: Path) -> bytes:
    """The vault password in `path`, made (random, owner-only) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_bytes().strip()


def encrypt(variables: dict[str, Any], password: bytes, vault_id: str) -> bytes:
    """The variables as YAML, encrypted as an Ansible Vault 1.2 file labelled with vault_id."""
    # Imported here: reading and flattening kubeconfigs needs no Ansible.
    from ansible.parsing.vault import VaultLib, VaultSecret

    text = "---\n" + yaml.safe_dump(variables, sort_keys=True, default_flow_style=False)
    vault = VaultLib([(vault_id, VaultSecret(password))])
    return vault.encrypt(text, secret=VaultSecret(password), vault_id=vault_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("environment", help="inventory name (local, production)")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="default: $KUBECONFIG")
    parser.add_argument("--context", default=None, help="default: the current context")
    parser.add_argument("--password-file", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    environment = args.environment
    # "default" is the vault id Ansible gives unlabelled passwords: it would open any vault.
    if environment == "default" or not environment.isidentifier():
        parser.error("the environment must be a plain name such as local or production")
    kubeconfig_path = (
        args.kubeconfig
        or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    )
    password_file = (
        args.password_file or Path(f"~/.config/brainscan/vault-{environment}.pass").expanduser()
    )
    out = args.out or ANSIBLE_DIR / "inventories" / environment / "group_vars/brainscan/vault.yml"
    try:
        kubeconfig = yaml.safe_load(kubeconfig_path.read_text())
        flat = flatten_kubeconfig(kubeconfig, kubeconfig_path.parent, args.context)
        variables = vault_variables(flat, dict(os.environ))
    except (OSError, VaultInputError, KeyError) as error:
        sys.stderr.write(f"write_vault: {error}\n")
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encrypt(variables, password_from(password_file), environment))
    sys.stderr.write(
        f"write_vault: wrote {out} (vault id {environment!r}, password in {password_file})\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
