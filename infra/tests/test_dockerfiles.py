"""The one Dockerfile builds every image by the image rules: public base as a build argument,
builders apart from the runtime, the lock file, only its own package, non-root, a healthcheck on
the real endpoint, OCI labels, and a CA bundle that is mounted as a secret, never copied in. Each
component's image is read as the stages it is built from (infra_dockerfiles.Image)."""

from __future__ import annotations

import fnmatch
import importlib
import re
import subprocess
import tomllib

import pytest
from infra_dockerfiles import COMPONENTS, DOCKERFILE, REPO, SERVICES, WORKSPACE_COMPONENTS

PUBLIC_BASE = "python:3.11-slim-bookworm"
OCI_LABELS = ("source", "revision", "version", "created", "title", "description")
BUILDERS = {"mlflow": "mlflow-builder", **{name: "builder" for name in WORKSPACE_COMPONENTS}}


def test_base_image_is_a_build_argument_with_a_public_default(dockerfile):
    assert f"BASE_IMAGE={PUBLIC_BASE}" in dockerfile.global_args
    assert "COMPONENT" in dockerfile.global_args  # required: no default image
    names = [stage.name for stage in dockerfile.stages]
    for index, stage in enumerate(dockerfile.stages):
        # Either the base, or a stage defined before (COMPONENT picks which one).
        earlier = names[:index]
        picked = stage.base.startswith("${COMPONENT}")
        assert stage.base == "${BASE_IMAGE}" or stage.base in earlier or picked, stage.base


@pytest.mark.parametrize("name", COMPONENTS)
def test_every_component_has_its_stage_and_the_last_stage_picks_it(dockerfile, images, name):
    assert dockerfile.stages[-1].name == "image"
    assert dockerfile.stages[-1].base == "${COMPONENT}"
    assert [stage.name for stage in images[name].chain][-2:] == [name, "image"]
    assert images[name].chain[0].base == "${BASE_IMAGE}"


@pytest.mark.parametrize("name", COMPONENTS)
def test_only_the_venv_is_carried_over_from_a_builder(images, name):
    image = images[name]
    assert not any(stage.name.endswith(("builder", "package", "uv")) for stage in image.chain)
    carried = [c for c in image.final.all("COPY") if c.startswith("--from=")]
    assert carried == [f"--from={BUILDERS[name]} /opt/venv /opt/venv"]
    # uv itself stays in the builder.
    assert not any("uv" in run for run in image.final.all("RUN"))


@pytest.mark.parametrize("name", COMPONENTS)
def test_runs_as_an_unprivileged_numeric_user(images, name):
    users = images[name].final.all("USER")
    assert users, "the image sets no USER (it would run as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: Kubernetes runAsNonRoot can check it
    assert users[-1] == "10001:10001"


@pytest.mark.parametrize("name", COMPONENTS)
def test_oci_labels_come_from_build_arguments(images, name):
    labels = images[name].labels()
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}" in labels, key
    assert labels["org.opencontainers.image.title"] == f"brainscan-{name}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"


def test_labels_are_set_last(dockerfile):
    # A new revision changes only the last stage's layers, none that carries files.
    last = dockerfile.stages[-1]
    assert [i.keyword for i in last.instructions if i.keyword not in ("ARG", "LABEL")] == ["USER"]
    assert last.instructions[-1].keyword == "LABEL"


@pytest.mark.parametrize("name", COMPONENTS)
def test_ca_bundle_is_a_build_secret_never_a_layer(dockerfile, images, name):
    network_runs = [run for run in images[name].runs() if "pip install" in run or "uv " in run]
    assert network_runs
    for run in network_runs:
        assert "--mount=type=secret,id=ca_bundle" in run, run
    text = dockerfile.path.read_text()
    assert not re.search(r"^(ENV|ARG)\b.*(SSL_CERT_FILE|PIP_CERT)", text, re.MULTILINE)
    assert "ca-certificates.crt" not in " ".join(images[name].copy_sources())
    assert not any(i.keyword == "ADD" for s in dockerfile.stages for i in s.instructions)


@pytest.mark.parametrize("name", COMPONENTS)
def test_every_copied_path_exists_and_is_not_ignored(images, name):
    ignored = (REPO / ".dockerignore").read_text().split()
    for source in images[name].copy_sources():
        assert "$" not in source, f"{source}: a variable the builder does not set"
        assert (REPO / source).exists(), source
        assert source not in ignored, source


@pytest.mark.parametrize("name", SERVICES)
def test_service_image_installs_its_own_locked_package_only(images, name):
    assert images[name].build_env["PACKAGE"] == SERVICES[name][0]
    syncs = [run for run in images[name].runs() if "uv sync" in run]
    assert len(syncs) == 2  # dependencies first (cached layer), then the workspace code
    for run in syncs:
        assert "--frozen" in run and "--no-dev" in run
        assert '--package "$PACKAGE"' in run


@pytest.mark.parametrize("name", WORKSPACE_COMPONENTS)
def test_package_stanza_names_a_real_package_and_its_modules(images, name):
    settings = images[name].build_env
    pyproject = tomllib.loads((REPO / settings["SOURCE_DIR"] / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == settings["PACKAGE"] == f"brainscan-{name}"
    for module in settings["IMPORTS"].split(", "):
        path = REPO / settings["SOURCE_DIR"] / "src" / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_builder_gets_every_pyproject_from_the_context_not_from_a_list(dockerfile):
    # uv sync --frozen checks the lock against the whole workspace: a missing member fails it.
    # The manifests stage copies the context and keeps every pyproject.toml at its path, so a new
    # member (libs/testsupport, ...) needs no edit here.
    manifests = dockerfile.stage("manifests")
    assert manifests.all("COPY") == [". /context"]
    (find,) = manifests.all("RUN")
    assert "find . -name pyproject.toml -exec cp --parents {} /manifests" in find
    builder = dockerfile.stage("builder")
    assert "--from=manifests /manifests/ ./" in builder.all("COPY")
    assert "uv.lock ./" in builder.all("COPY")
    assert "pyproject.toml" not in " ".join(builder.all("COPY"))


def test_every_workspace_member_pyproject_reaches_the_build_context(workspace_members):
    assert len(workspace_members) >= 9
    ignored = (REPO / ".dockerignore").read_text().split()
    for member in [".", *workspace_members]:
        path = f"{member}/pyproject.toml".removeprefix("./")
        assert (REPO / path).is_file(), path
        assert not any(fnmatch.fnmatch(path, pattern.lstrip("*/")) for pattern in ignored), path
        assert not any(path.startswith(pattern + "/") for pattern in ignored), path


def test_manifests_stage_copies_every_member(tmp_path, workspace_members):
    # The stage's own command, on a copy of the tracked files: each member's file arrives.
    context, manifests = tmp_path / "context", tmp_path / "manifests"
    listed = subprocess.run(["git", "ls-files", "*pyproject.toml"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    for path in listed:
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        (context / path).write_bytes((REPO / path).read_bytes())
    manifests.mkdir()
    subprocess.run(["find", ".", "-name", "pyproject.toml", "-exec", "cp", "--parents", "{}",
                    str(manifests), ";"], cwd=context, check=True)  # fmt: skip
    for member in workspace_members:
        assert (manifests / member / "pyproject.toml").is_file(), member
    assert (manifests / "pyproject.toml").is_file()


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
    installed = _closure(uv_lock, SERVICES[name][0])
    assert SERVICES[name][0] in installed
    assert not {p for p in installed if p.startswith(("tensorflow", "keras", "tf2onnx"))}
    assert "brainscan-training" not in installed


def test_training_image_does_get_tensorflow(uv_lock):
    assert "tensorflow-cpu" in _closure(uv_lock, "brainscan-training")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_healthcheck_probes_the_services_own_port_and_endpoint(images, name):
    _, module, port, path, port_setting = SERVICES[name]
    final = images[name].final
    (healthcheck,) = final.all("HEALTHCHECK")
    assert healthcheck.endswith(
        f'CMD ["python3", "/usr/local/lib/brainscan/healthcheck.py", '
        f'"{port_setting}", "{port}", "{path}"]'
    )
    assert final.all("EXPOSE") == [str(port)]
    assert final.all("CMD") == [f'["brainscan-{name}"]']
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
    assert final.env()[port_setting] == str(port)


def test_mlflow_healthcheck_uses_its_health_endpoint(images):
    (healthcheck,) = images["mlflow"].final.all("HEALTHCHECK")
    assert '"MLFLOW_PORT", "5000", "/health"]' in healthcheck
    assert images["mlflow"].final.all("EXPOSE") == ["5000"]


def test_training_job_declares_it_has_no_healthcheck(images):
    assert images["training"].final.all("HEALTHCHECK") == ["NONE"]
    assert images["training"].final.all("CMD") == ['["dvc", "repro"]']
    assert images["training"].final.all("EXPOSE") == []


def test_dockerignore_keeps_secrets_data_and_environments_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    patterns = ("**/.git", "**/.venv", "data", "datasets", "artifacts", "**/*.onnx", ".env")
    for pattern in (*patterns, ".mlflow"):
        assert pattern in ignored, pattern


def test_nothing_else_is_a_dockerfile():
    # One Dockerfile: another one beside it would be the copy this one replaced.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    dockerfiles = [p for p in listed if re.search(r"(^|/)(Dockerfile[^/]*|[^/]*\.Dockerfile)$", p)]
    assert dockerfiles == [DOCKERFILE]
