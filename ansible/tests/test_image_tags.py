"""Which tag each image gets in a deploy: what the deploy sets, else what the release runs now,
else the initial tag. The role's filter on its own, then the role run for real on localhost with
a release state as kubernetes.core.helm_info returns it, rendered through the chart."""

from __future__ import annotations

import importlib.util
import json

import k8s_render
import pytest
import yaml
from ansible_paths import ROLE_DIR


def _filter_module():
    # By path: the role's filter_plugins folder is no package (and `ansible` here is ansible/).
    path = ROLE_DIR / "filter_plugins/image_tags.py"
    spec = importlib.util.spec_from_file_location("brainscan_deploy_image_tags", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


image_tags = _filter_module()
plan = image_tags.image_tag_plan

# A release as helm_info (get_all_values) reports it: every component of the chart, its tags.
RUNNING = {
    "app_version": "0.1.0",
    "values": {
        "gateway": {"image": {"tag": "41-1111111"}},
        "inference": {"image": {"tag": "40-2222222"}},
        "modelSync": {"image": {"tag": "39-3333333"}},
        "mlflow": {"enabled": True, "image": {"tag": "2-4444444"}},
    },
}


def _tags(chosen: dict) -> dict[str, str]:
    return {image: entry["tag"] for image, entry in chosen.items()}


def _without(helm_key: str) -> dict:
    values = {k: v for k, v in RUNNING["values"].items() if k != helm_key}
    return {**RUNNING, "values": values}


@pytest.mark.parametrize("release", [None, {}], ids=["no-release", "empty-status"])
def test_first_install_gives_every_image_the_initial_tag(release):
    chosen = plan(release, "0.1.0", {}, "")
    assert _tags(chosen) == dict.fromkeys(["gateway", "inference", "model_sync", "mlflow"], "0.1.0")
    assert {entry["source"] for entry in chosen.values()} == {image_tags.INITIAL}


def test_first_install_of_a_service_pipeline_sets_its_image_only():
    chosen = plan(None, "0.1.0", {"gateway": "57-3fa9c1e"}, "")
    assert _tags(chosen) == {
        "gateway": "57-3fa9c1e", "inference": "0.1.0", "model_sync": "0.1.0", "mlflow": "0.1.0",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("image", "tag"),
    [("gateway", "57-3fa9c1e"), ("inference", "58-5555555"), ("model_sync", "59-6666666")],
)
def test_a_one_service_deploy_keeps_the_other_images_running_tags(image, tag):
    chosen = plan(RUNNING, "0.1.0", {image: tag}, "")
    expected = {
        "gateway": "41-1111111", "inference": "40-2222222", "model_sync": "39-3333333",
        "mlflow": "2-4444444",
    }  # fmt: skip
    assert _tags(chosen) == expected | {image: tag}
    assert chosen[image]["source"] == image_tags.SET_BY_THIS_DEPLOY
    assert {chosen[other]["source"] for other in expected if other != image} == {
        image_tags.KEPT_RUNNING
    }


def test_a_deploy_that_sets_nothing_changes_no_image():
    assert _tags(plan(RUNNING, "0.1.0", {}, "")) == {
        "gateway": "41-1111111", "inference": "40-2222222", "model_sync": "39-3333333",
        "mlflow": "2-4444444",
    }  # fmt: skip


def test_every_image_tag_moves_all_and_an_explicit_image_tag_wins_over_it():
    chosen = plan(RUNNING, "0.1.0", {"mlflow": "3-7777777"}, "0.2.0")
    assert _tags(chosen) == {
        "gateway": "0.2.0", "inference": "0.2.0", "model_sync": "0.2.0", "mlflow": "3-7777777",
    }  # fmt: skip
    assert {entry["source"] for entry in chosen.values()} == {image_tags.SET_BY_THIS_DEPLOY}


@pytest.mark.parametrize(
    "release",
    [
        _without("mlflow"),  # a release of a chart before the component existed
        {
            **RUNNING,
            "values": {
                **RUNNING["values"],
                "mlflow": {"enabled": False, "image": {"tag": "2-4444444"}},
            },
        },
        {**RUNNING, "values": {**RUNNING["values"], "mlflow": {"enabled": True}}},
    ],
    ids=["absent", "switched-off", "no-image"],
)
def test_a_component_the_release_does_not_run_gets_the_initial_tag(release):
    chosen = plan(release, "0.1.0", {"gateway": "57-3fa9c1e"}, "")
    assert chosen["mlflow"] == {"tag": "0.1.0", "source": image_tags.INITIAL}
    assert chosen["inference"] == {"tag": "40-2222222", "source": image_tags.KEPT_RUNNING}


def test_an_empty_running_tag_is_the_charts_app_version():
    release = {**RUNNING, "values": {**RUNNING["values"], "inference": {"image": {"tag": ""}}}}
    assert plan(release, "dev", {}, "")["inference"]["tag"] == "0.1.0"


def test_tags_written_as_numbers_in_yaml_are_tags():
    assert plan(None, 7, {"gateway": 57}, "")["gateway"]["tag"] == "57"
    assert plan(None, 7, {}, "")["inference"]["tag"] == "7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0.1.0", {"modelSync": "1-abc"}, ""), "unknown image modelSync; the images are gateway"),
        (("0.1.0", {"gateway": ""}, ""), "brainscan_deploy_image_tags.gateway: '' is not"),
        (("0.1.0", {"gateway": "a:b"}, ""), "brainscan_deploy_image_tags.gateway: 'a:b' is not"),
        (("", {}, ""), "brainscan_deploy_initial_image_tag: '' is not an image tag"),
        (("0.1.0", {}, "-rc1"), "brainscan_deploy_image_tag: '-rc1' is not an image tag"),
    ],
    ids=["helm-key-not-image-key", "empty-tag", "colon", "no-initial-tag", "leading-dash"],
)
def test_bad_tags_are_refused_naming_the_variable(args, message):
    with pytest.raises(image_tags.ImageTagError, match=message.replace(".", r"\.")):
        plan(RUNNING, *args)


def test_the_role_reads_the_release_before_writing_the_values():
    main = yaml.safe_load((ROLE_DIR / "tasks/main.yml").read_text())
    order = [task["ansible.builtin.import_tasks"] for task in main]
    assert order.index("running.yml") < order.index("values.yml") < order.index("release.yml")
    tags = {task["ansible.builtin.import_tasks"]: task.get("tags", []) for task in main}
    # --tags release rewrites the values from the release it just read, never stale ones.
    assert "release" in tags["running.yml"] and "release" in tags["values.yml"]
    (read, _) = yaml.safe_load((ROLE_DIR / "tasks/running.yml").read_text())
    helm_info = read["kubernetes.core.helm_info"]
    assert helm_info["get_all_values"] is True  # computed values: empty tags, mlflow.enabled
    assert read["register"] == "brainscan_deploy_release_before"
    assert "brainscan_deploy_release_before" in (ROLE_DIR / "vars/main.yml").read_text()


# --- the role run for real (deploy playbook, --tags values) --------------------------------


def _deploy_values(run_ansible, inventory, vault_id, work_dir, extra_vars: dict) -> dict:
    """Run the role's values tasks with extra variables; the values Helm would get."""
    extra = work_dir / "extra-vars.json"
    extra.write_text(json.dumps(extra_vars))
    result = run_ansible(
        "ansible-playbook", "playbooks/deploy.yml", "-i", inventory, "--vault-id", vault_id,
        "--tags", "values", "-e", f"brainscan_deploy_work_dir={work_dir}", "-e", f"@{extra}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return k8s_render.merge_values(
        k8s_render.load_values(work_dir / "brainscan-values.yaml"),
        k8s_render.load_values(work_dir / "brainscan-extra-values.yaml"),
    )


def _image_tags(values: dict) -> dict[str, str]:
    """component -> tag of its container image in the release the chart renders."""
    release = k8s_render.render(values)
    tags = {}
    for deployment in release.of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        tags[component] = container["image"].rsplit(":", 1)[1]
    return tags


@pytest.fixture(scope="module")
def running_release(run_ansible, test_inventories, vault_id, tmp_path_factory) -> dict:
    """The `local` release as helm_info would report it after earlier deploys: the chart's
    defaults under the role's values, each service at a tag of its own, MLflow outside it."""
    work_dir = tmp_path_factory.mktemp("first-install")
    first = _deploy_values(run_ansible, test_inventories["local"], vault_id, work_dir, {})
    assert set(_image_tags(first).values()) == {"dev"}  # the local inventory's initial tag
    computed = k8s_render.merge_values(
        k8s_render.load_values(k8s_render.CHART_DIR / "values.yaml"), first
    )
    earlier_deploys = {
        "gateway": {"image": {"tag": "41-1111111"}},
        "inference": {"image": {"tag": "40-2222222"}},
        "modelSync": {"image": {"tag": ""}},  # the chart's appVersion
        "mlflow": {"enabled": False},
    }
    values = k8s_render.merge_values(computed, earlier_deploys)
    return {"status": {"app_version": "0.1.0", "revision": 3, "values": values}}


def test_role_a_service_pipeline_deploy_moves_its_image_only(
    run_ansible, test_inventories, vault_id, tmp_path, running_release
):
    values = _deploy_values(
        run_ansible, test_inventories["local"], vault_id, tmp_path,
        {"brainscan_deploy_release_before": running_release,
         "brainscan_deploy_image_tags": {"inference": "58-5555555"}},
    )  # fmt: skip
    assert _image_tags(values) == {
        "gateway": "41-1111111",  # kept: not rolled back to the inventory's tag
        "inference": "58-5555555",  # set by this deploy
        "model-sync": "0.1.0",  # kept: the appVersion it runs
        "mlflow": "dev",  # the release did not run it: the initial tag
    }
    # The inventory's own extra values survive: the tag no longer travels in extra values.
    assert values["gateway"]["service"]["type"] == "NodePort"


def test_role_an_every_image_tag_moves_all_but_an_explicit_one(
    run_ansible, test_inventories, vault_id, tmp_path, running_release
):
    values = _deploy_values(
        run_ansible, test_inventories["local"], vault_id, tmp_path,
        {"brainscan_deploy_release_before": running_release,
         "brainscan_deploy_image_tag": "dev2",
         "brainscan_deploy_image_tags": {"gateway": "59-7777777"}},
    )  # fmt: skip
    assert _image_tags(values) == {
        "gateway": "59-7777777", "inference": "dev2", "model-sync": "dev2", "mlflow": "dev2",
    }  # fmt: skip


def test_role_a_bad_image_name_stops_the_deploy_with_the_reason(
    run_ansible, test_inventories, vault_id, tmp_path
):
    extra = tmp_path / "extra-vars.json"
    extra.write_text(json.dumps({"brainscan_deploy_image_tags": {"modelSync": "59-7777777"}}))
    result = run_ansible(
        "ansible-playbook", "playbooks/deploy.yml", "-i", test_inventories["local"],
        "--vault-id", vault_id, "--tags", "values",
        "-e", f"brainscan_deploy_work_dir={tmp_path}", "-e", f"@{extra}",
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown image modelSync; the images are gateway, inference, model_sync, mlflow" in (
        result.stdout + result.stderr
    )
    assert not (tmp_path / "brainscan-values.yaml").exists()
