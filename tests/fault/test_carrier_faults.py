"""The carrier misbehaving: storms of timeouts, 5xx and 429; a job failing at the carrier
(paused instead of burnt); duplicate and out-of-order delivery reports."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from engine.config import Settings
from engine.keys import Keys
from tests.fault.harness import (
    RECIPIENTS,
    Fault,
    TableRow,
    check,
    fault_stack,
    phones,
    submit,
    verify,
    wait_status,
)
from tests.support.private_servers import PrivateServers
from tests.support.stack import Stack

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


def test_storms_of_timeouts_5xx_and_429_are_backed_off_and_lose_nothing(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("storms")
        # Given a carrier answering 10 % of requests 5xx, 1 % 429 and timing out 2 % (after
        # accepting them) for the first half of a 20,000-recipient job
        stack.simulator.configure(
            http_5xx_rate=0.10, http_429_rate=0.01, timeout_rate=0.02, timeout_sleep_ms=4000
        )
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.5), timeout=300)
        stack.simulator.configure(http_5xx_rate=0.0, http_429_rate=0.0, timeout_rate=0.0)
        storm = stack.simulator.summary()
        baseline = fault.accepted()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        # Then the job finishes exactly: refused requests were retried after a back-off, timed
        # out ones reconciled
        job = wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
    row = TableRow(
        "6 carrier 5xx/429/timeout storm",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
    )
    table_row.append(row)
    check(row)
    assert storm["refused_requests"] > 0 and storm["timeouts"] > 0, storm
    assert job["counts"]["delivered"] == RECIPIENTS


def test_a_job_failing_at_the_carrier_is_paused_with_its_reason_and_resumed(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("pause")
        # Given a carrier refusing 80 % of the recipients for good (say, a wrong number range)
        stack.simulator.configure(reject_mix={"-2019": 0.8})
        job_id = submit(client, phones())
        # When more than half of the first answers are failures
        paused = wait_status(stack, client, job_id, ("paused",), timeout=120)
        # Then the job is paused with a visible reason, most of its recipients still unsent
        assert "-2019" in paused["paused"]["reason"], paused["paused"]
        while fault.batches_in(job_id, "claimed"):  # the slices in flight when it paused end
            time.sleep(0.1)
        left = stack.job(client, job_id)["counts"]["queued"]
        assert left > RECIPIENTS // 2, f"only {left} recipients left unsent: the job was burnt"
        # When the cause is fixed and the job resumed
        stack.simulator.configure(reject_mix={})
        resumed = client.post(f"/v1/jobs/{job_id}/resume")
        assert resumed.status_code == 200, resumed.text
        resume_at, baseline = time.monotonic(), fault.accepted()
        recovered = fault.time_to_progress(resume_at, baseline)
        # Then the rest is sent, exactly once
        job = wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        # And resuming a job that is not paused is refused
        again = client.post(f"/v1/jobs/{job_id}/resume")
    row = TableRow(
        "6b failure ratio: paused, resumed",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
    )
    table_row.append(row)
    check(row)
    assert job["counts"]["delivered"] >= left
    assert again.status_code == 409, again.text


def reports_settled(stack: Stack, vhost_node: str, vhost: str) -> bool:
    """No webhook waiting in RabbitMQ and no result waiting for the flusher."""
    import subprocess

    out = subprocess.run(
        ["rabbitmqctl", "-q", "-n", vhost_node, "list_queues", "-p", vhost, "name", "messages"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    waiting = sum(
        int(parts[1]) for line in out.splitlines() if len(parts := line.split()) == 2 and parts[1].isdigit()
    )
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        return waiting == 0 and client.xlen(Keys(stack.settings.redis_prefix).results) == 0
    finally:
        client.close()


def sms_webhook(stack: Stack, references: list[str], code: str) -> httpx.Response:
    hooks: list[dict[str, Any]] = [
        {
            "recipientGroupingKey": ref,
            "resultCode": code,
            "requestId": "r",
            "recipientSeq": 1,
            "receiveDate": "2026-11-23 10:00:00",
        }
        for ref in references
    ]
    body = {
        "hooksId": uuid.uuid4().hex,
        "webhookConfigId": "w",
        "productName": "SMS",
        "appKey": "k",
        "event": "MESSAGE_RESULT_UPDATE",
        "hooks": hooks,
    }
    headers = {"X-Toast-Webhook-Signature": stack.settings.sms_webhook_signature}
    return httpx.post(f"{stack.settings.api_url}/v1/carriers/nhn_sms/reports", json=body, headers=headers)


def test_duplicate_and_out_of_order_reports_are_counted_once(
    fault_settings: Settings, servers: PrivateServers, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        client = stack.new_tenant("reports")
        # Given a finished 20,000-recipient job, every recipient delivered
        job_id = submit(client, phones())
        before = wait_status(stack, client, job_id)["counts"]
        assert before["delivered"] == RECIPIENTS
        vhost = stack.settings.broker_url.rsplit("/", 1)[1]
        # When the report poller reads every report again (its cursor lost) ...
        cache = redis.Redis.from_url(stack.settings.redis_url)
        keys = Keys(stack.settings.redis_prefix)
        cache.delete(keys.cursor("reports:sms"))
        # ... and webhooks report failures after the deliveries (late, out of order), twice
        references = [f"{job_id}-{seq}" for seq in range(0, RECIPIENTS, 4)]
        for _ in range(2):
            assert sms_webhook(stack, references, "3015").status_code == 202
        deadline = time.monotonic() + 120
        while not (
            cache.exists(keys.cursor("reports:sms")) and reports_settled(stack, servers.rabbitmq.node, vhost)
        ):
            assert time.monotonic() < deadline, "reports never settled"
            time.sleep(0.2)
        cache.close()
        # Then nothing moved: each recipient counted once, states only forward
        after = stack.job(client, job_id)["counts"]
        verdict = verify(stack, job_id)
    row = TableRow(
        "7 duplicate/out-of-order reports",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        None,
    )
    table_row.append(row)
    check(row)
    assert after == before
