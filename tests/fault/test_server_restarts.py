"""Restarting RabbitMQ, Redis and PostgreSQL in the middle of a job: the fault suite's own
servers (see tests/support/private_servers.py), never the machine's shared ones."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from engine.config import Settings
from tests.fault.harness import (
    RATE_PER_SECOND,
    RECIPIENTS,
    Fault,
    TableRow,
    check,
    fault_stack,
    longest_stall,
    phones,
    submit,
    verify,
    wait_status,
)
from tests.support.private_servers import PrivateServers
from tests.support.stack import Stack

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


def test_restarting_rabbitmq_mid_job_loses_nothing(
    fault_settings: Settings, servers: PrivateServers, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("rabbit-restart")
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When RabbitMQ stops (its queues and unacknowledged messages with it) and starts again
        servers.rabbitmq.restart()
        baseline = fault.accepted()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        # Then publishers and consumers reconnect by themselves and the job finishes exactly
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        stall = longest_stall(stack)
    row = TableRow(
        "3 restart RabbitMQ",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
        stall,
    )
    table_row.append(row)
    check(row)


def peak_second(stack: Stack, job_id: int) -> int:
    """The most recipients of the job the carrier accepted within one second (by its clock)."""
    per_second: Counter[int] = Counter()
    for entry in stack.simulator.ledger():
        if entry["reference"].startswith(f"{job_id}-"):
            per_second[int(entry["accepted_at"])] += 1
    return max(per_second.values())


def test_restarting_redis_mid_job_rebuilds_from_postgresql(
    fault_settings: Settings, servers: PrivateServers, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("redis-restart")
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When Redis restarts empty (counters, result stream, retry ledger, rate-limit state gone)
        servers.redis.restart()
        baseline = fault.accepted()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        # Then the job finishes exactly, its counters rebuilt from PostgreSQL
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        # And the rate limit held: no second above the cap, even with its state lost
        peak = peak_second(stack, job_id)
        stall = longest_stall(stack)
    row = TableRow(
        "4 restart Redis (data lost)",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
        stall,
    )
    table_row.append(row)
    check(row)
    assert peak <= RATE_PER_SECOND, f"{peak} recipients in one second, cap {RATE_PER_SECOND:g}"


def test_restarting_postgresql_mid_job_answers_503_and_loses_nothing(
    fault_settings: Settings, servers: PrivateServers, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("postgres-restart")
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When PostgreSQL stops
        servers.postgres.stop()
        try:
            # Then a new job is refused with 503 (never a false 202)
            refused = client.post(
                "/v1/jobs",
                json={
                    "channel": "sms",
                    "sender": "02-1234-5678",
                    "body": "while down",
                    "recipients": [{"phone": p} for p in phones(100, block=5)],
                },
                timeout=httpx.Timeout(30.0),
            )
        finally:
            servers.postgres.start()
        baseline = fault.accepted()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        # And once it is back the job finishes exactly: the results held meanwhile are flushed
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        jobs = _job_count(stack)
        stall = longest_stall(stack)
    row = TableRow(
        "5 restart PostgreSQL",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
        stall,
    )
    table_row.append(row)
    check(row)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "unavailable"
    assert jobs == 1, "the refused job must not exist"


def _job_count(stack: Stack) -> int:
    import psycopg

    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert row is not None
    return int(row[0])
