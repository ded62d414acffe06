"""Resend is safe to repeat (issue 20).

Given a finished job with failures, when its failures are resent many times at once (with
different idempotency keys, or none), then one resend job is made, the others are refused with
409 ``resend_in_progress`` naming it, and the carrier is handed each failed recipient once.
"""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from threading import Barrier

import httpx
import psycopg
import pytest

from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

CONCURRENT = 20


def finished_job_with_failures(stack: Stack, client: httpx.Client, base: int) -> int:
    """An SMS job of 80 recipients of which the carrier fails about 40 % (3015), run to its end."""
    stack.simulator.configure(failure_mix={"3015": 0.4}, seed=base % 89)
    try:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "sms",
                "sender": SENDER,
                "body": "재발송 한 번만",
                "recipients": [{"phone": f"010{base + i:08d}"} for i in range(80)],
            },
        )
        assert response.status_code == 202, response.text
        job_id = int(response.json()["job_id"])
        wait_finished(stack, client, job_id)
        return job_id
    finally:
        stack.simulator.configure(failure_mix={})


def failed_phones(stack: Stack, job_id: int) -> set[str]:
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT phone FROM recipients WHERE job_id = %s AND status IN ('failed', 'expired')"
            " AND channel IS NOT NULL",
            (job_id,),
        ).fetchall()
    return {row[0] for row in rows}


def resend_jobs(stack: Stack, job_id: int) -> list[int]:
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute("SELECT id FROM jobs WHERE resent_from = %s ORDER BY id", (job_id,)).fetchall()
    return [int(row[0]) for row in rows]


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_twenty_concurrent_resends_make_one_job_and_no_duplicate_delivery(stack: Stack) -> None:
    # Given a finished job with failed recipients
    tenant = f"resend-race-{uuid.uuid4().hex[:6]}"
    client = stack.new_tenant(tenant, balance=Decimal(1_000_000))
    original = finished_job_with_failures(stack, client, 31_100_000)
    failed = failed_phones(stack, original)
    assert failed

    # When 20 requests resend its failures at the same moment, each with its own Idempotency-Key
    barrier = Barrier(CONCURRENT)

    def resend(index: int) -> httpx.Response:
        with httpx.Client(base_url=stack.settings.api_url, headers=client.headers, timeout=60) as own:
            barrier.wait()
            return own.post(f"/v1/jobs/{original}/resend", headers={"Idempotency-Key": f"race-{index}"})

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(resend, range(CONCURRENT)))

    # Then exactly one resend job is made; every other request is refused naming it
    made = [a for a in answers if a.status_code == 202]
    assert len(made) == 1, Counter(a.status_code for a in answers)
    job_id = made[0].json()["job_id"]
    refused = [a for a in answers if a is not made[0]]
    assert {a.status_code for a in refused} == {409}, [a.text for a in refused]
    assert {problem(a)["code"] for a in refused} == {"resend_in_progress"}
    assert {problem(a)["job_id"] for a in refused} == {job_id}
    assert resend_jobs(stack, original) == [job_id]

    # And the one that made it still gets the same job for its key (200), not a refusal
    winner = answers.index(made[0])
    again = client.post(f"/v1/jobs/{original}/resend", headers={"Idempotency-Key": f"race-{winner}"})
    assert (again.status_code, again.json()["job_id"]) == (200, job_id), again.text

    # And once it has finished, the carrier was handed each failed recipient exactly once more
    wait_finished(stack, client, job_id)
    ledger = [e for e in stack.simulator.ledger() if e["recipient_no"] in failed]
    handed: Counter[str] = Counter(
        e["recipient_no"] for e in ledger if not e["reference"].startswith(f"{original}-")
    )
    assert set(handed) == failed
    assert set(handed.values()) == {1}
    assert set(stack.submissions(job_id).values()) == {1}


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_a_resend_without_a_key_is_refused_while_the_first_runs(stack: Stack) -> None:
    # Given a finished job with failures and a resend of them not finished yet
    tenant = f"resend-repeat-{uuid.uuid4().hex[:6]}"
    client = stack.new_tenant(tenant, balance=Decimal(1_000_000))
    original = finished_job_with_failures(stack, client, 31_200_000)
    # (the carrier reports the resend's outcomes 5 s after it takes them: unknown till then)
    stack.simulator.configure(result_delay_ms=5_000)
    try:
        first = client.post(f"/v1/jobs/{original}/resend")
        assert first.status_code == 202, first.text
        job_id = first.json()["job_id"]

        # When the same resend is asked twice more, without an Idempotency-Key
        repeats = [client.post(f"/v1/jobs/{original}/resend") for _ in range(2)]

        # Then both are refused naming the running resend, and no other job is made
        assert [r.status_code for r in repeats] == [409, 409], [r.text for r in repeats]
        assert {problem(r)["job_id"] for r in repeats} == {job_id}
        # And so is a resend of some of the same failures (a filter within "every failure")
        some = client.post(f"/v1/jobs/{original}/resend", json={"reasons": ["carrier_3015"]})
        assert some.status_code == 409 and problem(some)["job_id"] == job_id, some.text
        assert resend_jobs(stack, original) == [job_id]
    finally:
        stack.simulator.configure(result_delay_ms=300)

    # When the resend has finished, then the failures may be resent again (a new decision)
    wait_finished(stack, client, job_id, timeout=180)
    later = client.post(f"/v1/jobs/{original}/resend")
    assert later.status_code in (202, 422), later.text
