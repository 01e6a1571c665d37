"""setup-elasticsearch.sh and import-kibana-objects.sh, run with bash and curl against a local
HTTP server standing in for Elasticsearch and Kibana (neither can run here): the requests they
make, in order, with their bodies and headers, and how they fail."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from elk_inputs import ELK_DIR

SCRIPTS = ELK_DIR / "scripts"


class _Elastic(BaseHTTPRequestHandler):
    """Answers like Elasticsearch and Kibana would; records every request."""

    def _record(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        return body

    def _answer(self, status: int, document: dict) -> None:
        payload = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/_cluster/health"):
            self._answer(200, {"status": "green"})
        elif self.path == "/api/status":
            self._answer(200, {"status": {"overall": {"level": "available"}}})
        else:
            self._answer(404, {"error": "no such path"})

    def do_PUT(self) -> None:
        self._record()
        self._answer(self.server.put_status, {"acknowledged": self.server.put_status == 200})

    def do_POST(self) -> None:
        self._record()
        if "_import" in self.path:
            self._answer(200, self.server.import_answer)
        else:
            self._answer(200, {})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def elastic() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Elastic)
    server.requests, server.put_status = [], 200
    server.import_answer = {"success": True, "successCount": 26}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run(script: str, server, **env: str) -> subprocess.CompletedProcess:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    environment = {
        "PATH": os.environ["PATH"],
        "ELASTICSEARCH_URL": url,
        "KIBANA_URL": url,
        "ELASTIC_PASSWORD": "elastic-secret",
        "WAIT_SECONDS": "10",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / script)], env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_setup_installs_policy_and_templates_then_users(elastic):
    done = run(
        "setup-elasticsearch.sh",
        elastic,
        LOGSTASH_WRITER_PASSWORD='writer "quoted" \\ pass',
        KIBANA_SYSTEM_PASSWORD="kibana-pass",
    )
    assert done.returncode == 0, done.stderr
    calls = [(method, path) for method, path, _, _ in elastic.requests]
    assert calls[0][1].startswith("/_cluster/health")
    assert calls[1:] == [
        ("PUT", "/_ilm/policy/brainscan-logs"),
        ("PUT", "/_component_template/brainscan-logs@mappings"),
        ("PUT", "/_index_template/brainscan-logs"),
        ("PUT", "/_index_template/brainscan-deadletter"),
        ("PUT", "/_security/role/brainscan_logstash_writer"),
        ("PUT", "/_security/user/brainscan_logstash"),
        ("POST", "/_security/user/kibana_system/_password"),
    ]
    bodies = {path: body for _, path, _, body in elastic.requests}
    es = ELK_DIR / "elasticsearch"
    assert json.loads(bodies["/_ilm/policy/brainscan-logs"]) == json.loads(
        (es / "ilm-policy.json").read_text()
    )
    assert json.loads(bodies["/_index_template/brainscan-logs"]) == json.loads(
        (es / "index-template.json").read_text()
    )
    user = json.loads(bodies["/_security/user/brainscan_logstash"])
    assert user["password"] == 'writer "quoted" \\ pass'
    assert user["roles"] == ["brainscan_logstash_writer"]
    token = base64.b64encode(b"elastic:elastic-secret").decode()
    assert all(h.get("Authorization") == f"Basic {token}" for _, _, h, _ in elastic.requests)


def test_setup_stops_at_the_first_refusal_and_says_which(elastic):
    elastic.put_status = 400
    done = run("setup-elasticsearch.sh", elastic)
    assert done.returncode != 0
    assert "PUT /_ilm/policy/brainscan-logs answered 400" in done.stderr
    assert len(elastic.requests) == 2


def test_setup_needs_a_password(elastic):
    done = run("setup-elasticsearch.sh", elastic, ELASTIC_PASSWORD="")
    assert done.returncode != 0 and "set ELASTIC_PASSWORD" in done.stderr
    assert elastic.requests == []


def test_import_posts_the_ndjson_to_the_saved_objects_api(elastic):
    done = run("import-kibana-objects.sh", elastic, KIBANA_SPACE="radiology")
    assert done.returncode == 0, done.stderr
    assert "imported 26 saved objects" in done.stdout
    method, path, headers, body = elastic.requests[-1]
    assert (method, path) == ("POST", "/s/radiology/api/saved_objects/_import?overwrite=true")
    assert headers["kbn-xsrf"] == "true"
    assert headers["Content-Type"].startswith("multipart/form-data")
    assert (ELK_DIR / "kibana" / "saved_objects.ndjson").read_bytes() in body


def test_import_fails_when_kibana_reports_errors(elastic):
    elastic.import_answer = {
        "success": False,
        "errors": [{"id": "brainscan-api", "error": {"type": "missing_references"}}],
    }
    done = run("import-kibana-objects.sh", elastic)
    assert done.returncode != 0
    assert "missing_references" in done.stderr
