"""Jenkinsfiles read as text: their stage names in order, the path filter of the outer stage, the
`when` of a stage; and Ant-style globs as Jenkins' `changeset` applies them."""

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


def path_filter(text: str) -> list[str]:
    """The `changeset` globs of the outer stage's `when` (the pipeline's path filter)."""
    outer = stage_names(text)[0]
    body = stage_body(text, outer)
    when = body[: body.index("stages {")]
    return re.findall(r"changeset pattern: '([^']+)'", when)


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
