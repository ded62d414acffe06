"""A real Prometheus server (Debian's ``prometheus`` binary) scraping a test's processes.

Its configuration is deploy/prometheus/prometheus.yml with the test's loopback addresses put in
place of the compose services, a one-second scrape interval and the deploy alert rules, so the
test exercises the files SREs deploy.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.simulator import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"


def require_binary(name: str) -> str:
    """The path of ``name``; fails (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed: run `bash scripts/ensure-promtool.sh` (Debian's prometheus)"
        )
    return path


@dataclass
class PrometheusHandle:
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one item) ``expr`` evaluates to now."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, expr: str) -> float | None:
        """The single value ``expr`` evaluates to, or None if it has no data."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> dict[str, bool]:
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t["health"] == "up" for t in response["data"]["activeTargets"]}


def config_for(targets: Mapping[str, str], self_address: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml pointed at ``targets`` (job name -> host:port)."""
    config: dict[str, Any] = yaml.safe_load(DEPLOY_CONFIG.read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ALERT_RULES)]
    addresses = {**targets, "prometheus": self_address}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [addresses[job["job_name"]]]}]
    return config


@contextmanager
def running_prometheus(
    workdir: Path, targets: Mapping[str, str], timeout: float = 30.0
) -> Iterator[PrometheusHandle]:
    """Prometheus on a free loopback port, storage in ``workdir``, until the block ends."""
    binary = require_binary("prometheus")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config_for(targets, f"127.0.0.1:{port}")), encoding="utf-8")
    log = open(workdir / "prometheus.log", "ab")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    handle = PrometheusHandle(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{handle.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start; see {workdir / 'prometheus.log'}")
            time.sleep(0.2)
        yield handle
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
