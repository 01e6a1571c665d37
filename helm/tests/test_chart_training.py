"""The training job (training.job / training.cronJob): `dvc repro` of the training image on a
data set in a claim, mounted read-only at /data, its params written before the pipeline runs,
registering into the release's MLflow, which the NetworkPolicies let it (and only it) reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import k8s_network
import k8s_render
import pytest
import yaml
from k8s_network import Endpoint

REPO = Path(__file__).resolve().parents[2]
ON = {"training": {"job": {"enabled": True}, "data": {"existingClaim": "mri"}}}
DNS = Endpoint("CoreDNS", "kube-system", {"k8s-app": "kube-dns"}, ports={53: "dns-tcp"})
EXTERNAL_MLFLOW = Endpoint("the external MLflow", None, ip="203.0.113.10", ports={443: "https"})
INTERNET = Endpoint("an address on the internet", None, ip="198.51.100.7", ports={443: "https"})


@pytest.fixture(scope="module")
def release(releases) -> k8s_render.RenderedRelease:
    return releases["training-job"]


def _job(release) -> dict[str, Any]:
    (job,) = release.of_kind("Job")
    return job


def _pod(release) -> dict[str, Any]:
    return _job(release)["spec"]["template"]["spec"]


def _containers(pod) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


def _mounts(container) -> dict[str, dict[str, Any]]:
    return {mount["mountPath"]: mount for mount in container["volumeMounts"]}


def _env(container) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _training_pod_endpoint(release) -> Endpoint:
    labels = _job(release)["spec"]["template"]["metadata"]["labels"]
    return Endpoint("training", k8s_render.NAMESPACE, labels)


def _deployment_pod(release, component: str, port: int) -> Endpoint:
    labels = release.deployment(component)["spec"]["template"]["metadata"]["labels"]
    return Endpoint(component, k8s_render.NAMESPACE, labels, ports={port: "http"})


# --- on and off ---------------------------------------------------------------------------------


def test_off_by_default_nothing_of_it_is_rendered(releases):
    defaults = releases["defaults"]
    assert defaults.of_kind("Job") == [] and defaults.of_kind("CronJob") == []
    assert not any("training" in obj["metadata"]["name"] for obj in defaults.objects)
    mlflow_policy = defaults.get("NetworkPolicy", "brainscan-mlflow")
    assert "training" not in yaml.safe_dump(mlflow_policy)


def test_on_it_is_a_job_a_cronjob_with_the_same_pod_and_their_account_and_policy(release):
    job = _job(release)
    (cron,) = release.of_kind("CronJob")
    assert job["metadata"]["name"].startswith("brainscan-training-")
    assert cron["metadata"]["name"] == "brainscan-training"
    assert cron["spec"]["jobTemplate"]["spec"]["template"] == job["spec"]["template"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("30 2 * * 1", "Europe/Berlin")
    assert _pod(release)["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 604800
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert _pod(release)["serviceAccountName"] in release.names("ServiceAccount")
    assert "brainscan-training" in release.names("NetworkPolicy")


def test_a_job_alone_or_a_cronjob_alone():
    job_only = k8s_render.render(ON)
    assert len(job_only.of_kind("Job")) == 1 and job_only.of_kind("CronJob") == []
    assert "ttlSecondsAfterFinished" not in _job(job_only)["spec"]  # null: kept
    cron_only = k8s_render.render(
        {"training": {"cronJob": {"enabled": True}, "data": {"existingClaim": "mri"}}}
    )
    assert cron_only.of_kind("Job") == [] and len(cron_only.of_kind("CronJob")) == 1
    for release in (job_only, cron_only):
        assert k8s_render.validation_errors(release.objects, ("1.29", "1.34")) == []


# --- the run: data, params, then dvc repro ------------------------------------------------------


def test_the_data_claim_is_mounted_read_only_at_data(release, scenario_values):
    pod = _pod(release)
    data = scenario_values["training-job"]["training"]["data"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": data["existingClaim"], "readOnly": True}
    mount = _mounts(_containers(pod)["training"])["/data"]
    assert (mount["name"], mount["readOnly"], mount["subPath"]) == (
        volume["name"],
        True,
        data["subPath"],
    )
    # Only the pipeline reads the data; no container mounts it writable.
    for container in _containers(pod).values():
        for mount in container["volumeMounts"]:
            if mount["name"] == volume["name"]:
                assert mount["readOnly"] is True


def test_params_are_written_into_the_workspace_before_dvc_repro(release):
    pod = _pod(release)
    assert [c["name"] for c in pod["initContainers"]] == ["workspace", "params"]
    containers = _containers(pod)
    # Init containers run one after the other, all before the pipeline's container.
    (training,) = pod["containers"]
    assert training["command"] == ["dvc", "repro"]
    assert training["workingDir"] == "/workspace"
    workspace = _mounts(training)["/workspace"]
    # The image's DVC project copied into the volume's folder that /workspace then mounts.
    copy = containers["workspace"]
    assert copy["command"][:2] == ["cp", "-a"] and copy["command"][2] == "/workspace"
    (target,) = [m for m in copy["volumeMounts"] if m["name"] == workspace["name"]]
    assert copy["command"][3].rstrip("/") == target["mountPath"]
    assert Path(copy["command"][2]).name == workspace["subPath"]
    params = containers["params"]
    assert _mounts(params)["/workspace"] == workspace
    assert params["workingDir"] == training["workingDir"]
    assert params["command"][0] == "brainscan-train"


def test_the_params_step_is_the_cli_and_sets_the_mounted_folder(release, tmp_path, capsys):
    from brainscan_training.cli import _parser, main
    from brainscan_training.params import load_params

    pod = _pod(release)
    command = _containers(pod)["params"]["command"]
    args = _parser().parse_args(command[1:])
    assert args.command == "params"
    assert str(args.params) == str(args.out) == "params.yaml"  # DVC reads it in /workspace
    assert args.overrides[:2] == ["data.source=directory", "data.source_dir=/data"]
    assert "/data" in _mounts(_containers(pod)["training"])
    # Run it on the image's params.yaml (the repository's), as the pod would.
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    argv = [str(params) if arg == "params.yaml" else arg for arg in command[1:]]
    assert main(argv) == 0, capsys.readouterr().err
    written = load_params(params)
    assert (written.data.source, written.data.source_dir) == ("directory", "/data")
    assert (written.profile, written.warm_start, written.seed) == ("full", "production", 8)


def test_a_bad_params_value_fails_in_the_params_step_not_in_the_pipeline(tmp_path, capsys):
    from brainscan_training.cli import main

    release = k8s_render.render(
        k8s_render.merge_values(ON, {"training": {"params": {"data.image_size": "big"}}})
    )
    command = _containers(_pod(release))["params"]["command"]
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    assert main([str(params) if a == "params.yaml" else a for a in command[1:]]) == 2
    assert "data.image_size" in capsys.readouterr().err


def test_the_tracking_uri_is_the_in_chart_mlflow_service(release):
    env = _env(_containers(_pod(release))["training"])
    service = release.get("Service", "brainscan-mlflow")
    assert (
        env["MLFLOW_TRACKING_URI"]
        == f"http://brainscan-mlflow:{service['spec']['ports'][0]['port']}"
    )
    assert "MLFLOW_TRACKING_USERNAME" not in env


def test_an_external_mlflow_is_its_url_and_its_credentials_secret(releases, scenario_values):
    values = k8s_render.merge_values(scenario_values["external-mlflow"], ON)
    release = k8s_render.render(values)
    env = _env(_containers(_pod(release))["training"])
    assert env["MLFLOW_TRACKING_URI"] == values["mlflow"]["external"]["url"]
    secret = values["mlflow"]["auth"]["existingSecret"]
    for variable, key in (("MLFLOW_TRACKING_USERNAME", "username"),
                          ("MLFLOW_TRACKING_PASSWORD", "password"),
                          ("MLFLOW_TRACKING_TOKEN", "token")):  # fmt: skip
        assert env[variable]["secretKeyRef"] == {"name": secret, "key": key, "optional": True}
    policies = release.of_kind("NetworkPolicy")
    training = _training_pod_endpoint(release)
    assert k8s_network.allows(policies, training, EXTERNAL_MLFLOW, 443)
    assert not k8s_network.allows(policies, training, INTERNET, 443)
    assert k8s_render.validation_errors(release.objects, ("1.29", "1.34")) == []


# --- network ------------------------------------------------------------------------------------


def test_the_job_reaches_mlflow_and_dns_and_nothing_else(release):
    policies = release.of_kind("NetworkPolicy")
    training = _training_pod_endpoint(release)
    mlflow = _deployment_pod(release, "mlflow", 5000)
    assert k8s_network.allows(policies, training, mlflow, 5000)
    assert k8s_network.allows(policies, training, DNS, 53)
    for component, port in (("gateway", 8000), ("inference", 8001), ("model-sync", 8002)):
        assert not k8s_network.allows(
            policies, training, _deployment_pod(release, component, port), port
        )
    assert not k8s_network.allows(policies, training, INTERNET, 443)


def test_mlflow_is_reached_by_model_sync_and_the_job_alone_and_nothing_reaches_the_job(release):
    policies = release.of_kind("NetworkPolicy")
    training = _training_pod_endpoint(release)
    mlflow = _deployment_pod(release, "mlflow", 5000)
    pods = {c: _deployment_pod(release, c, p) for c, p in
            (("gateway", 8000), ("inference", 8001), ("model-sync", 8002))}  # fmt: skip
    reaching = {
        name for name, pod in pods.items() if k8s_network.allows(policies, pod, mlflow, 5000)
    }
    assert reaching == {"model-sync"}
    outsider = Endpoint("a pod of another namespace", "elsewhere", {"app": "client"})
    assert not k8s_network.allows(policies, outsider, mlflow, 5000)
    target = Endpoint("training", k8s_render.NAMESPACE, training.labels, ports={8080: "http"})
    for source in (*pods.values(), mlflow, outsider):
        assert not k8s_network.allows(policies, source, target, 8080), source.name
    # Exactly one policy selects the job's pods, in both directions.
    selects = k8s_network.selector_matches
    selecting = [p for p in policies if selects(p["spec"]["podSelector"], training.labels)]
    assert len(selecting) == 1
    assert set(selecting[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


# --- security, resources, writable paths ---------------------------------------------------------


def test_the_pod_is_as_locked_down_as_the_services(release):
    pod = _pod(release)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert not [v for v in pod["volumes"] if "hostPath" in v]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field)
    for name, container in _containers(pod).items():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) >= {"cpu", "memory"}, name
        # Init containers may not have lifecycle hooks or probes (the API refuses them).
        assert not {"lifecycle", "livenessProbe", "readinessProbe"} & set(container), name


def test_everything_it_writes_is_a_volume(release):
    pod = _pod(release)
    volumes = {v["name"]: v for v in pod["volumes"]}
    (training,) = pod["containers"]
    mounts = _mounts(training)
    assert {m["name"] for c in _containers(pod).values() for m in c["volumeMounts"]} <= set(volumes)
    assert "emptyDir" in volumes[mounts["/workspace"]["name"]]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    env = _env(training)
    # DVC's site cache would default to /var/tmp/dvc on the read-only root.
    assert env["DVC_SITE_CACHE_DIR"].startswith("/tmp/")
    assert env["HOME"] == "/workspace" and env["MPLCONFIGDIR"].startswith("/tmp/")


# --- upgrades -----------------------------------------------------------------------------------


def test_the_job_name_follows_its_pod_so_an_upgrade_never_patches_a_job(release, scenario_values):
    values = scenario_values["training-job"]
    again = k8s_render.render(values)
    assert _job(again)["metadata"]["name"] == _job(release)["metadata"]["name"]
    changed = k8s_render.merge_values(values, {"training": {"params": {"seed": 9}}})
    assert _job(k8s_render.render(changed))["metadata"]["name"] != _job(release)["metadata"]["name"]
    retag = k8s_render.merge_values(values, {"training": {"image": {"tag": "2"}}})
    assert _job(k8s_render.render(retag))["metadata"]["name"] != _job(release)["metadata"]["name"]
    # The chart's own version is not in the pod: a chart upgrade alone is no new run.
    labels = _job(release)["spec"]["template"]["metadata"]["labels"]
    assert "helm.sh/chart" not in labels and "app.kubernetes.io/version" not in labels
    assert len(_job(release)["metadata"]["name"]) <= 63


def test_notes_say_how_to_follow_the_run(release):
    assert f"logs -f job/{_job(release)['metadata']['name']}" in release.notes
