"""Jenkinsfiles and the Jenkins library read as text: stage names in order, a stage's body, the
configuration a Jenkinsfile passes to the library, the path filter's globs; and Ant-style globs
as the library's path filter applies them."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# component -> Jenkinsfile
JENKINSFILES = {
    "gateway": "services/gateway/Jenkinsfile",
    "inference": "services/inference/Jenkinsfile",
    "model-sync": "services/model-sync/Jenkinsfile",
    "mlflow": "infra/mlflow/Jenkinsfile",
    "training": "training/Jenkinsfile",
}


# The in-repository Jenkins library (ci/jenkins-library/vars/*.groovy) and its service pipeline.
LIBRARY_DIR = REPO / "ci/jenkins-library"
LIBRARY_FILES = sorted(p.relative_to(REPO).as_posix() for p in LIBRARY_DIR.glob("vars/*.groovy"))
SERVICE_PIPELINE = "ci/jenkins-library/vars/brainscanServicePipeline.groovy"
PATH_FILTER = "ci/jenkins-library/vars/brainscanChanged.groovy"
# How every Jenkinsfile loads the library: from the commit being built.
LIBRARY_LOAD = (
    "library identifier: 'brainscan-ci@this-commit', "
    "retriever: legacySCM(scm: scm, libraryPath: 'ci/jenkins-library/')"
)


def stage_names(text: str) -> list[str]:
    return re.findall(r"\bstage\('([^']+)'\)", text)


def stage_body(text: str, name: str) -> str:
    """The text of stage(name) { ... }, braces balanced."""
    start = text.index(f"stage('{name}')")
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening : index + 1]
    raise ValueError(f"stage {name} is not closed")


def _strings(listed: str) -> list[str]:
    return re.findall(r"'([^']*)'", listed)


def service_config(text: str) -> dict:
    """The arguments of a Jenkinsfile's brainscanServicePipeline(...) call: strings, lists of
    strings and booleans."""
    call = r"^brainscanServicePipeline\((.*?)^\)"
    (arguments,) = re.findall(call, text, re.DOTALL | re.MULTILINE)
    arguments = re.sub(r"//[^\n]*", "", arguments)
    config = {}
    for key, value in re.findall(r"(\w+):\s*('[^']*'|\[.*?\]|true|false)", arguments, re.DOTALL):
        if value.startswith("'"):
            config[key] = value.strip("'")
        elif value.startswith("["):
            config[key] = _strings(value)
        else:
            config[key] = value == "true"
    return config


def path_filter(text: str) -> list[str]:
    """The globs of a Jenkinsfile's path filter: its `paths` for the service pipeline, else the
    list it passes to brainscanChanged."""
    if "brainscanServicePipeline(" in text:
        return service_config(text)["paths"]
    (listed,) = re.findall(r"brainscanChanged\(\[(.*?)\]\)", text, re.DOTALL)
    return _strings(listed)


def glob_matches(pattern: str, path: str) -> bool:
    """Ant-style: `**` crosses folders, `*` stays within one."""
    regex = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            regex += ".*"
            index += 2
        elif pattern[index] == "*":
            regex += "[^/]*"
            index += 1
        else:
            regex += re.escape(pattern[index])
            index += 1
    return re.fullmatch(regex, path) is not None


def covered(patterns: list[str], path: str) -> bool:
    return any(glob_matches(pattern, path) for pattern in patterns)
