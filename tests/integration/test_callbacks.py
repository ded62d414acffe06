"""Status callbacks end to end: real API, worker, scheduler, dispatcher and an HTTP receiver."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from engine.callbacks.settings import current_secret
from engine.callbacks.signing import verify
from engine.lifecycle.statuses import RecipientStatus
from tests.support.jobs import wait_finished
from tests.support.receiver import Receiver, running_receiver
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

#: How far along a recipient's events may go (an event may never come before one of a lower rank).
RANK = {
    RecipientStatus.SUBMITTED: 1,
    RecipientStatus.DELIVERED: 2,
    RecipientStatus.FAILED: 2,
    RecipientStatus.EXPIRED: 2,
    RecipientStatus.FALLBACK: 2,
    RecipientStatus.CANCELLED: 2,
    RecipientStatus.UNKNOWN: 2,
}


def submit(client: httpx.Client, phones: list[str], **fields: Any) -> int:
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "주문하신 상품이 발송되었습니다",
            "recipients": [{"phone": p, "reference": f"ORDER-{i}"} for i, p in enumerate(phones)],
            **fields,
        },
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def secret_of(stack: Stack, tenant: str) -> str:
    """The tenant's callback signing secret (as `balsong tenant callback-secret` shows it)."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = %s", (tenant,)).fetchone()
        assert row is not None
        return current_secret(conn, int(row[0]))


def job_events(receiver: Receiver, job_id: int) -> list[dict[str, Any]]:
    return [e for e in receiver.events() if e["job_id"] == job_id]


def finished(job_id: int) -> Any:
    return lambda events: any(e["job_id"] == job_id and e["type"] == "job.finished" for e in events)


def phones(prefix: str, count: int) -> list[str]:
    return [f"010-{prefix}-{i:04d}" for i in range(count)]


def test_every_status_reaches_the_callback_url_signed_and_in_order(stack: Stack) -> None:
    # Given a tenant and a job of 300 recipients naming a callback URL
    client = stack.new_tenant("callbacks-job-url")
    with running_receiver() as receiver:
        job_id = submit(client, phones("7300", 300), callback_url=receiver.url, reference="campaign-7300")

        # When the job finishes
        receiver.wait_for(finished(job_id))
        events = job_events(receiver, job_id)

        # Then every recipient has its submission and its final result, never out of order
        by_reference: dict[str, list[str]] = defaultdict(list)
        for event in events:
            if event["type"] == "recipient.status":
                by_reference[event["reference"]].append(event["status"])
        assert len(by_reference) == 300
        for statuses in by_reference.values():
            assert statuses[0] == "submitted"
            assert [RANK[RecipientStatus(s)] for s in statuses] == sorted(
                RANK[RecipientStatus(s)] for s in statuses
            )
            assert statuses[-1] in ("delivered", "failed")
        # And the job's own event comes last, with its final counts
        assert events[-1]["type"] == "job.finished"
        assert events[-1]["counts"]["total"] == 300
        assert events[-1]["job_reference"] == "campaign-7300"
        # And each event says what a receiver needs: masked phone, channel, reason, time with offset
        sample = next(e for e in events if e["type"] == "recipient.status")
        assert sample["phone"].startswith("010-****-")
        assert sample["channel"] == "sms"
        assert sample["job_reference"] == "campaign-7300"
        assert sample["occurred_at"].endswith("+09:00")
        assert len({e["event_id"] for e in events}) == len(events)
        # And every request is signed with the tenant's secret
        secret = secret_of(stack, "callbacks-job-url")
        assert receiver.deliveries
        assert receiver.all_signed_with(secret)
        assert not any(
            verify(d.signature, d.body, "whsec_wrong", int(d.received_at)) for d in receiver.deliveries
        )
        # And requests carry at most 1,000 events
        assert max(len(d.events) for d in receiver.deliveries) <= 1000

        # And the job's delivery state says so
        state = client.get(f"/v1/jobs/{job_id}/callbacks").json()
        assert state["url"] == receiver.url
        assert state["events"] == {"delivered": len(events), "pending": 0, "failed": 0}


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_a_tenants_default_url_is_used_and_a_job_without_one_makes_no_events(stack: Stack) -> None:
    # Given a tenant with a default callback URL
    client = stack.new_tenant("callbacks-default", scopes=("send", "read", "admin"))
    with running_receiver() as receiver:
        assert client.put("/v1/callback", json={"url": receiver.url}).status_code == 200
        # When it sends a job naming no URL
        job_id = submit(client, phones("7301", 5))
        # Then its events go to the default
        receiver.wait_for(finished(job_id))
        assert len([e for e in job_events(receiver, job_id) if e["type"] == "recipient.status"]) >= 10

    # And a tenant with no URL at all makes no events
    quiet = stack.new_tenant("callbacks-none")
    quiet_job = submit(quiet, phones("7302", 3))
    wait_finished(stack, quiet, quiet_job)
    state = quiet.get(f"/v1/jobs/{quiet_job}/callbacks").json()
    assert state["url"] is None
    assert state["events"] == {"delivered": 0, "pending": 0, "failed": 0}


def test_two_tenants_on_one_url_never_see_each_others_events(stack: Stack) -> None:
    # Given two tenants whose jobs name the same receiver
    first, second = stack.new_tenant("callbacks-iso-a"), stack.new_tenant("callbacks-iso-b")
    with running_receiver() as receiver:
        job_a = submit(first, phones("7303", 20), callback_url=receiver.url)
        job_b = submit(second, phones("7304", 20), callback_url=receiver.url)
        receiver.wait_for(lambda events: finished(job_a)(events) and finished(job_b)(events))
        secret_a, secret_b = secret_of(stack, "callbacks-iso-a"), secret_of(stack, "callbacks-iso-b")

        # Then each request holds one tenant's events, signed with that tenant's secret alone
        for delivery in receiver.accepted():
            jobs = {e["job_id"] for e in delivery.events}
            assert jobs in ({job_a}, {job_b})
            secret, other = (secret_a, secret_b) if jobs == {job_a} else (secret_b, secret_a)
            assert verify(delivery.signature, delivery.body, secret, int(delivery.received_at))
            assert not verify(delivery.signature, delivery.body, other, int(delivery.received_at))
        # And one tenant cannot read the other's delivery state
        assert second.get(f"/v1/jobs/{job_a}/callbacks").status_code == 404


def test_410_disables_the_endpoint_and_a_replay_sends_everything_again(stack: Stack) -> None:
    # Given a receiver that answers 410 Gone
    client = stack.new_tenant("callbacks-gone")
    with running_receiver(answer=410) as receiver:
        job_id = submit(client, phones("7305", 4), callback_url=receiver.url)
        wait_finished(stack, client, job_id)

        # Then its events end failed, and the endpoint is disabled, saying why
        state = wait_state(
            client, job_id, lambda s: s["events"]["pending"] == 0 and s["events"]["failed"] > 0
        )
        assert state["events"]["delivered"] == 0
        assert state["endpoint"]["disabled_at"] is not None
        assert "410" in state["last_error"]
        tried = len(receiver.deliveries)

        # When the receiver is back and the job is replayed
        receiver.answer = 200
        replay = client.post(f"/v1/jobs/{job_id}/callbacks/replay")
        assert replay.status_code == 200, replay.text
        assert replay.json()["events"] == state["events"]["failed"]

        # Then every event arrives, with the same ids
        receiver.wait_for(finished(job_id))
        assert len(receiver.deliveries) > tried
        state = wait_state(client, job_id, lambda s: s["events"]["pending"] == 0)
        assert state["events"]["failed"] == 0
        assert state["endpoint"]["disabled_at"] is None


def test_replay_of_a_job_without_a_callback_url_is_a_conflict(stack: Stack) -> None:
    client = stack.new_tenant("callbacks-replay-none")
    job_id = submit(client, phones("7306", 1))
    response = client.post(f"/v1/jobs/{job_id}/callbacks/replay")
    assert response.status_code == 409
    assert response.json()["code"] == "no_callback_url"
    assert client.post("/v1/jobs/999999999/callbacks/replay").status_code == 404


def test_a_cancelled_reservation_reports_its_recipients_and_its_end(stack: Stack) -> None:
    # Given a reservation naming a callback URL
    client = stack.new_tenant("callbacks-cancel")
    with running_receiver() as receiver:
        job_id = submit(
            client,
            phones("7307", 3),
            callback_url=receiver.url,
            scheduled_at=(datetime.now(UTC) + timedelta(days=3)).isoformat(),
        )
        # When it is cancelled
        assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        # Then each recipient's cancellation and the job's end are pushed
        receiver.wait_for(finished(job_id))
        events = job_events(receiver, job_id)
        assert sorted(e["status"] for e in events if e["type"] == "recipient.status") == ["cancelled"] * 3
        assert events[-1]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "no callback may reach"),
        ("https://user:pw@example.com/hooks", "user name or password"),
        ("ftp://example.com/hooks", "https"),
        ("not a url", "control characters"),
    ],
)
def test_a_job_cannot_aim_its_callbacks_anywhere(stack: Stack, url: str, reason: str) -> None:
    client = stack.new_tenant(f"callbacks-ssrf-{abs(hash(url))}")
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "x",
            "recipients": [{"phone": "010-7308-0001"}],
            "callback_url": url,
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "callback_url"
    assert reason in response.json()["detail"]


def test_a_job_cannot_aim_its_callbacks_at_balsong_itself(stack: Stack) -> None:
    client = stack.new_tenant("callbacks-self")
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "x",
            "recipients": [{"phone": "010-7309-0001"}],
            "callback_url": f"{stack.settings.api_url}/v1/jobs",
        },
    )
    assert response.status_code == 422
    assert "balsong's own API" in response.json()["detail"]


def wait_state(client: httpx.Client, job_id: int, ready: Any, timeout: float = 60.0) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/v1/jobs/{job_id}/callbacks").json()
        if ready(state):
            return dict(state)
        if time.monotonic() > deadline:
            raise TimeoutError(f"callback state not reached: {state}")
        time.sleep(0.2)
