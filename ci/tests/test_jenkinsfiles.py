"""The service pipeline lives once, in the in-repository library (ci/jenkins-library): its stages
in order, tags, credentials, deploy and smoke test are checked there. Each Jenkinsfile loads the
library from its own commit and states only its configuration, whose path filter covers
everything its image or pipeline is built from; every file passes npm-groovy-lint."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from ci_jenkinsfiles import (
    JENKINSFILES,
    LIBRARY_DIR,
    LIBRARY_FILES,
    LIBRARY_LOAD,
    PATH_FILTER,
    REPO,
    SERVICE_PIPELINE,
    covered,
    glob_matches,
    path_filter,
    service_config,
    stage_body,
    stage_names,
)
from infra_dockerfiles import DOCKERFILE, Dockerfile

SERVICES = ["gateway", "inference", "model-sync"]
IMAGES = [*SERVICES, "mlflow"]  # the components built with the service pipeline
SERVICE_STAGES = [
    "Path filter", "Lint", "Unit tests", "Build image", "Check the image", "Push", "Deploy",
    "Smoke test",
]  # fmt: skip
TRAINING_STAGES = [
    "Path filter", "Setup", "dvc pull", "Feedback import", "dvc repro", "dvc push",
    "Register and promote",
]  # fmt: skip
CONFIG_KEYS = {"component", "paths", "lint", "tests", "imageKey", "smokeTest"}
ROLE_DEFAULTS = REPO / "ansible/roles/brainscan_deploy/defaults/main.yml"


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    # Plus the files of this change, which may not be committed yet when the test runs.
    return [*listed.split(), *JENKINSFILES.values(), *LIBRARY_FILES]


def _code(text: str) -> str:
    """A Groovy text without its // comments."""
    return re.sub(r"(?m)^\s*//.*$", "", text)


@pytest.fixture(scope="module")
def images() -> dict:
    """Each component's image in the one Dockerfile (infra/images/Dockerfile)."""
    dockerfile = Dockerfile.parse(REPO / DOCKERFILE)
    return {component: dockerfile.image(component) for component in IMAGES}


@pytest.fixture(scope="module")
def pipeline(library) -> str:
    return library[SERVICE_PIPELINE]


@pytest.fixture(scope="module")
def configs(jenkinsfiles) -> dict[str, dict]:
    return {component: service_config(jenkinsfiles[component]) for component in IMAGES}


# --- the library ------------------------------------------------------------------------------


def test_library_service_pipeline_stages_in_order(pipeline):
    assert stage_names(pipeline) == SERVICE_STAGES


def test_library_is_a_declarative_pipeline_in_a_call_method(pipeline):
    # Jenkins runs a Declarative Pipeline from a library only from a vars/ script's call method.
    assert re.search(r"^void call\(Map config\) \{$", pipeline, re.MULTILINE)
    assert re.search(r"^    pipeline \{$", pipeline, re.MULTILINE)
    assert (LIBRARY_DIR / "vars").is_dir() and not (LIBRARY_DIR / "src").exists()


def test_library_documents_every_configuration_key(pipeline):
    header = pipeline.split("void call")[0]
    for key in CONFIG_KEYS:
        assert re.search(rf"^//\s+{key}\s", header, re.MULTILINE), key
    required = re.search(r"for \(String key in \[([^\]]+)\]\)", pipeline).group(1)
    assert set(re.findall(r"'(\w+)'", required)) == CONFIG_KEYS - {"smokeTest"}


def test_path_filter_stage_gates_every_other_stage(pipeline):
    when = stage_body(pipeline, "Path filter").split("stages {")[0]
    assert "anyOf" in when
    assert "triggeredBy 'UserIdCause'" in when
    assert "expression { brainscanChanged(config.paths) }" in when
    # A branch's first build has nothing to compare with: the filter lets it through.
    assert "currentBuild.previousSuccessfulBuild == null" in (REPO / PATH_FILTER).read_text()


def test_image_tag_is_build_number_and_short_commit(pipeline):
    assert 'IMAGE_TAG = "${env.BUILD_NUMBER}-${env.GIT_COMMIT.take(7)}"' in pipeline
    assert 'COMPONENT = "${config.component}"' in pipeline
    assert 'IMAGE = "${IMAGE_PREFIX}/${COMPONENT}:${IMAGE_TAG}"' in pipeline
    assert 'infra/images/build.sh "$COMPONENT"' in stage_body(pipeline, "Build image")


def test_lint_and_tests_run_what_the_configuration_names(pipeline):
    assert "LINT_PATHS = \"${config.lint.join(' ')}\"" in pipeline
    lint = stage_body(pipeline, "Lint")
    assert "ruff check $LINT_PATHS" in lint and "ruff format --check $LINT_PATHS" in lint
    tests = stage_body(pipeline, "Unit tests")
    assert 'pytest $TEST_PATHS --junitxml="reports/junit-$COMPONENT.xml"' in tests
    assert "junit testResults: 'reports/junit-*.xml'" in tests


def test_image_check_waits_for_the_images_own_healthcheck(pipeline, images):
    check = stage_body(pipeline, "Check the image")
    assert "docker inspect --format '{{.State.Health.Status}}'" in check
    assert "healthy) exit 0" in check and "docker rm --force" in check
    for component, image in images.items():
        assert image.final.all("HEALTHCHECK") not in ([], ["NONE"]), component


def test_push_uses_jenkins_credentials_and_skips_pull_requests(pipeline):
    push = stage_body(pipeline, "Push")
    assert "when { not { changeRequest() } }" in push
    assert "usernamePassword(credentialsId: 'dockerhub'" in push
    assert "--password-stdin" in push
    # Single-quoted shell: Groovy never interpolates the secret into the command line.
    assert "sh '''" in push and '"""' not in push


def test_deploy_moves_only_its_image_one_deploy_at_a_time_on_main(pipeline):
    deploy = stage_body(pipeline, "Deploy")
    assert "when { branch 'main' }" in deploy
    assert "playbooks/deploy.yml" in deploy and (REPO / "ansible/playbooks/deploy.yml").exists()
    assert "file(credentialsId: 'brainscan-ansible-vault-password'" in deploy
    assert '--vault-id production@"$VAULT_PASSWORD_FILE"' in deploy
    assert (REPO / "ansible/inventories/production").is_dir()
    # The role's per-image tags: every other image keeps the tag the release runs.
    assert "[brainscan_deploy_image_tags: [(env.IMAGE_KEY): env.IMAGE_TAG]]" in deploy
    assert "brainscan_deploy_image_tags" in yaml.safe_load(ROLE_DEFAULTS.read_text())
    assert "brainscan_deploy_extra_values" not in deploy  # it would replace the inventory's
    assert "lock(resource: 'brainscan-production-deploy')" in deploy


def test_smoke_test_follows_the_deploy_on_main_unless_switched_off(pipeline):
    smoke = stage_body(pipeline, "Smoke test")
    assert "branch 'main'" in smoke and "expression { smokeTest }" in smoke
    assert "python3 ci/smoke_test.py --url" in smoke
    assert "boolean smokeTest = config.smokeTest == null ? true : config.smokeTest" in pipeline


# --- the Jenkinsfiles -------------------------------------------------------------------------


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_every_jenkinsfile_loads_the_library_from_its_own_commit(jenkinsfiles, component):
    assert _code(jenkinsfiles[component]).count(LIBRARY_LOAD) == 1
    assert (LIBRARY_DIR / "vars").is_dir()


@pytest.mark.parametrize("component", IMAGES)
def test_service_jenkinsfile_states_only_its_configuration(jenkinsfiles, configs, component):
    code = _code(jenkinsfiles[component]).replace(LIBRARY_LOAD, "")
    assert "pipeline {" not in code and "stage(" not in code and "sh " not in code
    assert code.count("brainscanServicePipeline(") == 1
    config = configs[component]
    assert set(config) <= CONFIG_KEYS and set(config) >= CONFIG_KEYS - {"smokeTest"}
    assert config["component"] == component
    # The deploy role knows the image under that key, as the image this pipeline builds.
    repositories = yaml.safe_load(ROLE_DEFAULTS.read_text())["brainscan_deploy_image_repositories"]
    assert repositories[config["imageKey"]] == f"brainscan/{component}"


def test_mlflow_alone_skips_the_smoke_test(configs):
    assert configs["mlflow"]["smokeTest"] is False
    assert all("smokeTest" not in configs[service] for service in SERVICES)


def test_training_pipeline_stages_in_order(jenkinsfiles):
    assert stage_names(jenkinsfiles["training"]) == TRAINING_STAGES


def test_training_filter_adds_the_weekly_timer(jenkinsfiles):
    when = stage_body(jenkinsfiles["training"], "Path filter").split("stages {")[0]
    assert "triggeredBy 'TimerTrigger'" in when and "triggeredBy 'UserIdCause'" in when
    assert "brainscanChanged([" in when


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
def test_service_path_filter_covers_what_its_image_is_built_from(jenkinsfiles, images, component):
    patterns = path_filter(jenkinsfiles[component])
    assert covered(patterns, DOCKERFILE)
    for source in images[component].copy_sources():
        if source == ".":
            # The manifests stage: every pyproject.toml; another member's dependencies change
            # uv.lock, which is in the filter, as are the root and the service's own.
            for path in ("uv.lock", "pyproject.toml", f"services/{component}/pyproject.toml"):
                assert covered(patterns, path), path
            continue
        assert covered(patterns, source) or covered(patterns, f"{source}/x.py"), source


@pytest.mark.parametrize("component", IMAGES)
def test_what_lint_and_tests_read_exists_and_is_in_the_path_filter(configs, component):
    config = configs[component]
    for path in [*config["lint"], *config["tests"]]:
        assert (REPO / path).exists(), path
        assert covered(config["paths"], path) or covered(config["paths"], f"{path}/x.py"), path


def test_training_path_filter_covers_the_dvc_pipeline(jenkinsfiles):
    patterns = path_filter(jenkinsfiles["training"])
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    code_deps = {
        _resolved(dep, params)  # a ${...} dep is the params value DVC puts there
        for stage in pipeline["stages"].values()
        for dep in stage.get("deps", [])
        if not dep.startswith(("data/", "artifacts/", "reports/"))  # outputs of earlier stages
    }
    assert all("${" not in dep for dep in code_deps)
    assert code_deps
    for dep in code_deps:
        assert covered(patterns, dep) or covered(patterns, f"{dep}/x.py"), dep
    for path in ("dvc.yaml", "params.yaml", "uv.lock", "training/src/brainscan_training/cli.py"):
        assert covered(patterns, path), path
    assert not covered(patterns, "services/gateway/src/brainscan_gateway/app.py")


def _resolved(dep: str, params: dict) -> str:
    """``dep`` with DVC's ``${dotted.key}`` templates replaced by their params.yaml values."""

    def value(match: re.Match) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", value, dep)


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_a_library_change_rebuilds_every_pipeline(jenkinsfiles, component):
    patterns = path_filter(jenkinsfiles[component])
    for path in LIBRARY_FILES:
        assert covered(patterns, path), path


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_every_path_filter_glob_matches_a_tracked_file(jenkinsfiles, component):
    tracked = _tracked_files()
    for pattern in path_filter(jenkinsfiles[component]):
        assert any(glob_matches(pattern, path) for path in tracked), pattern


def test_training_records_the_registered_version(jenkinsfiles):
    text = jenkinsfiles["training"]
    register = stage_body(text, "Register and promote")
    assert "readJSON file: 'reports/registration.json'" in register
    assert "currentBuild.description" in register and "registration.version" in register
    assert '.venv/bin:$PATH" .venv/bin/dvc repro' in stage_body(text, "dvc repro")
    assert "when { not { changeRequest() } }" in stage_body(text, "dvc push")


def test_training_imports_feedback_on_demand_or_on_the_timer_before_the_repro(jenkinsfiles):
    text = jenkinsfiles["training"]
    for name in ("FEEDBACK_IMPORT", "FEEDBACK_DIR", "FEEDBACK_ACCEPTED_ONLY"):
        assert f"name: '{name}'" in text
    body = stage_body(text, "Feedback import")
    when = body.split("steps {")[0]
    assert "expression { params.FEEDBACK_IMPORT }" in when
    assert "triggeredBy 'TimerTrigger'" in when and "env.BRAINSCAN_FEEDBACK_DIR" in when
    assert '.venv/bin/brainscan-train feedback import --from "$FROM_DIR" $FEEDBACK_FLAGS' in body
    assert "--accepted-only" in body
    assert "reports/feedback-import.json" in body  # archived with reports/**
    names = stage_names(text)
    assert names.index("Feedback import") == names.index("dvc repro") - 1


# --- every file -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*JENKINSFILES.values(), *LIBRARY_FILES])
def test_no_secret_literals(path):
    text = (REPO / path).read_text()
    assert not re.search(r"(?i)(password|token|secret)\s*=\s*['\"][^'\"$]", text)
    for credential in re.findall(r"credentialsId: '([^']+)'", text):
        assert credential in (REPO / "docs/ci.md").read_text(), f"{credential} not documented"


@pytest.mark.parametrize("path", [*JENKINSFILES.values(), *LIBRARY_FILES])
def test_groovy_syntax_and_jenkinsfile_rules(groovy_lint, path):
    findings = groovy_lint[str(REPO / path)]
    assert findings == [], [f"{f['line']}: {f['rule']} {f['msg']}" for f in findings]


def test_groovy_check_catches_a_syntax_error(groovy_lint):
    assert [finding["rule"] for finding in groovy_lint["broken"]] == ["NglParseError"]


@pytest.mark.parametrize("component", sorted(JENKINSFILES))
def test_every_pipeline_ends_by_sending_its_build_event(jenkinsfiles, library, component):
    # The service pipelines come from the library; training has its own Jenkinsfile.
    text = jenkinsfiles[component]
    if "brainscanServicePipeline(" in text:
        text = library["ci/jenkins-library/vars/brainscanServicePipeline.groovy"]
    post = text[text.rindex("post {") :]
    assert "always {" in post and "brainscanBuildEvent()" in post
    step = library["ci/jenkins-library/vars/brainscanBuildEvent.groovy"]
    assert "elk/jenkins/build_event.py" in step and "catch (err)" in step
    assert "--result ${currentBuild.currentResult}" in step
