#!/usr/bin/env python3
"""One ECS event per Jenkins build, printed and posted to Logstash's Jenkins input.

Run it last in a Jenkinsfile (``post { always { ... } }``) with the build's result, duration
and start time; Jenkins' own variables (JOB_NAME, BUILD_NUMBER, BUILD_URL, BRANCH_NAME,
GIT_COMMIT) come from the environment. Standard library only: any agent with python3 runs it.
Posting is best effort: a build never fails because logging is down.

    python3 elk/jenkins/build_event.py --result "${currentBuild.currentResult}" \\
        --duration-ms "${currentBuild.duration}" --start-ms "${currentBuild.startTimeInMillis}"

BRAINSCAN_BUILD_EVENTS_URL (e.g. http://logstash:8080), BRAINSCAN_BUILD_EVENTS_USER and
BRAINSCAN_BUILD_EVENTS_PASSWORD say where to post; unset URL: print only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime

ECS_VERSION = "9.4.0"
# Jenkins result -> (OpenTelemetry cicd.pipeline.result, ECS event.outcome)
RESULTS = {
    "SUCCESS": ("success", "success"),
    "UNSTABLE": ("failure", "failure"),
    "FAILURE": ("failure", "failure"),
    "ABORTED": ("cancellation", "unknown"),
    "NOT_BUILT": ("skip", "unknown"),
}


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")


def build_event(result: str, duration_ms: int, start_ms: int, env: Mapping[str, str]) -> dict:
    """The ECS document of one finished build."""
    result = result.upper()
    if result not in RESULTS:
        raise ValueError(f"unknown Jenkins result {result!r}; expected one of {', '.join(RESULTS)}")
    pipeline_result, outcome = RESULTS[result]
    job = env.get("JOB_NAME", "unknown")
    number = env.get("BUILD_NUMBER", "0")
    end_ms = start_ms + duration_ms
    event: dict = {
        "@timestamp": _iso(end_ms),
        "message": f"jenkins build {job} #{number}: {result}",
        "ecs": {"version": ECS_VERSION},
        "log": {"level": "info" if outcome == "success" else "error"},
        "service": {"name": "jenkins"},
        "event": {
            "dataset": "brainscan.ci",
            "kind": "event",
            "action": "pipeline-run",
            "outcome": outcome,
            "duration": duration_ms * 1_000_000,
            "start": _iso(start_ms),
            "end": _iso(end_ms),
        },
        "cicd": {"pipeline": {"name": job, "result": pipeline_result, "run": {"id": number}}},
    }
    if env.get("BUILD_URL"):
        event["url"] = {"full": env["BUILD_URL"]}
    head = {}
    branch = env.get("BRANCH_NAME") or env.get("GIT_BRANCH")
    if branch:
        head["name"] = branch
    if env.get("GIT_COMMIT"):
        head["revision"] = env["GIT_COMMIT"]
    if head:
        event["vcs"] = {"ref": {"head": head}}
    return event


def post(event: dict, url: str, user: str | None, password: str | None, timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", required=True, help="currentBuild.currentResult")
    parser.add_argument("--duration-ms", type=int, required=True, help="currentBuild.duration")
    parser.add_argument("--start-ms", type=int, required=True, help="startTimeInMillis")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for the POST")
    args = parser.parse_args(argv)
    try:
        event = build_event(args.result, args.duration_ms, args.start_ms, os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(json.dumps(event) + "\n")
    url = os.environ.get("BRAINSCAN_BUILD_EVENTS_URL")
    if url:
        try:
            post(
                event,
                url,
                os.environ.get("BRAINSCAN_BUILD_EVENTS_USER"),
                os.environ.get("BRAINSCAN_BUILD_EVENTS_PASSWORD"),
                args.timeout,
            )
        except (urllib.error.URLError, OSError) as exc:
            sys.stderr.write(f"build event not delivered to {url}: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
