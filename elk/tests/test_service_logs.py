"""The logs of a real run of gateway, inference and model-sync: ECS names and types, the events
the dashboards need, and nothing that identifies a patient or carries image data."""

from __future__ import annotations

import base64
import json

import pytest
from elk_fields import check_event, flatten
from elk_inputs import OOD_FIELDS, SHADOW_FIELDS

pytestmark = pytest.mark.slow

REQUIRED = ["@timestamp", "log.level", "message", "service.name", "service.version",
            "event.dataset", "ecs.version"]  # fmt: skip
DATASETS = {
    "gateway": "brainscan.gateway",
    "inference": "brainscan.inference",
    "model-sync": "brainscan.model_sync",
}


def flat(event: dict) -> dict:
    return dict(flatten(event))


def test_every_line_is_one_json_object(stack_run):
    for service, lines in stack_run.lines.items():
        assert lines, f"{service} wrote nothing"
        for line in lines:
            assert isinstance(json.loads(line), dict), f"{service}: {line[:200]}"


def test_every_field_is_ecs_or_catalogued_with_its_type(stack_run, catalogue):
    problems = {}
    for event in stack_run.events():
        for problem in check_event(event, catalogue):
            problems.setdefault(problem, event.get("message"))
    assert not problems, "\n".join(f"{p}  (in '{m}')" for p, m in problems.items())


@pytest.mark.parametrize("service", DATASETS)
def test_every_event_names_its_service_and_dataset(stack_run, service):
    for event in map(flat, stack_run.events(service)):
        missing = [name for name in REQUIRED if name not in event]
        assert not missing, f"{service} event '{event.get('message')}' lacks {missing}"
        assert event["service.name"] == f"brainscan-{service}"
        assert event["event.dataset"] == DATASETS[service]
        assert event["log.level"] in {"debug", "info", "warning", "error", "critical"}


@pytest.mark.parametrize("service", DATASETS)
def test_one_access_event_per_request(stack_run, service):
    access = [e for e in map(flat, stack_run.events(service)) if e["message"] == "request"]
    assert access
    for event in access:
        assert event["http.request.method"] in {"GET", "POST"}
        assert event["url.path"].startswith("/")
        assert isinstance(event["http.response.status_code"], int)
        assert isinstance(event["event.duration"], int) and event["event.duration"] > 0
        assert len(event["http.request.id"]) == 32


def test_gateway_prediction_events(stack_run):
    events = [e for e in map(flat, stack_run.events("gateway")) if e["message"] == "prediction"]
    answers = stack_run.answers["predictions"]
    assert len(events) == len(answers)
    by_request = {e["http.request.id"]: e for e in events}
    for answer in answers:
        event = by_request[answer["request_id"]]
        assert event["prediction.label"] == answer["label"]
        assert event["prediction.confidence"] == pytest.approx(answer["confidence"], abs=1e-4)
        assert event["prediction.below_threshold"] is answer["uncertain"]
        assert event["model.name"] == answer["model"]["name"]
        assert event["model.version"] == answer["model"]["version"]
        assert event["prediction.image_format"] == answer["image"]["format"]
        for latency in ("decode_ms", "inference_ms", "total_ms"):
            assert event[f"prediction.latency.{latency}"] >= 0
    assert {e["prediction.image_format"] for e in events} == {"jpeg", "png", "dicom"}
    assert {e["model.version"] for e in events} == {"1", stack_run.answers["published"]["version"]}


def test_gateway_prediction_events_carry_the_guards_verdict(stack_run):
    """The guarded version logs its verdict on every prediction, the same as its answer says;
    version 1 has no guard: assessed, and no verdict (the dashboards tell them apart so)."""
    events = {
        e["http.request.id"]: e
        for e in map(flat, stack_run.events("gateway"))
        if e["message"] == "prediction"
    }
    published = stack_run.answers["published"]["version"]
    verdicts = []
    for answer in stack_run.answers["predictions"]:
        event = events[answer["request_id"]]
        logged = {name for name in OOD_FIELDS if name in event}
        if answer["model"]["version"] != published:
            assert answer["in_distribution"] is None and answer["assessed"] is True
            assert logged == {"prediction.assessed"}, f"version 1 has no guard, yet logs {logged}"
            assert event["prediction.assessed"] is True
            continue
        assert logged == OOD_FIELDS
        assert event["prediction.in_distribution"] is answer["in_distribution"]
        assert event["prediction.assessed"] is answer["assessed"]
        assert event["prediction.ood_score"] == pytest.approx(answer["ood"]["score"], abs=1e-4)
        assert event["prediction.ood_threshold"] == pytest.approx(
            answer["ood"]["threshold"], abs=1e-4
        )
        assert event["prediction.ood_reason"] == (
            "none" if answer["in_distribution"] else answer["ood"]["cue"]
        )
        verdicts.append(answer["in_distribution"])
    assert set(verdicts) == {True, False}


def test_a_prediction_not_assessed_still_logs_its_label(stack_run):
    """The pipeline categorises prediction events by `prediction.label`: an answer "not
    assessed" (out of distribution) must keep it, though the page shows no diagnosis."""
    answers = {a["request_id"]: a for a in stack_run.answers["predictions"]}
    not_assessed = [
        e
        for e in map(flat, stack_run.events("gateway"))
        if e["message"] == "prediction" and e.get("prediction.assessed") is False
    ]
    assert len(not_assessed) >= 2  # the blank and the noise image at least
    for event in not_assessed:
        answer = answers[event["http.request.id"]]
        assert answer["assessed"] is False and answer["uncertain"] is True
        assert event["prediction.label"] == answer["label"]
        assert event["prediction.below_threshold"] is True


def test_gateway_logs_one_comparison_per_mirrored_prediction(stack_run):
    """Each challenger's shadow-compare events are what the gateway reports for it at
    GET /api/v1/model: as many as it compared, the same agreement and label matrix."""
    served = stack_run.answers["published"]["version"]
    events = [
        e
        for e in map(flat, stack_run.events("gateway"))
        if e.get("event.action") == "shadow-compare"
    ]
    reports = stack_run.answers["shadow"]
    assert [r["version"] for r in reports] == sorted(
        {e["brainscan.shadow.challenger.version"] for e in events}, key=int
    )
    for report in reports:
        own = [e for e in events if e["brainscan.shadow.challenger.version"] == report["version"]]
        assert len(own) == report["mirrored"] > 0 and report["failed"] == report["dropped"] == 0
        assert sum(e["brainscan.shadow.agreed"] for e in own) == report["agreed"]
        matrix: dict[str, dict[str, int]] = {}
        for event in own:
            assert set(SHADOW_FIELDS) <= set(event), set(SHADOW_FIELDS) - set(event)
            assert event["event.outcome"] == "success" and event["log.level"] == "info"
            assert event["model.version"] == served  # the champion's version
            champion = event["brainscan.shadow.champion.label"]
            challenger = event["brainscan.shadow.challenger.label"]
            assert event["brainscan.shadow.agreed"] is (champion == challenger)
            row = matrix.setdefault(champion, {})
            row[challenger] = row.get(challenger, 0) + 1
            for role in ("champion", "challenger"):
                assert 0 < event[f"brainscan.shadow.{role}.confidence"] <= 1
                assert event[f"brainscan.shadow.{role}.latency_ms"] > 0
        assert matrix == report["confusion"]
    # The re-registered served model agrees on everything; the other seed does not.
    assert [r["agreement"] == 1.0 for r in reports] == [True, False]


def test_gateway_logs_each_challenger_it_follows(stack_run):
    changed = [
        e
        for e in map(flat, stack_run.events("gateway"))
        if e.get("event.action") == "challenger-changed"
    ]
    versions = [r["version"] for r in stack_run.answers["shadow"]]
    # Each challenger in turn, then none once the alias was removed.
    assert [e["brainscan.shadow.challenger.version"] for e in changed] == [*versions, None]
    assert [e["message"] for e in changed][-1] == "no challenger in shadow"


def test_gateway_refusals_carry_the_error_code_and_message(stack_run):
    refused = [
        e for e in map(flat, stack_run.events("gateway")) if e["message"] == "request refused"
    ]
    codes = {e["error.code"] for e in refused}
    assert {"unsupported_format", "corrupt_image", "image_too_small", "empty_file",
            "dicom_no_pixel_data"} <= codes  # fmt: skip
    for event in refused:
        assert event["event.outcome"] == "failure"
        assert 400 <= event["http.response.status_code"] < 500
        assert event["error.message"]


def test_model_sync_logs_every_version_change_and_refusal(stack_run):
    events = [e for e in map(flat, stack_run.events("model-sync")) if "event.action" in e]
    decisions = [(e["event.action"], e.get("model.version")) for e in events]
    assert ("published", "1") in decisions
    assert ("refused", stack_run.answers["refused"]["version"]) in decisions
    assert ("published", stack_run.answers["published"]["version"]) in decisions
    assert ("rolled_back", "1") in decisions
    assert ("restored", "1") in decisions  # after the restart, from the cache
    challengers = [r["version"] for r in stack_run.answers["shadow"]]
    shadow = [(e["event.action"], e.get("model.version")) for e in events
              if e.get("brainscan.alias") == "challenger"]  # fmt: skip
    assert shadow == [*(("published", v) for v in challengers), ("withdrawn", None)]
    for event in events:
        assert event["model.name"] and event["event.reason"]
        assert event["brainscan.sync.trigger"] in {"startup", "manual", "poll", "webhook"}
        assert event["event.outcome"] == (
            "failure" if event["event.action"] == "refused" else "success"
        )
    refusal = next(e for e in events if e["event.action"] == "refused")
    assert "ONNX checker" in refusal["event.reason"] and refusal["log.level"] == "error"
    assert refusal["model.serving_version"] == "1"


def test_a_logged_exception_has_ecs_error_fields(stack_run):
    assert stack_run.answers["failed"]["outcome"] == "error"
    failures = [
        e for e in map(flat, stack_run.events("model-sync")) if e["message"] == "sync failed"
    ]
    (event,) = failures
    assert event["log.level"] == "error"
    assert event["error.type"] == "FileExistsError"
    assert event["error.message"]
    assert event["error.stack_trace"].startswith("Traceback")


def test_inference_and_gateway_log_each_version_they_take(stack_run):
    inference = list(map(flat, stack_run.events("inference")))
    loaded = [e for e in inference if e.get("event.action") == "model-loaded"]
    served = [e for e in loaded if e["brainscan.model_role"] == "served"]
    rollout = ["1", stack_run.answers["published"]["version"], "1"]
    assert [e["model.version"] for e in served] == rollout
    # The challengers are held beside it, each replacing the last, and dropped when withdrawn.
    challengers = [r["version"] for r in stack_run.answers["shadow"]]
    assert [e["model.version"] for e in loaded if e not in served] == challengers
    unloaded = [e for e in inference if e.get("event.action") == "model-unloaded"]
    assert [(e["model.version"], e["brainscan.model_role"]) for e in unloaded] == [
        (challengers[-1], "challenger")
    ]
    assert all(len(e["model.sha256"]) == 64 for e in loaded)
    changed = [
        e
        for e in map(flat, stack_run.events("gateway"))
        if e.get("event.action") == "model-changed"
    ]
    assert [e["model.version"] for e in changed] == rollout


def test_no_patient_identifier_or_image_data_in_any_log(stack_run):
    text = "\n".join(line for lines in stack_run.lines.values() for line in lines)
    for secret in stack_run.secrets:
        assert secret not in text
        assert secret.split("^")[0] not in text
    for data in stack_run.uploads:
        # Any 48-byte stretch of an upload, raw or base64, would betray logged image data.
        chunk = data[len(data) // 2 : len(data) // 2 + 48]
        assert base64.b64encode(chunk).decode() not in text
        assert chunk.decode("latin-1") not in text
    for event in stack_run.events():
        for name, value in flatten(event):
            limit = 20_000 if name == "error.stack_trace" else 2_000
            assert not isinstance(value, str) or len(value) < limit, (
                f"{name} holds {len(value)} chars"
            )
            assert "png" not in name.lower() or name == "prediction.image_format", name
