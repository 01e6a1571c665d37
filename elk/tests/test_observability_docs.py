"""docs/observability.md lists every field outside ECS, and the commands it gives exist."""

from __future__ import annotations

from elk_inputs import ELK_DIR, REPO

DOC = REPO / "docs" / "observability.md"


def test_every_custom_field_is_documented(catalogue):
    text = DOC.read_text()
    missing = [name for name in catalogue.custom() if f"`{name}`" not in text]
    assert not missing, f"docs/observability.md does not list {missing}"


def test_the_files_the_doc_names_exist():
    text = DOC.read_text()
    for path in (
        "elk/schema/fields.yml",
        "elk/logstash/pipeline/brainscan.conf",
        "elk/kibana/saved_objects.ndjson",
        "elk/scripts/setup-elasticsearch.sh",
        "elk/scripts/import-kibana-objects.sh",
        "elk/jenkins/build_event.py",
        "elk/compose.elk.yml",
    ):
        assert path in text and (REPO / path).exists(), path
    assert "8.19.20" in text and "8.19.20" in (ELK_DIR / "compose.elk.yml").read_text()
