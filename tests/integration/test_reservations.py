"""Reservations, missed reservations, cancelling a reservation, and retention, on real processes
and a shared clock the tests move (no test sleeps for a deadline).

Tests of this module run in order on one stack: the last one moves the clock a year ahead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from engine.clock import KST
from engine.db import upgrade
from tests.integration.test_retries import clock_of
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.services import isolated_settings
from tests.support.stack import SENDER, Stack, running_stack, submit_sms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reserving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "clock": "shared",
        "reservation_poll_seconds": 0.5,
        "retention_interval_seconds": 1.0,
        "carrier_timeout_seconds": 2.0,
        "reconcile_after_seconds": 4.0,
    }
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("reservation-logs")) as stack:
            yield stack


def reserve(client: httpx.Client, phones: list[str], at: datetime | str) -> int:
    """Submit an SMS reservation for ``at``; its job id."""
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "예약 발송",
            "scheduled_at": at if isinstance(at, str) else at.isoformat(),
            "recipients": [{"phone": p} for p in phones],
        },
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def wait_status(
    stack: Stack, client: httpx.Client, job_id: int, status: str, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.job(client, job_id)
        if job["status"] == status:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not {status} after {timeout}s: {stack.job(client, job_id)}")


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_a_reservation_waits_for_its_time_then_is_sent_once(reserving: Stack) -> None:
    # Given a reservation an hour ahead
    client = reserving.new_tenant("reserve-on-time")
    clock = clock_of(reserving)
    at = clock.now() + timedelta(hours=1)
    job_id = reserve(client, [f"010-5000-{i:04d}" for i in range(30)], at)
    # ... while a job submitted after it goes out at once (the pump and workers are running)
    later = submit_sms(client, "즉시 발송", ["010-5001-0000"])
    wait_finished(reserving, client, later)
    # Then the reservation is still waiting, nothing of it sent
    job = reserving.job(client, job_id)
    assert (job["status"], job["kind"]) == ("scheduled", "scheduled")
    assert job["scheduled_at"] == at.astimezone(KST).isoformat()
    assert reserving.submissions(job_id) == {}

    # When its time comes
    clock.advance(timedelta(hours=1, seconds=1))
    job = wait_finished(reserving, client, job_id)
    # Then it is sent, each recipient once
    assert job["status"] == "completed" and job["counts"]["delivered"] == 30
    assert sorted(set(reserving.submissions(job_id).values())) == [1]
    assert len(reserving.submissions(job_id)) == 30


def test_a_reservation_found_long_after_its_time_is_missed_not_sent(reserving: Stack) -> None:
    # Given a reservation an hour ahead
    client = reserving.new_tenant("reserve-missed")
    clock = clock_of(reserving)
    job_id = reserve(client, [f"010-5100-{i:04d}" for i in range(10)], clock.now() + timedelta(hours=1))
    # When the system "wakes up" past its time plus the grace period (600 s)
    clock.advance(timedelta(hours=1, seconds=700))
    job = wait_status(reserving, client, job_id, "missed")
    # Then it shows missed, its recipients cancelled, and nothing went to the carrier
    assert job["completed_at"] is not None
    assert job["counts"]["cancelled"] == 10 and job["counts"]["queued"] == 0
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "cancelled"}).json()
    assert {r["reason_code"] for r in page["recipients"]} == {"reservation_missed"}
    assert reserving.submissions(job_id) == {}


def test_a_reservation_within_the_grace_period_is_still_sent(reserving: Stack) -> None:
    client = reserving.new_tenant("reserve-late")
    clock = clock_of(reserving)
    job_id = reserve(client, ["010-5200-0001", "010-5200-0002"], clock.now() + timedelta(minutes=5))
    # When found 5 minutes late (less than the 10-minute grace)
    clock.advance(timedelta(minutes=10))
    # Then it goes out
    assert wait_finished(reserving, client, job_id)["counts"]["delivered"] == 2


def test_cancelling_a_reservation_cancels_it_whole(reserving: Stack) -> None:
    # Given a reservation
    client = reserving.new_tenant("reserve-cancel")
    other = reserving.new_tenant("reserve-cancel-other")
    clock = clock_of(reserving)
    job_id = reserve(client, [f"010-5300-{i:04d}" for i in range(20)], clock.now() + timedelta(hours=2))
    # Another tenant cannot cancel it
    assert other.post(f"/v1/jobs/{job_id}/cancel").status_code == 404
    # When it is cancelled (twice: the second changes nothing)
    first = client.post(f"/v1/jobs/{job_id}/cancel")
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert first.status_code == 200 and first.json()["finished"] is True
    assert again.status_code == 200 and again.json()["cancelled_at"] == first.json()["cancelled_at"]
    # ... and its time passes
    clock.advance(timedelta(hours=2, seconds=1))
    later = submit_sms(client, "다음 발송", ["010-5301-0000"])
    wait_finished(reserving, client, later)
    # Then nothing of it was sent, and it shows cancelled with every recipient cancelled
    job = reserving.job(client, job_id)
    assert job["status"] == "cancelled" and job["cancelled_at"] is not None
    assert job["counts"]["cancelled"] == 20 and job["counts"]["sent"] == 0
    assert reserving.submissions(job_id) == {}
    # And a finished job cannot be cancelled
    refused = client.post(f"/v1/jobs/{later}/cancel")
    assert refused.status_code == 409 and problem(refused)["code"] == "job_finished"


def test_reservation_times_are_checked_against_the_moved_clock(reserving: Stack) -> None:
    client = reserving.new_tenant("reserve-validation")
    now = clock_of(reserving).now()

    def refused(at: str) -> dict[str, Any]:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "sms",
                "sender": SENDER,
                "body": "x",
                "scheduled_at": at,
                "recipients": [{"phone": "01012345678"}],
            },
        )
        assert response.status_code == 422, response.text
        return dict(problem(response))

    assert refused((now - timedelta(minutes=1)).isoformat())["field"] == "scheduled_at"
    assert "60 days" in refused((now + timedelta(days=61)).isoformat())["detail"]
    # A naive time is KST: the same wall time an hour ahead in Korea is accepted and shown back
    naive = (now + timedelta(hours=1)).astimezone(KST).replace(tzinfo=None, microsecond=0)
    job_id = reserve(client, ["010-5400-0001"], naive.isoformat())
    assert reserving.job(client, job_id)["scheduled_at"] == naive.replace(tzinfo=KST).isoformat()
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200


def partition_exists(stack: Stack, name: str) -> bool:
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_results_older_than_a_year_are_dropped_with_their_monthly_partition(reserving: Stack) -> None:
    # Given a finished job, and the month partition its recipients are in
    client = reserving.new_tenant("retention")
    old = submit_sms(client, "오래된 발송", ["010-5500-0001", "010-5500-0002"])
    wait_finished(reserving, client, old)
    with psycopg.connect(reserving.settings.database_url) as conn:
        row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (old,)).fetchone()
    assert row is not None
    partition = f"recipients_{row[0]:%Y_%m}"
    assert partition_exists(reserving, partition)

    # When the clock moves beyond a year after the end of that month
    clock_of(reserving).advance(timedelta(days=400))
    new = submit_sms(client, "새 발송", ["010-5500-0003"])
    wait_finished(reserving, client, new)
    deadline = time.monotonic() + 30
    while client.get(f"/v1/jobs/{old}").status_code != 404 and time.monotonic() < deadline:
        time.sleep(0.2)

    # Then the old job is gone with its month's partition; the new job and its results stay
    assert client.get(f"/v1/jobs/{old}").status_code == 404
    deadline = time.monotonic() + 30
    while partition_exists(reserving, partition) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not partition_exists(reserving, partition)
    assert reserving.job(client, new)["counts"]["delivered"] == 1
    page = client.get(f"/v1/jobs/{new}/recipients").json()
    assert [r["status"] for r in page["recipients"]] == ["delivered"]
