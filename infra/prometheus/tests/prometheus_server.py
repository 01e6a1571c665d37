"""A real Prometheus server for tests: the compose stack's scrape configuration with loopback
targets, the stack's rules, a free port and a temporary TSDB; stopped as a process group.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import prometheus_rules as pr
import yaml
from brainscan_localstack.processes import ManagedProcess, free_port

# Scrape and evaluate every second, so a test sees a change within seconds.
INTERVAL = "1s"


def scrape_config(targets: dict[str, list[str]], port: int) -> dict[str, Any]:
    """infra/prometheus/prometheus.yml with each job's service discovery replaced by ``targets``
    (job name -> host:port list; every job of the compose file must be given) and the rules
    file of the repository."""
    config = yaml.safe_load(pr.COMPOSE_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {"prometheus": [f"127.0.0.1:{port}"], **targets}
    if set(targets) != set(jobs):
        raise ValueError(f"targets for {sorted(targets)}, the compose file has {sorted(jobs)}")
    for name, job in jobs.items():
        for discovery in [key for key in job if key.endswith("_sd_configs")]:
            del job[discovery]
        job["static_configs"] = [{"targets": targets[name]}]
        job["scrape_interval"] = INTERVAL
    config["global"] = {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL}
    config["rule_files"] = [str(pr.RULES_FILE)]
    return config


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:<free port>, data and log in ``work_dir``."""

    def __init__(self, work_dir: Path, targets: dict[str, list[str]]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        work_dir.mkdir(parents=True, exist_ok=True)
        config_file = work_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(scrape_config(targets, self.port)))
        self.log_path = work_dir / "prometheus.log"
        self.process = ManagedProcess(
            name="prometheus",
            command=[
                pr.prometheus_path(),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            health_url=f"{self.url}/-/ready",
            log_path=self.log_path,
        )

    def __enter__(self) -> PrometheusServer:
        self.process.start(timeout=60)
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.stop()

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful answer of the HTTP API (``/api/v1/<path>``)."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[frozenset, float]:
        """An instant query: each result's labels (without __name__) -> value."""
        return {
            frozenset((k, v) for k, v in result["metric"].items() if k != "__name__"): float(
                result["value"][1]
            )
            for result in self.api("query", query=expr)["result"]
        }

    def value(self, expr: str) -> float | None:
        """The value of a query with at most one result (None: no result)."""
        results = self.query(expr)
        assert len(results) <= 1, f"{expr}: {results}"
        return next(iter(results.values()), None)

    def targets(self) -> dict[str, list[str]]:
        """Job -> health of each of its active targets ("up", "down", "unknown")."""
        health: dict[str, list[str]] = {}
        for target in self.api("targets", state="active")["activeTargets"]:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
        return health

    def wait_until_scraped(self, timeout: float = 60.0) -> None:
        """Until every target has been scraped successfully at least once."""
        eventually(
            lambda: {h for each in self.targets().values() for h in each} == {"up"},
            timeout,
            f"every target up (see {self.url}/targets and {self.log_path})",
        )

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts of that name."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


def eventually(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.25
) -> None:
    """Poll ``condition`` until it is truthy (HTTP errors count as not yet); fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {what}")
        time.sleep(interval)
