"""Observability end to end: a job through the real API, worker, scheduler and callback
dispatcher, scraped by a real Prometheus; the counts it reports, the dashboard's queries, the
endpoints' exposition format, and the processes' logs.

The module runs its own stack on its own database, vhost and Redis prefix: the session stack's
other jobs would otherwise add to the counts.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from engine.db import upgrade
from tests.conftest import TEST_OVERRIDES
from tests.support.prometheus import PrometheusHandle, require_binary, running_prometheus
from tests.support.receiver import running_receiver
from tests.support.services import isolated_settings
from tests.support.stack import Stack, running_stack, submit_sms

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "balsong.json"
FINISHED = ("completed", "partially_failed", "failed")
RECIPIENTS = 2000
#: Scrapes are every second; Prometheus is given this long to catch up with the job.
CATCH_UP_SECONDS = 30.0
#: Every label name an endpoint may export: bounded sets only (no job id, phone or tenant).
ALLOWED_LABELS = {
    "channel",
    "carrier",
    "outcome",
    "reason",
    "end",
    "operation",
    "status",
    "kind",
    "source",
    "dependency",
    "state",
    "stage",
    "queue",
    "method",
    "route",
    "le",
    "queue_name",
    "actor_name",
    "result",
}

T = TypeVar("T")


@dataclass
class Observed:
    stack: Stack
    prometheus: PrometheusHandle
    job: dict[str, Any]
    phones: list[str]
    log_dir: Path

    def endpoints(self) -> dict[str, str]:
        s = self.stack.settings
        return {
            "api": f"{s.api_url}/metrics",
            "worker": f"http://{s.metrics_host}:{s.worker_metrics_port}/metrics",
            "scheduler": f"http://{s.metrics_host}:{s.scheduler_metrics_port}/metrics",
            "callbacks": f"http://{s.metrics_host}:{s.callbacks_metrics_port}/metrics",
        }


def eventually(read: Callable[[], T], done: Callable[[T], bool], seconds: float = CATCH_UP_SECONDS) -> T:
    """``read()`` until ``done`` says yes or time is up; the last reading either way."""
    deadline = time.monotonic() + seconds
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """Given a stack (a cap on SMS, so rate-limit gauges have data; 5% of recipients failing in
    reports, 2% refused at submission, one number refused at intake), scraped every second by
    Prometheus, and one SMS job sent through it to the end, its status callbacks to a receiver."""
    require_binary("promtool")
    workdir = tmp_path_factory.mktemp("observability")
    log_dir = workdir / "logs"
    overrides = {**TEST_OVERRIDES, "rate_limit_sms_per_second": 100_000.0, "log_level": "DEBUG"}
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        with running_stack(
            settings,
            log_dir,
            result_delay_ms=300,
            failure_mix={"3015": 0.05},
            reject_mix={"-2019": 0.02},
            seed=5,
        ) as stack:
            s = stack.settings
            targets = {
                "balsong-api": s.api_url.removeprefix("http://"),
                "balsong-worker": f"127.0.0.1:{s.worker_metrics_port}",
                "balsong-scheduler": f"127.0.0.1:{s.scheduler_metrics_port}",
                "balsong-callbacks": f"127.0.0.1:{s.callbacks_metrics_port}",
            }
            with (
                running_prometheus(workdir / "prometheus", targets) as prometheus,
                running_receiver() as receiver,
            ):
                client = stack.new_tenant("observed")
                phones = [f"010{40_000_000 + i:08d}" for i in range(RECIPIENTS)]
                # Callbacks, so that the dashboard's Status callbacks row has data.
                job_id = submit_sms(client, "관측 테스트", [*phones, "010-12"], callback_url=receiver.url)
                job = eventually(lambda: stack.job(client, job_id), lambda j: j["status"] in FINISHED, 60)
                assert job["status"] in FINISHED, job
                yield Observed(stack, prometheus, job, phones, log_dir)


def test_prometheus_counts_equal_the_jobs_counts(observed: Observed) -> None:
    """Given the finished job
    When Prometheus is asked for recipients by outcome and failures by reason, over every process
    Then its numbers are the job's own counts: submitted = sent, delivered, failed (intake,
    submission and report failures together), and each reason code's count."""
    counts = observed.job["counts"]
    expected = {
        "submitted": counts["sent"],
        "delivered": counts["delivered"],
        "failed": counts["failed"],
        "expired": counts["expired"],
        **{f"reason {f['reason_code']}": f["count"] for f in observed.job["failures"]},
    }
    assert counts["delivered"] > 0 and counts["failed"] > 2 and len(observed.job["failures"]) == 3

    def read() -> dict[str, float]:
        outcomes = observed.prometheus.query("sum by (outcome) (balsong_recipients_total)")
        reasons = observed.prometheus.query("sum by (reason) (balsong_recipient_failures_total)")
        seen = {"expired": 0.0}
        seen.update({r["metric"]["outcome"]: float(r["value"][1]) for r in outcomes})
        seen.update({f"reason {r['metric']['reason']}": float(r["value"][1]) for r in reasons})
        return {name: seen.get(name, 0.0) for name in expected}

    seen = eventually(read, lambda s: s == expected)

    assert seen == expected
    # A target's health is its last scrape's: one scrape past the 1 s timeout on a loaded machine
    # marks it down until the next, so health is read until every target answers (or time is up).
    up = eventually(observed.prometheus.targets_up, lambda health: all(health.values()))
    assert up == {
        "balsong-api": True,
        "balsong-worker": True,
        "balsong-scheduler": True,
        "balsong-callbacks": True,
        "prometheus": True,
    }


def test_every_dashboard_query_returns_data(observed: Observed) -> None:
    """Given the provisioned Grafana dashboard and Prometheus after the job
    When each of its queries is run (Grafana's $__rate_interval as 30s)
    Then every one returns at least one series."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [
        target["expr"].replace("$__rate_interval", "30s")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) > 20

    def empty() -> list[str]:
        return [q for q in queries if not observed.prometheus.query(q)]

    assert eventually(empty, lambda missing: not missing) == []


def test_every_endpoint_passes_promtool_and_exports_bounded_labels_only(observed: Observed) -> None:
    """Given the api, worker, scheduler and callbacks metrics endpoints after the job
    When each is scraped and checked by `promtool check metrics`
    Then promtool finds nothing to complain about, and every label is one of the bounded label
    names (no job id, phone number or tenant anywhere)."""
    promtool = require_binary("promtool")
    for name, url in observed.endpoints().items():
        text = httpx.get(url, timeout=10).text
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        labels = set(re.findall(r"[{,]([a-z_]+)=\"", text))

        assert check.returncode == 0, (name, check.stdout, check.stderr)
        assert "balsong_" in text, name
        assert labels <= ALLOWED_LABELS, (name, labels - ALLOWED_LABELS)
        for phone in observed.phones[:50]:
            assert phone not in text, name


def test_logs_are_json_lines_with_job_and_batch_ids_and_no_phone_numbers(observed: Observed) -> None:
    """Given the api, worker and scheduler logs of the run (at DEBUG)
    When every line is read
    Then each is one JSON object with a time, level and message; the job's lines carry its id
    (and the worker's its batch id); and none of the job's phone numbers appears, in any form."""
    job_id = observed.job["id"]
    lines = [
        line
        for name in ("api", "worker", "scheduler")
        for line in (observed.log_dir / f"{name}.log").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    records = [json.loads(line) for line in lines]
    text = "\n".join(lines)
    written = {p for p in observed.phones} | {f"{p[:3]}-{p[3:7]}-{p[7:]}" for p in observed.phones}

    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r.get("job_id") == job_id and r["message"] == "job accepted" for r in records)
    assert any(r.get("job_id") == job_id and "batch_id" in r for r in records)
    assert not [p for p in written if p in text]
