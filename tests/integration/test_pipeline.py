"""The core pipeline end to end, on real processes and servers.

Given API, worker, scheduler and the carrier simulator running against the real PostgreSQL,
Redis and RabbitMQ, when a 10,000-recipient job is submitted over HTTP, then every valid
recipient reaches the simulator exactly once, durable rows equal the counters, and invalid
numbers carry their reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration


def make_recipients(count: int, invalid_every: int) -> list[dict[str, Any]]:
    recipients = []
    for i in range(count):
        phone = f"010-{1000 + i // 10000:04d}-{i % 10000:04d}"
        if i % invalid_every == 0:
            phone = f"010-99-{i}"  # too short
        recipients.append({"phone": phone, "variables": {"name": f"고객{i}"}, "member_id": f"m{i}"})
    return recipients


def durable_statuses(stack: Stack, job_id: int) -> Counter[str]:
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM recipients WHERE job_id = %s GROUP BY status", (job_id,)
        ).fetchall()
    return Counter({status: count for status, count in rows})


def test_ten_thousand_recipients_reach_the_carrier_exactly_once(stack: Stack) -> None:
    # Given a tenant and a 10,000-recipient job with every 500th number invalid
    client = stack.new_tenant("pipeline-10k")
    stack.simulator.reset()
    recipients = make_recipients(10_000, invalid_every=500)
    invalid = sum(1 for i in range(10_000) if i % 500 == 0)

    # When it is submitted and runs to the end
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "auto",
            "sender": SENDER,
            "body": "#{name}님, 주문이 발송되었습니다.",
            "recipients": recipients,
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = wait_finished(stack, client, job_id)

    # Then the simulator accepted every valid recipient exactly once
    ledger = stack.simulator.ledger()
    references = Counter(entry["reference"] for entry in ledger)
    assert len(references) == 10_000 - invalid
    assert max(references.values()) == 1
    assert all(entry["submissions"] == 1 for entry in ledger)
    assert {entry["recipient_no"] for entry in ledger} == {
        r["phone"].replace("-", "") for i, r in enumerate(recipients) if i % 500
    }
    # ... with each recipient's own text
    assert any(entry["body"] == "고객1님, 주문이 발송되었습니다." for entry in ledger)

    # And durable rows equal the counters
    durable = durable_statuses(stack, job_id)
    counts = job["counts"]
    assert counts["total"] == sum(durable.values()) == 10_000
    assert counts["delivered"] == durable["delivered"]
    assert counts["failed"] == durable["failed"]
    assert counts["queued"] == durable["queued"] == 0
    assert counts["in_flight"] == durable["submitted"] == 0
    assert counts["sent"] == 10_000 - invalid

    # And invalid numbers carry their reason
    failures = {f["reason_code"]: f for f in job["failures"]}
    assert failures["too_short"]["count"] == invalid
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"reason": "too_short", "limit": 5}).json()
    assert len(page["recipients"]) == 5
    assert all(r["status"] == "failed" and "digits" in r["reason"] for r in page["recipients"])
    assert job["status"] == "partially_failed"


def test_recipients_page_through_with_a_cursor_and_masked_phones(stack: Stack) -> None:
    # Given a finished small job
    client = stack.new_tenant("pager")
    recipients = [{"phone": f"010-5555-{i:04d}"} for i in range(25)]
    job_id = client.post(
        "/v1/jobs", json={"channel": "sms", "sender": SENDER, "body": "안내", "recipients": recipients}
    ).json()["job_id"]
    wait_finished(stack, client, job_id)

    # When it is read page by page
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/v1/jobs/{job_id}/recipients", params=params).json()
        seen.extend(page["recipients"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Then every recipient comes once, masked
    assert len(seen) == 25
    assert len({r["seq"] for r in seen}) == 25
    assert all(r["phone"].startswith("010-****-") for r in seen)


def test_another_tenants_job_is_not_found(stack: Stack) -> None:
    # Given a job of tenant A
    owner = stack.new_tenant("owner")
    stranger = stack.new_tenant("stranger")
    job_id = owner.post(
        "/v1/jobs",
        json={"channel": "sms", "sender": SENDER, "body": "hi", "recipients": [{"phone": "01012345678"}]},
    ).json()["job_id"]
    # When tenant B asks for it, Then 404
    assert stranger.get(f"/v1/jobs/{job_id}").status_code == 404
    assert stranger.get(f"/v1/jobs/{job_id}/recipients").status_code == 404


def test_idempotency_key_returns_the_same_job_and_refuses_a_different_body(stack: Stack) -> None:
    client = stack.new_tenant("idem")
    body = {"channel": "sms", "sender": SENDER, "body": "hi", "recipients": [{"phone": "01011112222"}]}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-1"})
    again = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "order-1"})
    other = client.post("/v1/jobs", json={**body, "body": "bye"}, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 422 and problem(other)["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"sender": "02-9999-9999"}, "sender", "sender_not_registered"),
        ({"body": "안녕 😀"}, "body", "unencodable_text"),
        ({"channel": "sms", "body": "가" * 46}, "body", "content_too_long"),
        ({"channel": "fax"}, "channel", "invalid"),
        ({"recipients": []}, "recipients", "invalid"),
    ],
)
def test_bad_jobs_are_refused_naming_the_field(
    stack: Stack, change: dict[str, Any], field: str, code: str
) -> None:
    client = stack.new_tenant(f"bad-{field}-{code}")
    body = {
        "channel": "auto",
        "sender": SENDER,
        "body": "hi",
        "recipients": [{"phone": "01012345678"}],
        **change,
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    error = problem(response)
    assert (error["field"], error["code"]) == (field, code)
    if code == "unencodable_text":
        assert "😀" in error["detail"]


def test_requests_without_a_valid_key_are_refused(stack: Stack) -> None:
    response = httpx.get(f"{stack.settings.api_url}/v1/jobs/1")
    assert response.status_code == 401
    response = httpx.get(f"{stack.settings.api_url}/v1/jobs/1", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert problem(response)["code"] == "unauthorised"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_without_the_send_scope_cannot_submit(stack: Stack) -> None:
    reader = stack.new_tenant("reader", scopes=("read",))
    response = reader.post(
        "/v1/jobs",
        json={"channel": "sms", "sender": SENDER, "body": "x", "recipients": [{"phone": "01012345678"}]},
    )
    assert response.status_code == 403
    refused = problem(response)
    assert (refused["code"], refused["detail"]) == ("forbidden", "this API key lacks the 'send' scope")
