"""A poison message in the queues, and a storm of identical submissions."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from cli.dead_letters import dead_letters
from engine.config import Settings
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

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


def publish_poison(broker_url: str, job_id: int) -> None:
    """A send_batch message that raises every time (its batch number is not a number)."""
    broker = RabbitmqBroker(url=broker_url, confirm_delivery=True)
    try:
        broker.enqueue(
            dramatiq.Message(
                queue_name="send.sms", actor_name="send_batch", args=(job_id, "poison"), kwargs={}, options={}
            )
        )
    finally:
        broker.close()


def test_a_poison_message_is_dead_lettered_and_the_job_goes_on(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("poison")
        url = stack.settings.broker_url
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When a message that always raises lands in its queue
        publish_poison(url, job_id)
        # Then the rest of the job goes on and finishes exactly
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        # And after its retries the message is dead-lettered: listed, logged, never dropped
        deadline = time.monotonic() + 120
        while not (letters := dead_letters(url, "list")):
            assert time.monotonic() < deadline, "the poison message was never dead-lettered"
            time.sleep(0.5)
        listed_twice = dead_letters(url, "list")
        log = (tmp_path / "worker.log").read_text(errors="replace")
        # And it can be purged
        purged = dead_letters(url, "purge")
        left = dead_letters(url, "list")
    row = TableRow(
        "8 poison message", RECIPIENTS, verdict.lost, verdict.duplicated, verdict.counters_equal, None
    )
    table_row.append(row)
    check(row)
    [letter] = letters
    # (its first attempt and send_batch's 5 retries)
    assert (letter.queue, letter.actor, letter.job_id, letter.attempts) == (
        "send.sms",
        "send_batch",
        job_id,
        6,
    )
    assert "poison" in letter.error
    assert listed_twice == letters, "listing must leave the dead letters in place"
    assert "message dead-lettered after 6 attempts" in log
    assert (len(purged), left) == (1, [])


def test_fifty_concurrent_submissions_with_one_idempotency_key_make_one_job(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        client = stack.new_tenant("idempotency")
        body = {
            "channel": "sms",
            "sender": "02-1234-5678",
            "body": "one job",
            "recipients": [{"phone": p} for p in phones()],
        }
        headers = {"Idempotency-Key": "campaign-2026-11-23"}
        # When 50 clients submit the same 20,000-recipient job with the same key at once
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: client.post("/v1/jobs", json=body, headers=headers), range(50)))
        # Then exactly one is accepted (202); the others get the same job (200) or are asked to
        # retry: while it is stored (409), or past the tenant's intake budget of submissions at
        # once (429 with Retry-After)
        statuses = sorted(a.status_code for a in answers)
        assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 429)
        job_ids = {a.json()["job_id"] for a in answers if a.status_code in (200, 202)}
        # And the same key with a different body is refused
        different = client.post("/v1/jobs", json={**body, "body": "another job"}, headers=headers)
        [job_id] = job_ids
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        with psycopg.connect(stack.settings.database_url) as conn:
            jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
    row = TableRow(
        "9 50 concurrent same Idempotency-Key",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        None,
    )
    table_row.append(row)
    check(row)
    assert statuses.count(202) == 1 and set(statuses) <= {200, 202, 409, 429}, statuses
    assert jobs == (1,)
    assert different.status_code == 422, different.text
