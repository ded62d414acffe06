"""Money, senders and advertising rules through the API, on real processes and a moved clock.

Given the whole of balsong running with a shared clock the test moves, when tenants top up,
submit jobs they can or cannot pay for, register senders, and send advertising by day and by
night, then the API answers as Korean law and the price list say, and a running advertising
job waits out the night.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from engine.accounts.platform_keys import create_platform_key
from engine.clock import KST
from engine.db import upgrade
from tests.integration.test_retries import clock_of
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.services import isolated_settings
from tests.support.stack import SENDER, Stack, running_stack

pytestmark = pytest.mark.integration

AD = "(광고) 겨울 세일\n무료수신거부 080-123-4567"


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # SMS limited to 100/s so a job runs long enough for the clock to pass 21:00 under it.
    with isolated_settings(clock="shared", rate_limit_sms_per_second=100.0) as settings:
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("account-logs")) as stack:
            yield stack


def move_clock_to(stack: Stack, hour: int, minute: int = 0) -> None:
    """Move every process's clock forward to the next hour:minute KST."""
    clock = clock_of(stack)
    now = clock.now().astimezone(KST)
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    clock.advance(target - now)
    time.sleep(0.5)  # the processes re-read the offset at most every 0.2 s


def sms_job(
    client: httpx.Client, count: int, *, body: str = "안내", start: int = 0, **extra: Any
) -> httpx.Response:
    recipients = [{"phone": f"010-5{start // 10000:03d}-{(start + i) % 10000:04d}"} for i in range(count)]
    return client.post(
        "/v1/jobs", json={"channel": "sms", "sender": SENDER, "body": body, "recipients": recipients, **extra}
    )


def test_a_job_the_balance_cannot_pay_for_is_refused_with_the_amounts(accounts: Stack) -> None:
    # Given a tenant with 100 points (SMS costs 9)
    client = accounts.new_tenant("poor", balance=Decimal(100))

    # When it submits 12 recipients (108 points)
    response = sms_job(client, 12)

    # Then the job is refused whole, saying what it needed and what there was
    assert response.status_code == 402, response.text
    error = problem(response)
    assert (error["code"], error["needed"], error["available"]) == (
        "insufficient_balance",
        "108.00",
        "100.00",
    )
    assert client.get("/v1/jobs").json()["jobs"] == []
    assert client.get("/v1/balance").json()["balance"] == "100.00"


def test_a_finished_job_shows_its_charge_refund_and_net(accounts: Stack) -> None:
    # Given a tenant with 1,000 points
    client = accounts.new_tenant("payer", balance=Decimal(1000))
    move_clock_to(accounts, 12)

    # When a job of 8 numbers runs to the end, about a quarter refused by the carrier
    accounts.simulator.configure(failure_mix={"3015": 0.25}, seed=5)
    try:
        response = sms_job(client, 8)
        assert response.status_code == 202, response.text
        job = wait_finished(accounts, client, response.json()["job_id"])
    finally:
        accounts.simulator.configure(failure_mix={})

    # Then it was charged for every recipient at intake and refunded the failures, once
    charges = job["charges"]
    assert charges["charged"] == "72.00"
    assert Decimal(charges["refunded"]) == 9 * job["counts"]["failed"]
    assert Decimal(charges["net"]) == 9 * job["counts"]["delivered"]
    assert charges["settled"] is True
    assert Decimal(client.get("/v1/balance").json()["balance"]) == 1000 - Decimal(charges["net"])
    ledger = client.get("/v1/ledger").json()["entries"]
    assert [entry["kind"] for entry in ledger][:2] == ["refund", "charge"]


def test_top_ups_need_a_platform_key(accounts: Stack) -> None:
    # Given a tenant with a send/read key and an admin key, and a platform key
    operator = accounts.new_tenant("topper", scopes=("send", "read"), balance=Decimal(0))
    admin = accounts.new_tenant("topper-admin", scopes=("admin",), balance=Decimal(0))
    with psycopg.connect(accounts.settings.database_url, autocommit=True) as conn:
        platform_key = create_platform_key(conn, "billing")
    platform = httpx.Client(
        base_url=accounts.settings.api_url, headers={"Authorization": f"Bearer {platform_key}"}, timeout=30
    )
    accounts.clients.append(platform)
    # When the tenant's keys top up, then they are refused
    assert operator.post("/v1/balance/top-ups", json={"amount": "500"}).status_code == 403
    own = admin.post("/v1/balance/top-ups", json={"tenant": "topper-admin", "amount": "500"})
    assert own.status_code == 403, own.text
    # When the platform key tops the tenant up, then its balance grows
    response = platform.post(
        "/v1/balance/top-ups", json={"tenant": "topper-admin", "amount": "500.5", "memo": "invoice 42"}
    )
    assert response.status_code == 201, response.text
    assert admin.get("/v1/balance").json()["balance"] == "500.50"
    bad = platform.post("/v1/balance/top-ups", json={"tenant": "topper-admin", "amount": "-5"})
    assert bad.status_code == 422 and problem(bad)["field"] == "amount"


def test_a_sender_registered_through_the_api_cannot_send_until_approved(accounts: Stack) -> None:
    # Given a tenant that registers a new sender number through the API
    client = accounts.new_tenant("new-sender", scopes=("send", "read", "admin"))
    registered = client.post("/v1/senders", json={"number": "031-555-1234"})
    assert registered.status_code == 201, registered.text
    assert registered.json() == {"number": "0315551234", "state": "pending"}

    # When it sends from that number, then the job is refused: not yet approved
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": "031-555-1234",
            "body": "안내",
            "recipients": [{"phone": "010-1111-2222"}],
        },
    )
    assert response.status_code == 422
    error = problem(response)
    assert (error["code"], error["field"]) == ("sender_not_registered", "sender")
    assert "not yet approved" in error["detail"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("겨울 세일\n무료수신거부 080-123-4567", "advertising_label_missing"),
        ("(광고) 겨울 세일", "advertising_opt_out_missing"),
    ],
)
def test_advertising_without_its_label_or_opt_out_line_is_refused(
    accounts: Stack, body: str, code: str
) -> None:
    client = accounts.new_tenant(f"ad-{code}")
    move_clock_to(accounts, 12)
    response = sms_job(client, 1, body=body, advertisement=True)
    assert response.status_code == 422
    assert problem(response)["code"] == code


def test_advertising_is_refused_at_night_and_opted_out_numbers_are_left_out(accounts: Stack) -> None:
    # Given a tenant whose opt-out list holds one number
    client = accounts.new_tenant("night-ads")
    added = client.post("/v1/opt-outs", json={"phones": ["010-5000-0001", "not a phone"]}).json()
    assert added["added"] == 1
    assert [entry["index"] for entry in added["invalid"]] == [1]

    # When it submits advertising at 21:30 KST, then it is refused
    move_clock_to(accounts, 21, 30)
    night = sms_job(client, 3, body=AD, advertisement=True)
    assert night.status_code == 422
    assert problem(night)["code"] == "advertising_quiet_hours"

    # When it submits the same at 10:00, then it goes, except to the opted-out number
    move_clock_to(accounts, 10)
    day = sms_job(client, 3, body=AD, advertisement=True)
    assert day.status_code == 202, day.text
    job = wait_finished(accounts, client, day.json()["job_id"])
    assert job["counts"]["delivered"] == 2
    assert [f["reason_code"] for f in job["failures"]] == ["opted_out"]
    assert job["charges"]["charged"] == "18.00"


@pytest.mark.slow
def test_a_running_advertising_job_waits_from_nine_in_the_evening_until_eight_in_the_morning(
    accounts: Stack,
) -> None:
    # Given an advertising job of 3,000 recipients started at 20:59 KST (SMS limited to 100/s)
    client = accounts.new_tenant("overnight")
    move_clock_to(accounts, 20, 59)
    response = sms_job(client, 3000, body=AD, advertisement=True, start=20000)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 30
    while accounts.job(client, job_id)["counts"]["sent"] < 200 and time.monotonic() < deadline:
        time.sleep(0.2)

    # When 21:00 comes while it runs
    clock_of(accounts).advance(timedelta(minutes=1, seconds=5))
    time.sleep(3)  # slices under way finish (a slice is at most a second)
    paused_at = sum(accounts.submissions(job_id).values())
    time.sleep(4)

    # Then nothing more is sent during the night, and the job is not finished
    assert sum(accounts.submissions(job_id).values()) == paused_at < 3000
    assert accounts.job(client, job_id)["status"] == "sending"

    # When the morning comes, then the rest is sent, each recipient once
    move_clock_to(accounts, 8, 1)
    job = wait_finished(accounts, client, job_id, timeout=120)
    assert job["counts"]["delivered"] == 3000
    assert set(accounts.submissions(job_id).values()) == {1}
    assert len(accounts.submissions(job_id)) == 3000


def test_advertising_reserved_into_the_night_is_refused_and_by_day_accepted(accounts: Stack) -> None:
    # Given a tenant at noon KST
    client = accounts.new_tenant("reserved-ads")
    move_clock_to(accounts, 12)
    now = clock_of(accounts).now().astimezone(KST)

    # When it reserves advertising for 22:00 tonight, then it is refused, naming scheduled_at
    night = now.replace(hour=22, minute=0).isoformat()
    refused = sms_job(client, 1, body=AD, advertisement=True, scheduled_at=night)
    assert refused.status_code == 422
    assert (problem(refused)["code"], problem(refused)["field"]) == (
        "advertising_quiet_hours",
        "scheduled_at",
    )

    # And reserved for 09:00 tomorrow (submitted now, by day), it is accepted as a reservation
    morning = (now + timedelta(days=1)).replace(hour=9, minute=0).isoformat()
    accepted = sms_job(client, 1, body=AD, advertisement=True, scheduled_at=morning)
    assert accepted.status_code == 202, accepted.text
    assert client.get(f"/v1/jobs/{accepted.json()['job_id']}").json()["status"] == "scheduled"
