"""Every Dockerfile follows the image rules: public base as a build argument, multi-stage, the
lock file, only its own package, non-root, a healthcheck on the real endpoint, OCI labels, and a
CA bundle that is mounted as a secret, never copied in."""

from __future__ import annotations

import importlib
import re

import pytest
from infra_dockerfiles import DOCKERFILES, REPO, SERVICES

PUBLIC_BASE = "python:3.11-slim-bookworm"
OCI_LABELS = ("source", "revision", "version", "created", "title")


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_image_is_a_build_argument_with_a_public_default(dockerfiles, name):
    dockerfile = dockerfiles[name]
    assert f"BASE_IMAGE={PUBLIC_BASE}" in dockerfile.global_args
    assert all(stage.base == "${BASE_IMAGE}" for stage in dockerfile.stages)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_multi_stage_with_only_the_venv_carried_over(dockerfiles, name):
    dockerfile = dockerfiles[name]
    assert [stage.name for stage in dockerfile.stages] == ["builder", "runtime"]
    carried = [c for c in dockerfile.final.all("COPY") if c.startswith("--from=")]
    assert carried == ["--from=builder /opt/venv /opt/venv"]
    # uv itself stays in the builder.
    assert not any("uv" in run for run in dockerfile.final.all("RUN"))


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_runs_as_an_unprivileged_numeric_user(dockerfiles, name):
    users = dockerfiles[name].final.all("USER")
    assert users, "the runtime stage sets no USER (it would run as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: Kubernetes runAsNonRoot can check it


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_oci_labels_come_from_build_arguments(dockerfiles, name):
    labels = dockerfiles[name].labels()
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}" in labels, key
    assert labels["org.opencontainers.image.title"] == f"brainscan-{name}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_ca_bundle_is_a_build_secret_never_a_layer(dockerfiles, name):
    dockerfile = dockerfiles[name]
    network_runs = [run for run in dockerfile.runs() if "pip install" in run or "uv " in run]
    assert network_runs
    for run in network_runs:
        assert "--mount=type=secret,id=ca_bundle" in run, run
    text = dockerfile.path.read_text()
    assert not re.search(r"^(ENV|ARG)\b.*(SSL_CERT_FILE|PIP_CERT)", text, re.MULTILINE)
    assert "ca-certificates.crt" not in " ".join(dockerfile.copy_sources())
    assert not any(i.keyword == "ADD" for s in dockerfile.stages for i in s.instructions)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_every_copied_path_exists_and_is_not_ignored(dockerfiles, name):
    ignored = (REPO / ".dockerignore").read_text().split()
    for source in dockerfiles[name].copy_sources():
        assert (REPO / source).exists(), source
        assert source not in ignored, source


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_image_installs_its_own_locked_package_only(dockerfiles, name):
    package = SERVICES[name][1]
    syncs = [run for run in dockerfiles[name].runs() if "uv sync" in run]
    assert len(syncs) == 2  # dependencies first (cached layer), then the workspace code
    for run in syncs:
        assert "--frozen" in run and "--no-dev" in run
        assert f"--package {package}" in run


@pytest.mark.parametrize("name", ["gateway", "inference", "model-sync", "training"])
def test_every_workspace_member_pyproject_is_copied(dockerfiles, workspace_members, name):
    # uv sync --frozen checks the lock against the whole workspace: a missing member fails it.
    copied = dockerfiles[name].copy_sources()
    for member in workspace_members:
        assert f"{member}/pyproject.toml" in copied, member
    assert "uv.lock" in copied


def _closure(lock: dict, root: str) -> set[str]:
    """Every package the lock installs for root (extras followed, markers ignored: a superset)."""
    packages = {package["name"]: package for package in lock["package"]}
    seen, todo = set(), [(root, ())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        package = packages[name]
        dependencies = list(package.get("dependencies", []))
        for extra in extras:
            dependencies += package.get("optional-dependencies", {}).get(extra, [])
        todo += [(d["name"], tuple(d.get("extra", ()))) for d in dependencies]
    return {name for name, _ in seen}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_tensorflow_in_service_images(uv_lock, name):
    installed = _closure(uv_lock, SERVICES[name][1])
    assert SERVICES[name][1] in installed
    assert not {p for p in installed if p.startswith(("tensorflow", "keras", "tf2onnx"))}
    assert "brainscan-training" not in installed


def test_training_image_does_get_tensorflow(uv_lock):
    assert "tensorflow-cpu" in _closure(uv_lock, "brainscan-training")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_probes_the_services_own_port_and_endpoint(dockerfiles, name):
    _, _, module, port, path, port_setting = SERVICES[name]
    final = dockerfiles[name].final
    (healthcheck,) = final.all("HEALTHCHECK")
    assert healthcheck.endswith(
        f'CMD ["python3", "/usr/local/lib/brainscan/healthcheck.py", '
        f'"{port_setting}", "{port}", "{path}"]'
    )
    assert final.all("EXPOSE") == [str(port)]
    # The endpoint exists in the service and the port is the service's default.
    routes = "".join(p.read_text() for p in (REPO / "services").glob(f"{name}/src/**/*.py"))
    assert f'"{path}"' in routes
    settings_module = importlib.import_module(f"{module}.settings")
    settings_class = next(
        value
        for key, value in vars(settings_module).items()
        if key.endswith("Settings") and value.__module__ == settings_module.__name__
    )
    assert settings_class.model_fields["port"].default == port
    assert settings_class.model_config["env_prefix"] + "PORT" == port_setting


def test_mlflow_healthcheck_uses_its_health_endpoint(dockerfiles):
    (healthcheck,) = dockerfiles["mlflow"].final.all("HEALTHCHECK")
    assert '"MLFLOW_PORT", "5000", "/health"]' in healthcheck
    assert dockerfiles["mlflow"].final.all("EXPOSE") == ["5000"]


def test_training_job_declares_it_has_no_healthcheck(dockerfiles):
    assert dockerfiles["training"].final.all("HEALTHCHECK") == ["NONE"]
    assert dockerfiles["training"].final.all("CMD") == ['["dvc", "repro"]']


def test_dockerignore_keeps_secrets_data_and_environments_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in ("**/.git", "**/.venv", "data", "artifacts", "**/*.onnx", ".env", ".mlflow"):
        assert pattern in ignored, pattern
