"""The pipeline's guarantees, on real processes: the outbox plans what was never planned, a
redelivered batch is never submitted twice, and an unknown outcome is reconciled by asking the
carrier, never by resending."""

from __future__ import annotations

import time

import dramatiq
import psycopg
import pytest

from engine.dispatch.planning import BatchRef, plan_job
from engine.intake.intake import prepare_job
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack, submit_sms
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration


def tenant_id_of(stack: Stack, name: str) -> int:
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def wait_queue_drained(broker: dramatiq.Broker, queue: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while broker.get_queue_message_counts(queue)[0] and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.2)
    time.sleep(1.0)  # the last message taken may still be in a worker's hands


def batch_attempts(stack: Stack, job_id: int) -> list[int]:
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT attempts FROM batches WHERE job_id = %s ORDER BY seq", (job_id,)
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.slow  # ~16 s waiting for the outbox
def test_a_job_committed_but_never_planned_is_planned_by_the_outbox(stack: Stack) -> None:
    # Given a job committed straight to PostgreSQL, as if the API died before publishing plan_job
    client = stack.new_tenant("outbox")
    prepared = prepare_job(
        {
            "channel": "sms",
            "sender": SENDER,
            "body": "outbox",
            "recipients": [{"phone": f"010-7777-{i:04d}"} for i in range(1500)],
        },
        max_recipients=10_000,
    )
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = store_prepared(conn, stack.settings, tenant_id_of(stack, "outbox"), prepared).job_id

    # When the scheduler notices it (after replan_after_seconds)
    job = wait_finished(stack, client, job_id, timeout=60)

    # Then it was sent, once
    assert job["counts"]["delivered"] == 1500
    assert set(stack.submissions(job_id).values()) == {1}
    # And planning it again creates no second batch
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        assert plan_job(conn, job_id, batch_size=1000, window=32) == []
        batches = conn.execute("SELECT count(*) FROM batches WHERE job_id = %s", (job_id,)).fetchone()
    assert batches == (2,)


def test_a_redelivered_batch_message_submits_nobody_twice(stack: Stack, broker: dramatiq.Broker) -> None:
    # Given a finished job
    client = stack.new_tenant("redelivery")
    job_id = submit_sms(client, "once", [f"010-6666-{i:04d}" for i in range(2500)])
    wait_finished(stack, client, job_id)

    # When every one of its send_batch messages is delivered again (as RabbitMQ may)
    from actors.publish import publish_batches

    publish_batches([BatchRef(job_id, seq, "sms", "bulk") for seq in range(3)] * 2)
    wait_queue_drained(broker, "send.sms")

    # Then the carrier saw every recipient exactly once
    seen = stack.submissions(job_id)
    assert len(seen) == 2500
    assert set(seen.values()) == {1}


def test_a_timeout_after_the_request_left_is_reconciled_without_a_second_submission(stack: Stack) -> None:
    # Given a carrier that accepts every request but answers too late (outcome unknown)
    client = stack.new_tenant("reconcile")
    stack.simulator.configure(timeout_rate=1.0, timeout_sleep_ms=4000)
    try:
        job_id = submit_sms(client, "timeout", [f"010-5555-{i:04d}" for i in range(300)])
        # When the worker's call times out, the batch stays claimed ...
        deadline = time.monotonic() + 20
        while not stack.submissions(job_id) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stack.simulator.configure(timeout_rate=0.0)

    # ... and the scheduler reconciles it by asking the carrier
    job = wait_finished(stack, client, job_id, timeout=60)

    # Then the batch went through reconciliation, every recipient is delivered, and each was
    # submitted exactly once
    assert batch_attempts(stack, job_id) == [2]
    assert job["counts"]["delivered"] == 300
    seen = stack.submissions(job_id)
    assert len(seen) == 300
    assert set(seen.values()) == {1}


def test_a_request_still_being_stored_with_the_same_idempotency_key_gets_409(stack: Stack) -> None:
    # Given another request holding the idempotency key (its transaction still open)
    client = stack.new_tenant("idem-409")
    tenant_id = tenant_id_of(stack, "idem-409")
    with psycopg.connect(stack.settings.database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", ("busy-key", tenant_id))
        # When the same key is used meanwhile
        response = client.post(
            "/v1/jobs",
            headers={"Idempotency-Key": "busy-key"},
            json={"channel": "sms", "sender": SENDER, "body": "x", "recipients": [{"phone": "01012345678"}]},
        )
        conn.rollback()
    # Then it is told to retry later
    assert response.status_code == 409, response.text
    assert problem(response)["code"] == "idempotency_key_in_progress"
