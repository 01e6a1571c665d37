"""Each Jenkinsfile has the stages its component needs, in order, and a path filter that covers
everything its image or pipeline is built from; secrets come only from Jenkins credentials;
every Jenkinsfile passes npm-groovy-lint."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from ci_jenkinsfiles import (
    JENKINSFILES,
    REPO,
    covered,
    glob_matches,
    path_filter,
    stage_body,
    stage_names,
)

SERVICES = ["gateway", "inference", "model-sync"]
SERVICE_STAGES = ["Lint", "Unit tests", "Build image", "Push", "Deploy", "Smoke test"]
TRAINING_STAGES = ["Setup", "dvc pull", "dvc repro", "dvc push", "Register and promote"]
MLFLOW_STAGES = ["Lint", "Build image", "Check the server", "Push", "Deploy"]
HELM_KEYS = {"gateway": "gateway", "inference": "inference", "model-sync": "modelSync"}


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return listed.split()


@pytest.mark.parametrize("component", SERVICES)
def test_service_pipeline_stages_in_order(jenkinsfiles, component):
    assert stage_names(jenkinsfiles[component]) == [component, *SERVICE_STAGES]


def test_training_pipeline_stages_in_order(jenkinsfiles):
    assert stage_names(jenkinsfiles["training"]) == ["training", *TRAINING_STAGES]


def test_mlflow_pipeline_stages_in_order(jenkinsfiles):
    assert stage_names(jenkinsfiles["mlflow"]) == ["mlflow", *MLFLOW_STAGES]


@pytest.mark.parametrize("component", SERVICES)
def test_service_path_filter_is_its_own_code_the_libraries_and_the_lock(jenkinsfiles, component):
    patterns = path_filter(jenkinsfiles[component])
    assert f"services/{component}/**" in patterns
    assert {"libs/**", "uv.lock"} <= set(patterns)
    others = [f"services/{other}/src/app.py" for other in SERVICES if other != component]
    assert not any(covered(patterns, path) for path in others)
    assert not covered(patterns, "training/src/brainscan_training/train.py")
    assert not covered(patterns, "docs/gateway.md")


@pytest.mark.parametrize("component", SERVICES)
def test_service_path_filter_covers_what_its_image_is_built_from(jenkinsfiles, component):
    patterns = path_filter(jenkinsfiles[component])
    dockerfile = (REPO / f"services/{component}/Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)", dockerfile, re.MULTILINE)
    for source in copied:
        other_member = source.endswith("pyproject.toml") and f"services/{component}/" not in source
        if other_member or source == "libs/manifest/pyproject.toml":
            continue  # another member's dependencies change uv.lock, which is in the filter
        assert covered(patterns, source) or covered(patterns, f"{source}/x.py"), source


def test_training_path_filter_covers_the_dvc_pipeline(jenkinsfiles):
    patterns = path_filter(jenkinsfiles["training"])
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    code_deps = {
        dep
        for stage in pipeline["stages"].values()
        for dep in stage.get("deps", [])
        if not dep.startswith(("data/", "artifacts/", "reports/"))  # outputs of earlier stages
    }
    assert code_deps
    for dep in code_deps:
        assert covered(patterns, dep) or covered(patterns, f"{dep}/x.py"), dep
    for path in ("dvc.yaml", "params.yaml", "uv.lock", "training/src/brainscan_training/cli.py"):
        assert covered(patterns, path), path
    assert not covered(patterns, "services/gateway/src/brainscan_gateway/app.py")


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_every_path_filter_glob_matches_a_tracked_file(jenkinsfiles, component):
    # Plus files of this change that may not be committed yet when the test runs.
    tracked = [*_tracked_files(), *JENKINSFILES.values(), "infra/images/build.sh"]
    for pattern in path_filter(jenkinsfiles[component]):
        assert any(glob_matches(pattern, path) for path in tracked), pattern


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_filter_lets_manual_timer_and_first_builds_through(jenkinsfiles, component):
    text = jenkinsfiles[component]
    when = stage_body(text, component).split("stages {")[0]
    assert "anyOf" in when
    assert "triggeredBy 'UserIdCause'" in when
    assert "currentBuild.previousSuccessfulBuild == null" in when


@pytest.mark.parametrize("component", [*SERVICES, "mlflow"])
def test_image_tag_is_build_number_and_short_commit(jenkinsfiles, component):
    text = jenkinsfiles[component]
    assert 'IMAGE_TAG = "${env.BUILD_NUMBER}-${env.GIT_COMMIT.take(7)}"' in text
    assert f"COMPONENT = '{component}'" in text
    assert 'IMAGE = "${IMAGE_PREFIX}/${COMPONENT}:${IMAGE_TAG}"' in text
    assert 'infra/images/build.sh "$COMPONENT"' in stage_body(text, "Build image")


@pytest.mark.parametrize("component", [*SERVICES, "mlflow"])
def test_push_uses_jenkins_credentials_and_skips_pull_requests(jenkinsfiles, component):
    push = stage_body(jenkinsfiles[component], "Push")
    assert "when { not { changeRequest() } }" in push
    assert "usernamePassword(credentialsId: 'dockerhub'" in push
    assert "--password-stdin" in push
    # Single-quoted shell: Groovy never interpolates the secret into the command line.
    assert "sh '''" in push and '"""' not in push


@pytest.mark.parametrize("component", [*SERVICES, "mlflow"])
def test_deploy_runs_the_ansible_playbook_on_main_only(jenkinsfiles, component):
    deploy = stage_body(jenkinsfiles[component], "Deploy")
    assert "when { branch 'main' }" in deploy
    assert "playbooks/deploy.yml" in deploy and (REPO / "ansible/playbooks/deploy.yml").exists()
    assert "file(credentialsId: 'brainscan-ansible-vault-password'" in deploy
    assert '--vault-id production@"$VAULT_PASSWORD_FILE"' in deploy
    assert (REPO / "ansible/inventories/production").is_dir()
    key = HELM_KEYS.get(component, "mlflow")
    assert f"HELM_KEY = '{key}'" in jenkinsfiles[component]


@pytest.mark.parametrize("component", SERVICES)
def test_smoke_test_follows_the_deploy_on_main(jenkinsfiles, component):
    smoke = stage_body(jenkinsfiles[component], "Smoke test")
    assert "when { branch 'main' }" in smoke
    assert "python3 ci/smoke_test.py --url" in smoke


def test_training_records_the_registered_version(jenkinsfiles):
    text = jenkinsfiles["training"]
    register = stage_body(text, "Register and promote")
    assert "readJSON file: 'reports/registration.json'" in register
    assert "currentBuild.description" in register and "registration.version" in register
    assert '.venv/bin:$PATH" .venv/bin/dvc repro' in stage_body(text, "dvc repro")
    assert "when { not { changeRequest() } }" in stage_body(text, "dvc push")


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_no_secret_literals(jenkinsfiles, component):
    text = jenkinsfiles[component]
    assert not re.search(r"(?i)(password|token|secret)\s*=\s*['\"][^'\"$]", text)
    for credential in re.findall(r"credentialsId: '([^']+)'", text):
        assert credential in (REPO / "docs/ci.md").read_text(), f"{credential} not documented"


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_groovy_syntax_and_jenkinsfile_rules(groovy_lint, component):
    findings = groovy_lint[str(REPO / JENKINSFILES[component])]
    assert findings == [], [f"{f['line']}: {f['rule']} {f['msg']}" for f in findings]


def test_groovy_check_catches_a_syntax_error(groovy_lint):
    assert [finding["rule"] for finding in groovy_lint["broken"]] == ["NglParseError"]
