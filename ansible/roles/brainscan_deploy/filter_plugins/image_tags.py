"""Which image tag each component gets in a deploy: what this deploy sets, else what the release
runs now, else the initial tag (first install, or a component the release does not run yet)."""

from __future__ import annotations

import re
from collections.abc import Mapping

# Role key of each image (brainscan_deploy_image_repositories, ..._image_tags) -> its Helm key.
HELM_KEYS = {
    "gateway": "gateway",
    "inference": "inference",
    "model_sync": "modelSync",
    "mlflow": "mlflow",
}
# Docker's grammar for a tag.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

SET_BY_THIS_DEPLOY = "set by this deploy"
KEPT_RUNNING = "kept: the release runs it"
INITIAL = "initial: the release does not run it yet"


class ImageTagError(ValueError):
    """A tag or an image name that a deploy cannot use; the message names the variable."""


def _checked_tag(tag: object, what: str) -> str:
    text = str(tag) if tag is not None else ""
    if not TAG.fullmatch(text):
        raise ImageTagError(
            f"{what}: {text!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128, "
            "not starting with '.' or '-')"
        )
    return text


def running_tags(release_status: Mapping | None) -> dict[str, str]:
    """Tag of each component the release runs, from kubernetes.core.helm_info's `status` read
    with get_all_values (the computed values); an empty tag means the chart's appVersion."""
    if not release_status:
        return {}
    values = release_status.get("values") or {}
    app_version = str(release_status.get("app_version") or "")
    tags = {}
    for component, helm_key in HELM_KEYS.items():
        section = values.get(helm_key)
        if not isinstance(section, Mapping) or section.get("enabled") is False:
            continue  # not in the release's chart, or switched off (MLflow outside the chart)
        image = section.get("image")
        if not isinstance(image, Mapping):
            continue
        tag = str(image.get("tag") or "") or app_version
        if tag:
            tags[component] = tag
    return tags


def image_tag_plan(
    release_status: Mapping | None,
    initial_tag: object,
    explicit_tags: Mapping | None = None,
    every_image_tag: object = "",
) -> dict[str, dict[str, str]]:
    """component -> {tag, source}: explicit_tags[component], else every_image_tag if given, else
    the running tag, else initial_tag. A one-service deploy thus moves no other image."""
    explicit = dict(explicit_tags or {})
    unknown = sorted(set(explicit) - set(HELM_KEYS))
    if unknown:
        raise ImageTagError(
            f"brainscan_deploy_image_tags: unknown image {', '.join(unknown)}; "
            f"the images are {', '.join(HELM_KEYS)}"
        )
    initial = _checked_tag(initial_tag, "brainscan_deploy_initial_image_tag")
    every = str(every_image_tag or "")
    if every:
        _checked_tag(every, "brainscan_deploy_image_tag")
    running = running_tags(release_status)
    plan = {}
    for component in HELM_KEYS:
        if component in explicit:
            tag = _checked_tag(explicit[component], f"brainscan_deploy_image_tags.{component}")
            plan[component] = {"tag": tag, "source": SET_BY_THIS_DEPLOY}
        elif every:
            plan[component] = {"tag": every, "source": SET_BY_THIS_DEPLOY}
        elif component in running:
            plan[component] = {"tag": running[component], "source": KEPT_RUNNING}
        else:
            plan[component] = {"tag": initial, "source": INITIAL}
    return plan


def _image_tag_plan_filter(*args, **kwargs) -> dict[str, dict[str, str]]:
    # Imported here: the plain function above stays importable (and testable) without Ansible.
    from ansible.errors import AnsibleFilterError

    try:
        return image_tag_plan(*args, **kwargs)
    except ImageTagError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The role's filters."""

    def filters(self):
        return {"brainscan_image_tag_plan": _image_tag_plan_filter}
