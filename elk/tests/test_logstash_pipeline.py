"""The Logstash pipelines: configuration, and what they make of real logs (run by elk_pipeline)."""

from __future__ import annotations

import json

import pytest
import yaml
from elk_fields import check_event, flatten
from elk_inputs import DEAD_LETTERS, ELK_DIR, OOD_FIELDS, SHADOW_FIELDS, filebeat_envelope
from elk_pipeline import Pipeline, UnsupportedConfig, field_reads

TEMPLATE_PREFIX = "logs-brainscan."


def test_pipelines_parse_and_use_only_simulated_filters(pipeline):
    assert [block.name for block in pipeline.tree] == ["input", "filter", "output"]
    dead_letters = Pipeline(DEAD_LETTERS)
    assert [block.name for block in dead_letters.tree] == ["input", "filter", "output"]


def test_an_unknown_filter_is_refused(tmp_path):
    config = tmp_path / "other.conf"
    config.write_text('filter { grok { match => { "message" => "%{WORD:w}" } } }')
    with pytest.raises(UnsupportedConfig, match="grok"):
        Pipeline(config)


def test_inputs_outputs_and_dead_letter_queue(pipeline):
    beats = pipeline.input_options("beats")
    assert beats["port"] == 5044
    jenkins = pipeline.input_options("http")
    assert jenkins["tags"] == ["jenkins"] and jenkins["codec"] == "json"
    assert jenkins["password"] == "${JENKINS_EVENTS_PASSWORD}"  # no default: required
    (output,) = pipeline.outputs
    options = Pipeline.options(output)
    assert output.name == "elasticsearch"
    assert options["data_stream"] == "true" and options["data_stream_auto_routing"] == "true"
    assert options["password"] == "${LOGSTASH_WRITER_PASSWORD}"
    pipelines = yaml.safe_load((ELK_DIR / "logstash" / "config" / "pipelines.yml").read_text())
    by_id = {p["pipeline.id"]: p for p in pipelines}
    assert by_id["brainscan"]["dead_letter_queue.enable"] is True
    assert by_id["brainscan"]["path.config"].endswith("/brainscan.conf")
    assert by_id["brainscan-dead-letters"]["path.config"].endswith("/dead_letters.conf")
    dead = Pipeline(DEAD_LETTERS)
    assert dead.input_options("dead_letter_queue")["pipeline_id"] == "brainscan"


def test_a_line_that_is_not_json_is_kept_as_text(pipeline, catalogue):
    envelope = filebeat_envelope("Traceback (most recent call last): ...", "inference", 0)
    envelope["stream"] = "stderr"
    document = pipeline.run(envelope, "beats")
    assert document["message"].startswith("Traceback")
    assert document["event"]["dataset"] == "brainscan.unparsed"
    assert document["data_stream"] == {
        "type": "logs",
        "dataset": "brainscan.unparsed",
        "namespace": "test",
    }
    assert document["service"]["name"] == "inference"
    assert document["log"]["level"] == "error"
    assert "_not_json" in document["tags"]
    assert check_event(document, catalogue) == []


def test_a_broken_json_line_is_tagged_not_lost(pipeline):
    document = pipeline.run(filebeat_envelope('{"message": "cut', "gateway", 0), "beats")
    assert "_jsonparsefailure" in document["tags"]
    assert document["message"] == '{"message": "cut'
    assert document["event"]["dataset"] == "brainscan.unparsed"


def test_an_oversized_message_is_truncated(pipeline):
    line = json.dumps({"message": "x" * 50_000, "event": {"dataset": "brainscan.gateway"}})
    document = pipeline.run(filebeat_envelope(line, "gateway", 0), "beats")
    assert len(document["message"].encode()) == 8192


def test_a_post_that_is_no_build_event_is_not_counted_as_one(pipeline):
    document = pipeline.run({"message": "hello", "event": {"dataset": "brainscan.ci"}}, "http")
    assert document["event"]["dataset"] == "brainscan.unparsed"
    assert "_not_a_build_event" in document["tags"]


@pytest.mark.slow
def test_out_of_distribution_fields_pass_the_pipeline_typed(stack_run, pipeline, catalogue):
    """The guarded version's real prediction lines keep their verdict, typed, through the
    pipeline, and a not-assessed one is still categorised as a prediction (by its label)."""
    verdicts = []
    for offset, line in enumerate(stack_run.lines["gateway"]):
        written = dict(flatten(json.loads(line)))
        if written["message"] != "prediction" or "prediction.in_distribution" not in written:
            continue  # not a prediction, or one of version 1, which carries no guard
        document = pipeline.run(filebeat_envelope(line, "gateway", offset), "beats")
        indexed = dict(flatten(document))
        assert check_event(document, catalogue) == []
        assert {name: indexed.get(name) for name in OOD_FIELDS} == {
            name: written[name] for name in OOD_FIELDS
        }
        assert document["event"]["category"] == "api" and document["event"]["type"] == "info"
        assert document["data_stream"]["dataset"] == "brainscan.gateway"
        assert indexed["prediction.label"] == written["prediction.label"]
        verdicts.append(indexed["prediction.assessed"])
    assert all(catalogue.lookup(name).origin == "custom" for name in OOD_FIELDS)
    # The dashboard's rate and its not-assessed count need both.
    assert set(verdicts) == {True, False}


@pytest.mark.slow
def test_shadow_comparisons_pass_the_pipeline_typed(stack_run, pipeline, catalogue):
    """The gateway's real comparison lines keep every field, with its JSON type, through the
    pipeline: a boolean indexed from a string, or a confidence from an int, would be another
    field to Kibana's formulas and averages."""
    seen: dict[str, set] = {name: set() for name in SHADOW_FIELDS}
    for offset, line in enumerate(stack_run.lines["gateway"]):
        written = dict(flatten(json.loads(line)))
        if written.get("event.action") != "shadow-compare":
            continue
        document = pipeline.run(filebeat_envelope(line, "gateway", offset), "beats")
        indexed = dict(flatten(document))
        assert check_event(document, catalogue) == []
        assert document["data_stream"]["dataset"] == "brainscan.gateway"
        assert indexed["event.outcome"] == "success"
        assert indexed["model.version"] == written["model.version"]
        for name, kind in SHADOW_FIELDS.items():
            assert type(indexed[name]) is kind, f"{name}: {indexed[name]!r} is no {kind.__name__}"
            assert indexed[name] == written[name], name
            seen[name].add(indexed[name])
    assert all(catalogue.lookup(name).origin == "custom" for name in SHADOW_FIELDS)
    # Both answers of each boolean reached the index: the panels' formulas have both to count.
    for name in ("agreed", "champion.in_distribution", "challenger.in_distribution"):
        assert seen[f"brainscan.shadow.{name}"] == {True, False}, name


@pytest.mark.slow
def test_every_document_is_ecs_or_catalogued(documents, catalogue):
    problems = {}
    for document in documents:
        for problem in check_event(document, catalogue):
            problems.setdefault(problem, document.get("message"))
    assert not problems, "\n".join(f"{p}  (in '{m}')" for p, m in problems.items())


@pytest.mark.slow
def test_documents_go_to_brainscan_data_streams(documents):
    datasets = set()
    for document in documents:
        stream = document["data_stream"]
        assert stream["type"] == "logs" and stream["namespace"] == "test"
        assert stream["dataset"] == document["event"]["dataset"]
        assert f"logs-{stream['dataset']}-test".startswith(TEMPLATE_PREFIX)
        assert "@version" not in document and "@metadata" not in document
        assert document["log"]["level"]
        datasets.add(stream["dataset"])
    assert datasets == {
        "brainscan.gateway",
        "brainscan.inference",
        "brainscan.model_sync",
        "brainscan.kubernetes_events",
        "brainscan.ci",
    }


@pytest.mark.slow
def test_kubernetes_metadata_and_file_position_are_kept(documents):
    service_docs = [d for d in documents if d["event"]["dataset"].startswith("brainscan.g")]
    for document in service_docs:
        assert document["kubernetes"]["pod"]["name"].startswith("brainscan-gateway-")
        assert document["kubernetes"]["labels"]["app_kubernetes_io/part-of"] == "brainscan"
        assert document["log"]["file"]["path"].startswith("/var/log/containers/")
        assert isinstance(document["log"]["offset"], int)
        assert document["container"]["image"]["name"]


@pytest.mark.slow
def test_events_are_categorised_for_kibana(documents):
    by_message = {}
    for document in documents:
        by_message.setdefault(document["message"], []).append(document)
    for access in by_message["request"]:
        assert access["event"]["category"] == "web" and access["event"]["type"] == "access"
        status = access["http"]["response"]["status_code"]
        assert access["event"]["outcome"] == ("failure" if status >= 400 else "success")
    for prediction in by_message["prediction"]:
        assert prediction["event"]["category"] == "api"
    changes = by_message["model published"] + by_message["version refused"]
    # The challenger's arrivals and departures are model changes too.
    changes += by_message["version withdrawn"] + by_message["model unloaded"]
    changes += by_message["challenger in shadow"] + by_message["no challenger in shadow"]
    for change in changes:
        assert change["event"]["category"] == "configuration"
        assert change["event"]["type"] == "change"
    for comparison in by_message["shadow comparison"]:
        assert "category" not in comparison["event"]  # no prediction answered: not `api`


@pytest.mark.slow
def test_kubernetes_events_become_ecs(documents):
    events = [d for d in documents if d["event"]["dataset"] == "brainscan.kubernetes_events"]
    actions = {d["event"]["reason"]: d["event"]["action"] for d in events}
    assert actions == {
        "SuccessfulRescale": "scaling",
        "ScalingReplicaSet": "scaling",
        "BackOff": "pod-lifecycle",
    }
    backoff = next(d for d in events if d["event"]["reason"] == "BackOff")
    assert backoff["orchestrator"]["resource"] == {
        "type": "Pod",
        "name": "brainscan-inference-6b7c8d9f4-x2k8q",
    }
    assert backoff["orchestrator"]["namespace"] == "brainscan"
    assert backoff["log"]["level"] == "warning"
    assert backoff["message"].startswith("Back-off restarting failed container")


@pytest.mark.slow
def test_every_field_the_pipeline_reads_occurs_in_its_inputs(pipeline, pipeline_inputs, documents):
    seen = {name for _, event in pipeline_inputs for name, _ in flatten(event)}
    seen |= {name for document in documents for name, _ in flatten(document)}
    # A JSON log line's fields exist once decoded.
    for _, event in pipeline_inputs:
        if isinstance(event.get("message"), str) and event["message"].startswith("{"):
            seen |= {name for name, _ in flatten(json.loads(event["message"]))}
    missing = sorted(field_reads(pipeline) - seen)
    assert not missing, f"the pipeline reads fields no input carries: {missing}"
