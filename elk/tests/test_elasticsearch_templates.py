"""Index templates and ILM policy: valid JSON of the right shape, mappings that agree with the
field catalogue, and with the values real documents carry."""

from __future__ import annotations

import json
import re

import pytest
from elk_fields import flatten, value_fits
from elk_inputs import ELK_DIR

ES_DIR = ELK_DIR / "elasticsearch"
ILM_ACTIONS = {
    "hot": {"rollover", "set_priority", "forcemerge", "readonly", "shrink", "downsample"},
    "warm": {"set_priority", "forcemerge", "readonly", "shrink", "allocate", "migrate"},
    "cold": {"set_priority", "readonly", "allocate", "migrate", "searchable_snapshot"},
    "delete": {"delete", "wait_for_snapshot"},
}


def load(name: str) -> dict:
    return json.loads((ES_DIR / name).read_text())


def mapped_fields(properties: dict, prefix: str = "") -> dict[str, dict]:
    """Flat name -> mapping of every leaf field of ``properties``."""
    fields = {}
    for name, mapping in properties.items():
        if "properties" in mapping:
            fields.update(mapped_fields(mapping["properties"], f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = mapping
    return fields


@pytest.fixture(scope="module")
def component_fields() -> dict[str, dict]:
    component = load("component-template-mappings.json")
    return mapped_fields(component["template"]["mappings"]["properties"])


def test_every_file_parses():
    for path in ES_DIR.glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path


def test_ilm_policy_phases_and_actions():
    phases = load("ilm-policy.json")["policy"]["phases"]
    assert list(phases) == ["hot", "warm", "delete"]
    for phase, spec in phases.items():
        assert set(spec["actions"]) <= ILM_ACTIONS[phase], phase
        assert re.fullmatch(r"\d+(ms|s|m|h|d)", spec["min_age"])
    assert phases["hot"]["actions"]["rollover"]["max_primary_shard_size"] == "10gb"
    assert phases["delete"]["min_age"] == "30d"


def test_index_template_is_a_data_stream_template_using_the_policy():
    template = load("index-template.json")
    assert template["data_stream"] == {}
    assert template["index_patterns"] == ["logs-brainscan.*-*"]
    # Above the built-in logs-*-* template (priority 100), so ours applies.
    assert template["priority"] > 100
    assert template["template"]["settings"]["index.lifecycle.name"] == "brainscan-logs"
    assert "brainscan-logs@mappings" in template["composed_of"]
    assert set(template["ignore_missing_component_templates"]) <= set(template["composed_of"])
    setup = (ELK_DIR / "scripts" / "setup-elasticsearch.sh").read_text()
    assert "/_component_template/brainscan-logs@mappings" in setup
    assert "/_ilm/policy/brainscan-logs" in setup


def test_dead_letters_get_their_own_template_that_cannot_refuse_them():
    main, dead = load("index-template.json"), load("index-template-deadletter.json")
    assert dead["priority"] > main["priority"]
    assert re.fullmatch(dead["index_patterns"][0].replace(".", r"\.").replace("*", ".*"),
                        "logs-brainscan.deadletter-default")  # fmt: skip
    assert dead["template"]["mappings"]["dynamic"] is False


def test_component_template_maps_every_custom_and_shipped_field(catalogue, component_fields):
    mappings = load("component-template-mappings.json")["template"]["mappings"]
    dynamic = {
        spec["path_match"]: spec["mapping"]["type"]
        for rule in mappings["dynamic_templates"]
        for spec in rule.values()
    }
    for name, field in catalogue.fields.items():
        if field.origin == "ecs":
            continue
        if name.endswith(".*"):
            assert dynamic[name] == field.type, name
        else:
            assert component_fields[name]["type"] == field.type, name


def test_component_template_maps_nothing_outside_the_catalogue(catalogue, component_fields):
    for name, mapping in component_fields.items():
        field = catalogue.lookup(name)
        assert field is not None, f"{name} is mapped but neither ECS nor in fields.yml"
        assert mapping["type"] == field.type, f"{name}: {mapping['type']} != {field.type}"


@pytest.mark.slow
def test_real_documents_fit_the_explicit_mappings(documents, component_fields):
    seen = set()
    for document in documents:
        for name, value in flatten(document):
            mapping = component_fields.get(name)
            if mapping is None or value is None:
                continue
            values = value if isinstance(value, list) else [value]
            for item in values:
                assert value_fits(mapping["type"], item), f"{name}={item!r} vs {mapping['type']}"
            seen.add(name)
    # The mapped fields the services write all occurred in this run, the guard's verdict too.
    written_by_services = {
        "prediction.label", "prediction.confidence", "prediction.below_threshold",
        "prediction.latency.total_ms", "model.name", "model.version", "model.sha256",
        "brainscan.sync.trigger", "http.response.status_code", "event.duration",
        "error.stack_trace", "error.type", "error.code", "url.path",
        "prediction.in_distribution", "prediction.assessed",
    }  # fmt: skip
    written_by_services |= {name for name in component_fields if name.startswith("prediction.ood_")}
    # The comparison with the challenger in shadow, every field of it.
    written_by_services |= {n for n in component_fields if n.startswith("brainscan.shadow.")}
    assert written_by_services <= seen, sorted(written_by_services - seen)
