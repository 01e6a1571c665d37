"""docker-compose.yml, read as data: the services and their order, replicas, volumes, health
checks that match the images, settings that exist in the services, every variable documented in
.env.example; and podman-compose's own rendering of it."""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import prometheus_rules as pr
import pytest
import yaml
from infra_dockerfiles import DOCKERFILE, REPO, SERVICES

RUNNING = ["mlflow", "model-sync", "inference", "gateway"]
DEPENDS = {"model-sync": "mlflow", "inference": "model-sync", "gateway": "inference"}
SETTINGS_PREFIX = {"GATEWAY_": "gateway", "INFERENCE_": "inference", "MODELSYNC_": "model-sync"}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}")


def _settings_fields(component: str) -> set[str]:
    module = importlib.import_module(f"{SERVICES[component][1]}.settings")
    (settings,) = [
        value
        for key, value in vars(module).items()
        if key.endswith("Settings") and value.__module__ == module.__name__
    ]
    return set(settings.model_fields)


def _defaults(text: str) -> str:
    """The file with every ${VAR:-default} replaced by its default, as with an empty .env."""
    return re.sub(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def test_services_and_start_order(compose):
    assert {*RUNNING, "training"} <= set(compose["services"])
    # Anything else belongs to an opt-in profile (the logging stack's "elk").
    for name in set(compose["services"]) - {*RUNNING, "training"}:
        assert compose["services"][name].get("profiles"), f"{name} would start with `up`"
    for service, dependency in DEPENDS.items():
        depends_on = compose["services"][service]["depends_on"]
        assert depends_on == {dependency: {"condition": "service_healthy"}}
    assert compose["services"]["training"]["depends_on"] == {
        "mlflow": {"condition": "service_healthy"}
    }


def test_training_is_a_one_shot_job_behind_a_profile(compose):
    training = compose["services"]["training"]
    assert training["profiles"] == ["training"]
    assert training["restart"] == "no"
    assert "ports" not in training and "healthcheck" not in training


def _data_job(compose) -> dict:
    return compose["services"]["training-data"]


BIND = re.compile(r"^(\$\{[^}]*\}|[^:]+):([^:]+)(?::([a-z,]+))?$")


def _mounts_of(service: dict) -> dict[str, tuple[str, str]]:
    """Container path -> (host source as written, options) of a service's bind mounts."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, options = BIND.fullmatch(volume).groups()
        mounts[target] = (source, options or "")
    return mounts


def test_the_data_job_is_the_training_job_behind_its_own_profile(compose):
    training, data_job = compose["services"]["training"], _data_job(compose)
    # Its own profile: `--profile training run training` never needs a host data folder.
    assert data_job["profiles"] == ["training-data"]
    for key in ("image", "build", "restart", "networks", "security_opt", "cap_drop",
                "environment", "depends_on"):  # fmt: skip
        assert data_job[key] == training[key], key
    assert "ports" not in data_job and "healthcheck" not in data_job


def test_the_data_job_mounts_the_folder_and_params_read_only(compose):
    mounts = _mounts_of(_data_job(compose))
    assert mounts["/data"] == ("${BRAINSCAN_DATA_DIR:-./datasets}", "ro")
    assert mounts["/config/params.yaml"] == ("${TRAINING_PARAMS:-./params.yaml}", "ro")
    # Nothing is mounted over the params.yaml the job writes and DVC reads.
    assert "/workspace/params.yaml" not in mounts
    # podman refuses a bind mount of a missing host folder: the default one is in the repository.
    assert (REPO / "datasets").is_dir()
    assert "datasets" in (REPO / ".dockerignore").read_text().split()


def _data_job_steps(compose) -> list[list[str]]:
    shell, flag, script = _data_job(compose)["command"]
    assert (shell, flag) == ("sh", "-c")
    return [shlex.split(step) for step in script.split("&&")]


def test_the_data_job_writes_its_params_before_dvc_repro(compose):
    (params_step, repro_step) = _data_job_steps(compose)
    assert repro_step == ["exec", "dvc", "repro"]
    assert params_step[0] == "brainscan-train"
    from brainscan_training.cli import _parser

    args = _parser().parse_args(params_step[1:])
    assert args.command == "params"
    assert str(args.params) == "/config/params.yaml"
    # Written where `dvc repro` reads it: the image's working directory, /workspace.
    assert str(args.out) == "params.yaml"
    assert "data.source=directory" in args.overrides
    (source_dir,) = [o for o in args.overrides if o.startswith("data.source_dir=")]
    assert source_dir.partition("=")[2] in _mounts_of(_data_job(compose))


def test_the_data_jobs_params_step_accepts_the_default_params(compose, tmp_path, capsys):
    """The step itself, run here on the file the default TRAINING_PARAMS mounts."""
    from brainscan_training.cli import main
    from brainscan_training.params import load_params

    (params_step, _) = _data_job_steps(compose)
    argv = [str(REPO / "params.yaml") if a == "/config/params.yaml" else a for a in params_step]
    argv = [str(tmp_path / "params.yaml") if a == "params.yaml" else a for a in argv]
    assert main(argv[1:]) == 0, capsys.readouterr().err
    written = load_params(tmp_path / "params.yaml")
    assert (written.data.source, written.data.source_dir) == ("directory", "/data")


def test_two_inference_replicas_without_a_host_port():
    rendered = yaml.safe_load(_defaults((REPO / "docker-compose.yml").read_text()))
    inference = rendered["services"]["inference"]
    # podman-compose honours replicas only in replicated mode.
    assert inference["deploy"]["mode"] == "replicated"
    assert int(inference["deploy"]["replicas"]) == 2
    assert "ports" not in inference


def test_named_volumes_for_mlflow_data_the_model_cache_prometheus_and_orthanc(compose):
    assert set(compose["volumes"]) == {
        "mlflow-data",
        "model-cache",
        "prometheus-data",
        "orthanc-data",
    }
    assert "orthanc-data:/var/lib/orthanc/db" in compose["services"]["orthanc"]["volumes"]
    assert "mlflow-data:/var/lib/mlflow" in compose["services"]["mlflow"]["volumes"]
    assert "model-cache:/var/lib/model-sync" in compose["services"]["model-sync"]["volumes"]
    assert "prometheus-data:/prometheus" in compose["services"]["prometheus"]["volumes"]


def test_published_ports_bind_loopback_by_default():
    rendered = yaml.safe_load(_defaults((REPO / "docker-compose.yml").read_text()))
    published = {name: service.get("ports", []) for name, service in rendered["services"].items()}
    assert published["gateway"] == ["127.0.0.1:8000:8000"]
    assert published["mlflow"] == ["127.0.0.1:5000:5000"]
    assert published["model-sync"] == ["127.0.0.1:8002:8002"]
    assert published["prometheus"] == ["127.0.0.1:9090:9090"]
    assert published["orthanc"] == ["127.0.0.1:8042:8042"]


@pytest.mark.parametrize("service", RUNNING)
def test_healthcheck_is_the_images_own(compose, images, service):
    (image_check,) = images[service].final.all("HEALTHCHECK")
    command = compose["services"][service]["healthcheck"]["test"]
    assert command[0] == "CMD"
    assert image_check.endswith("CMD " + str(command[1:]).replace("'", '"'))


@pytest.mark.parametrize("service", [*RUNNING, "training"])
def test_images_and_builds_point_at_the_dockerfile(compose, service):
    spec = compose["services"][service]
    # The one Dockerfile, its stage picked by COMPONENT, as infra/images/build.sh builds it.
    assert spec["build"]["dockerfile"] == DOCKERFILE
    assert spec["build"]["args"]["COMPONENT"] == service
    assert spec["build"]["args"]["BASE_IMAGE"] == "${BASE_IMAGE:-python:3.11-slim-bookworm}"
    assert spec["build"]["context"] == "."
    assert spec["build"]["secrets"] == ["ca_bundle"]
    assert re.fullmatch(
        r"\$\{BRAINSCAN_IMAGE_PREFIX:-localhost/brainscan\}/"
        + re.escape(service)
        + r":\$\{BRAINSCAN_TAG:-latest\}",
        spec["image"],
    )


@pytest.mark.parametrize("service", ["gateway", "inference", "model-sync"])
def test_environment_names_are_real_settings(compose, service):
    fields = _settings_fields(service)
    for name in compose["services"][service]["environment"]:
        prefix = next(p for p in SETTINGS_PREFIX if name.startswith(p))
        assert SETTINGS_PREFIX[prefix] == service, name
        assert name.removeprefix(prefix).lower() in fields, f"{name} is no {service} setting"


def test_mlflow_environment_is_read_by_the_start_script_or_mlflow(compose):
    script = (REPO / "infra/mlflow/start-mlflow.sh").read_text()
    import mlflow.environment_variables as mlflow_variables

    known = Path(mlflow_variables.__file__).read_text()
    for name in compose["services"]["mlflow"]["environment"]:
        assert f"${{{name}" in script or f'"{name}"' in known, name


def test_every_variable_is_documented_in_env_example():
    used = set(VARIABLE.findall((REPO / "docker-compose.yml").read_text()))
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert used - documented == set(), "undocumented in .env.example"
    assert documented - used == set(), "documented but unused by docker-compose.yml"


def test_env_example_defaults_match_the_compose_defaults():
    compose_text = (REPO / "docker-compose.yml").read_text()
    defaults = dict(re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", compose_text))
    example = dict(
        re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (REPO / ".env.example").read_text(), re.MULTILINE)
    )
    for name, default in defaults.items():
        assert example[name] == default, name


def test_services_drop_privileges(compose):
    for name in [*RUNNING, "training"]:
        service = compose["services"][name]
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name


@pytest.mark.parametrize("service", RUNNING)
def test_running_services_have_a_read_only_root(compose, service):
    spec = compose["services"][service]
    assert spec["read_only"] is True
    assert "/tmp" in spec["tmpfs"]
    writable = {mount.split(":")[1] for mount in spec.get("volumes", [])} | set(spec["tmpfs"])
    # Where each service writes: its state directory must be a volume or a tmpfs.
    state = {
        "mlflow": "/var/lib/mlflow",
        "model-sync": "/var/lib/model-sync",
        "inference": "/tmp",
        "gateway": "/tmp",
    }[service]
    assert state in writable
    if service == "inference":
        assert spec["environment"]["INFERENCE_MODELSYNC_CACHE_DIR"].startswith("/tmp/")


# --- Prometheus (profile "monitoring") ------------------------------------------------------------


def _mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (relative to the repository)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = REPO / source
    return mounts


def _flags(service: dict) -> dict[str, str]:
    return dict(arg.removeprefix("--").partition("=")[::2] for arg in service["command"])


def test_prometheus_is_opt_in_and_locked_down_like_the_services(compose):
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in prometheus["security_opt"]
    assert prometheus["read_only"] is True
    # Its only writable path is the TSDB, a named volume.
    assert _flags(prometheus)["storage.tsdb.path"] == "/prometheus"
    assert prometheus["healthcheck"]["test"][-1].endswith(":9090/-/ready")


def test_prometheus_reads_the_chart_rules_and_the_scrape_config(compose):
    prometheus = compose["services"]["prometheus"]
    mounts = _mounts(prometheus)
    assert all(
        volume.endswith(":ro") for volume in prometheus["volumes"] if volume.startswith("./")
    )
    config_path = _flags(prometheus)["config.file"]
    assert mounts[config_path] == pr.COMPOSE_CONFIG
    config = yaml.safe_load(pr.COMPOSE_CONFIG.read_text())
    # The one rules file: the chart's, mounted where the configuration looks for it.
    (rule_path,) = config["rule_files"]
    assert mounts[rule_path] == pr.RULES_FILE


def test_prometheus_scrapes_each_service_by_name_on_its_port(compose):
    config = yaml.safe_load(pr.COMPOSE_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"gateway", "inference", "model-sync", "prometheus"}
    for name in ("gateway", "inference", "model-sync"):
        # The port the service listens on, as its health check (the image's own) names it.
        port = int(compose["services"][name]["healthcheck"]["test"][4])
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        if name == "inference":
            # Every replica is a target: DNS discovery of the service name's A records.
            (discovery,) = job["dns_sd_configs"]
            assert (discovery["names"], discovery["type"], discovery["port"]) == (
                ["inference"],
                "A",
                port,
            )
        else:
            (static,) = job["static_configs"]
            assert static["targets"] == [f"{name}:{port}"]


# --- Orthanc (profile "pacs") ---------------------------------------------------------------------


def _orthanc_servers(rendered: dict) -> dict:
    import json

    return json.loads(rendered["services"]["orthanc"]["environment"]["ORTHANC__DICOM_WEB__SERVERS"])


def test_orthanc_is_opt_in_pinned_and_has_its_dicomweb_plugin(compose):
    orthanc = compose["services"]["orthanc"]
    assert orthanc["profiles"] == ["pacs"]
    assert re.fullmatch(
        r"\$\{ORTHANC_IMAGE:-docker\.io/orthancteam/orthanc:\d+\.\d+\.\d+\}", orthanc["image"]
    ), "a pinned release of Orthanc Team's image, never latest"
    environment = orthanc["environment"]
    assert environment["DICOM_WEB_PLUGIN_ENABLED"] == "true"
    assert environment["ORTHANC__DICOM_WEB__ROOT"] == "/dicom-web/"
    assert orthanc["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in orthanc["security_opt"]
    assert orthanc["healthcheck"]["test"][-1].endswith("8042/system', timeout=4)")


def test_orthanc_and_the_gateway_point_at_each_other(compose):
    rendered = yaml.safe_load(_defaults((REPO / "docker-compose.yml").read_text()))
    gateway = rendered["services"]["gateway"]["environment"]
    orthanc = rendered["services"]["orthanc"]
    # The gateway pushes its SRs to Orthanc's DICOMweb root, on the port Orthanc listens on.
    root = orthanc["environment"]["ORTHANC__DICOM_WEB__ROOT"].rstrip("/")
    assert gateway["GATEWAY_DICOMWEB_PUSH_URL"] == f"http://orthanc:8042{root}"
    assert orthanc["ports"] == ["127.0.0.1:8042:8042"]
    # Orthanc's DICOMweb server "brainscan" is the gateway's receiver, on the gateway's port.
    port = int(compose["services"]["gateway"]["healthcheck"]["test"][4])
    brainscan = _orthanc_servers(rendered)["brainscan"]
    assert brainscan["Url"] == f"http://gateway:{port}/dicomweb/"
    assert brainscan["HttpHeaders"] == {"X-API-Key": ""}  # PACS_GATEWAY_API_KEY, empty by default
    example = (REPO / ".env.example").read_text()
    assert f"GATEWAY_DICOMWEB_PUSH_URL={gateway['GATEWAY_DICOMWEB_PUSH_URL']}\n" in example
    # Set to nothing in .env, the push URL stays empty (no ":-"), which turns the receiver off.
    assert "${GATEWAY_DICOMWEB_PUSH_URL-" in (REPO / "docker-compose.yml").read_text()


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman-compose needs podman to run")
def test_podman_compose_renders_the_pacs_profile():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "podman-compose"), "-f", "docker-compose.yml",
         "--project-name", "brainscan-render", "--profile", "pacs", "config"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "PACS_GATEWAY_API_KEY": "k1"},
    )  # fmt: skip
    rendered = yaml.safe_load(result.stdout)
    assert "/orthancteam/orthanc:" in rendered["services"]["orthanc"]["image"]
    assert _orthanc_servers(rendered)["brainscan"]["HttpHeaders"] == {"X-API-Key": "k1"}
    gateway = rendered["services"]["gateway"]["environment"]
    assert gateway["GATEWAY_DICOMWEB_PUSH_URL"] == "http://orthanc:8042/dicom-web"


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman-compose needs podman to run")
def test_podman_compose_renders_the_file():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "podman-compose"), "-f", "docker-compose.yml",
         "--project-name", "brainscan-render", "--profile", "training", "config"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rendered = yaml.safe_load(result.stdout)
    assert {*RUNNING, "training"} <= set(rendered["services"])
    assert "prometheus" not in rendered["services"]  # not in these profiles
    gateway = rendered["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_INFERENCE_URL"] == "http://inference:8001"


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman-compose needs podman to run")
def test_podman_compose_renders_the_training_data_profile(tmp_path):
    data = tmp_path / "kaggle"
    data.mkdir()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "podman-compose"), "-f", "docker-compose.yml",
         "--project-name", "brainscan-render", "--profile", "training-data", "config"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "BRAINSCAN_DATA_DIR": str(data)},
    )  # fmt: skip
    job = yaml.safe_load(result.stdout)["services"]["training-data"]
    assert f"{data}:/data:ro" in job["volumes"]
    assert job["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "training" not in yaml.safe_load(result.stdout)["services"]


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman-compose needs podman to run")
def test_podman_compose_renders_the_monitoring_profile():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "podman-compose"), "-f", "docker-compose.yml",
         "--project-name", "brainscan-render", "--profile", "monitoring", "config"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    prometheus = yaml.safe_load(result.stdout)["services"]["prometheus"]
    assert "/prom/prometheus:v2." in prometheus["image"]
    rules = "helm/brainscan/files/prometheus/alerts.yml:/etc/prometheus/rules/brainscan-alerts.yml"
    assert f"./{rules}:ro" in prometheus["volumes"]
