"""GET /v1/stats end to end: jobs sent through the real API, worker, scheduler and simulator are
counted in the statistics once, in the KST hour and day and on the channel of each message, with
their failure reasons; tenants see only their own; bad parameters are 422 naming the field."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import psycopg
import pytest

from engine.clock import KST
from engine.lifecycle.completion import finish_if_complete
from engine.lifecycle.job_stats import add_finished_jobs
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def kst_days() -> dict[str, str]:
    """Yesterday and today in KST: a range that holds a job sent just now even across midnight."""
    today = datetime.now(KST).date()
    return {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}


def stats(client: httpx.Client, **params: str) -> dict[str, Any]:
    response = client.get("/v1/stats", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def sent_hours(stack: Stack, job_ids: list[int]) -> dict[str, int]:
    """Messages of the jobs per KST hour they were first handed over (refusals at intake at
    their job's creation), read from the recipient rows: what the hourly buckets must show."""
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            """
            SELECT to_char(coalesce(first_attempt_at, job_created_at) AT TIME ZONE INTERVAL '+09:00',
                           'YYYY-MM-DD"T"HH24:00:00+09:00'),
                   count(*)
            FROM recipients WHERE job_id = ANY(%s) GROUP BY 1
            """,
            (job_ids,),
        ).fetchall()
    return {hour: int(count) for hour, count in rows}


def test_sent_jobs_are_counted_once_by_hour_day_and_channel_with_their_reasons(stack: Stack) -> None:
    # Given an SMS job of 20 numbers and one too short, and an LMS job of 6, against a carrier that
    # fails about 40 % with 3015 (no route)
    client = stack.new_tenant(unique("stats-shop"))
    stack.simulator.configure(failure_mix={"3015": 0.4}, seed=11)
    try:
        sms_job = submit_sms(client, "통계 안내", [f"010-7100-{i:04d}" for i in range(20)] + ["010-12"])
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "lms",
                "sender": SENDER,
                "title": "통계 안내",
                "body": "장문 안내 " * 30,
                "recipients": [{"phone": f"010-7200-{i:04d}"} for i in range(6)],
            },
        )
        assert response.status_code == 202, response.text
        lms_job = int(response.json()["job_id"])
        # When both run to the end
        sms = wait_finished(stack, client, sms_job)
        lms = wait_finished(stack, client, lms_job)
    finally:
        stack.simulator.configure(failure_mix={})
    days = kst_days()
    by_day = stats(client, **days, granularity="day")

    # Then the day's counts are the jobs' own: refusals at intake apart from messages sent
    rejected = sms["counts"]["by_channel"]["invalid"]
    assert rejected == 1
    failed = sms["counts"]["failed"] + sms["counts"]["expired"] - rejected
    failed += lms["counts"]["failed"] + lms["counts"]["expired"]
    delivered = sms["counts"]["delivered"] + lms["counts"]["delivered"]
    assert failed > 0 and delivered > 0
    totals = by_day["totals"]
    assert (totals["sent"], totals["delivered"], totals["failed"], totals["rejected"]) == (
        26,
        delivered,
        failed,
        1,
    )
    assert totals["success_rate"] == round(delivered / 26, 4)
    # And what they were charged is what settlement kept of their reservations
    assert all(job["charges"]["settled"] for job in (sms, lms))
    assert Decimal(totals["charged"]) == Decimal(sms["charges"]["net"]) + Decimal(lms["charges"]["net"])
    assert sum(b["sent"] for b in by_day["buckets"]) == 26 and len(by_day["buckets"]) == 2
    # And per channel: the SMS job's messages under sms, the LMS job's under lms
    assert by_day["by_channel"]["sms"]["sent"] == 20 and by_day["by_channel"]["lms"]["sent"] == 6
    assert by_day["by_channel"]["intake"]["rejected"] == 1
    only_lms = stats(client, **days, channel="lms")
    assert only_lms["totals"]["sent"] == 6 and only_lms["totals"]["rejected"] == 0
    assert only_lms["totals"]["delivered"] == lms["counts"]["delivered"]

    # And by hour, each message is in the KST hour it was handed over, refusals at creation
    by_hour = stats(client, **days, granularity="hour")
    assert len(by_hour["buckets"]) == 48
    counted = {b["start"]: b["sent"] + b["rejected"] for b in by_hour["buckets"] if b["sent"] + b["rejected"]}
    assert counted == sent_hours(stack, [sms_job, lms_job])
    assert by_hour["totals"] == totals

    # And the failures by reason are the carrier's 3015s and the short number, in Korean
    refused_3015 = sum(
        len(client.get(f"/v1/jobs/{job}/recipients", params={"reason": "carrier_3015"}).json()["recipients"])
        for job in (sms_job, lms_job)
    )
    reasons = by_day["reasons"]
    failed_on = {
        channel
        for channel, job in (("sms", sms), ("lms", lms))
        if job["counts"]["failed"] - job["counts"]["by_channel"]["invalid"] > 0
    }
    assert {(r["channel"], r["code"]) for r in reasons} == {
        ("intake", "too_short"),
        *((channel, "carrier_3015") for channel in failed_on),
    }
    assert sum(r["failures"] for r in reasons if r["code"] == "carrier_3015") == refused_3015 == failed
    assert all(r["text"] == "전송 경로 없음" for r in reasons if r["code"] == "carrier_3015")
    short = next(r for r in reasons if r["code"] == "too_short")
    assert short == {
        "channel": "intake",
        "code": "too_short",
        "text": "전화번호 자릿수 부족",
        "failures": 1,
        "share": round(1 / (failed + 1), 4),
    }

    # And the answers have the shape the OpenAPI document publishes
    spec = httpx.get(f"{stack.settings.api_url}/openapi.json").json()
    schema = spec["paths"]["/v1/stats"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    for answer in (by_day, by_hour, only_lms):
        jsonschema.validate(answer, schema)

    # When the jobs' finish is attempted again and they are offered to the counters again
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        for job in (sms_job, lms_job):
            assert finish_if_complete(conn, job) is False
        with conn.transaction():
            assert add_finished_jobs(conn, [sms_job, lms_job]) == []

    # Then nothing is counted twice
    assert stats(client, **days, granularity="day") == by_day
    assert stats(client, **days, granularity="hour") == by_hour


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_kakao_fallbacks_count_on_kakao_and_their_messages_on_sms_and_lms(stack: Stack) -> None:
    # Given a Kakao job of 30 whose failures (about 30 %, not KakaoTalk users) fall back to SMS/LMS
    client = stack.new_tenant(unique("stats-kakao"))
    stack.simulator.configure(kakao_failure_mix={"3019": 0.3}, kakao_result_delay_ms=100, seed=5)
    try:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "kakao",
                "sender": SENDER,
                "template_code": "ORDER_SHIPPED",
                "recipients": [
                    {"phone": f"010{73_000_000 + i:08d}", "variables": {"name": f"고객{i}", "invoice": "1"}}
                    for i in range(30)
                ],
                "fallback": {"channel": "auto", "title": "배송 안내", "body": "#{name}님, 발송되었습니다."},
            },
        )
        assert response.status_code == 202, response.text
        job = wait_finished(stack, client, int(response.json()["job_id"]), timeout=90)
    finally:
        stack.simulator.configure(kakao_failure_mix={})
    fallbacks = job["counts"]["fallbacks"]
    assert fallbacks > 0

    # When the statistics are read
    found = stats(client, **kst_days())

    # Then Kakao sent 30, of which the fallbacks; their SMS/LMS messages count on their channels
    kakao = found["by_channel"]["kakao"]
    assert (kakao["sent"], kakao["fallbacks"], kakao["delivered"]) == (30, fallbacks, 30 - fallbacks)
    fallback_messages = sum(found["by_channel"].get(ch, {"sent": 0})["sent"] for ch in ("sms", "lms"))
    assert fallback_messages == fallbacks
    assert found["totals"]["delivered"] == job["counts"]["delivered"] == 30
    assert found["totals"]["sent"] == 30 + fallbacks
    # And a fallback is no failure: no reason is listed
    assert found["reasons"] == [] and found["totals"]["failed"] == 0
    assert Decimal(found["totals"]["charged"]) == Decimal(job["charges"]["net"])


def test_a_reservation_cancelled_before_its_time_counts_as_cancelled_and_refused(stack: Stack) -> None:
    # Given a reservation for an hour from now with three numbers and one refused at intake
    client = stack.new_tenant(unique("stats-cancel"))
    at = (datetime.now(KST) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    job_id = submit_sms(
        client, "예약 안내", ["010-7400-0001", "010-7400-0002", "010-7400-0003", "010-12"], scheduled_at=at
    )
    created = client.get(f"/v1/jobs/{job_id}").json()["created_at"]

    # When it is cancelled (it ends at once: nothing was sent)
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text

    # Then its recipients count in the hour it was created: 3 cancelled, 1 refused, none sent
    hourly = stats(client, **kst_days(), granularity="hour")
    hour = datetime.fromisoformat(created).astimezone(KST).replace(minute=0, second=0, microsecond=0)
    counted = [b for b in hourly["buckets"] if b["cancelled"] or b["rejected"]]
    assert [(b["start"], b["cancelled"], b["rejected"], b["sent"]) for b in counted] == [
        (hour.isoformat(), 3, 1, 0)
    ]
    assert hourly["totals"]["success_rate"] is None


def test_tenants_see_only_their_own_statistics(stack: Stack) -> None:
    # Given a tenant with a finished job, and another tenant with none
    owner = stack.new_tenant(unique("stats-owner"))
    wait_finished(stack, owner, submit_sms(owner, "내 발송", ["010-7500-0001", "010-7500-0002"]))
    stranger = stack.new_tenant(unique("stats-stranger"))

    # When each reads the same days
    mine, theirs = stats(owner, **kst_days()), stats(stranger, **kst_days())

    # Then the owner sees its two messages, the other tenant nothing
    assert mine["totals"]["sent"] == 2
    nothing = theirs["totals"]
    assert (nothing["sent"], nothing["rejected"], nothing["charged"]) == (0, 0, "0.00")
    assert theirs["by_channel"] == {} and theirs["reasons"] == []
    assert all(b["sent"] == 0 for b in theirs["buckets"])


def test_bad_parameters_are_a_422_naming_the_field_and_scopes_hold(stack: Stack) -> None:
    client = stack.new_tenant(unique("stats-params"))
    cases = [
        ({"granularity": "week"}, "granularity"),
        ({"channel": "mms"}, "channel"),
        ({"channel": "intake"}, "channel"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "2026/12/07"}, "to"),
        ({"from": "1999-12-31"}, "from"),
        ({"from": "2026-12-07", "to": "2026-12-06"}, "to"),
        ({"from": "2025-01-01", "to": "2026-02-05", "granularity": "day"}, "to"),
        ({"from": "2026-11-01", "to": "2026-12-02", "granularity": "hour"}, "to"),
    ]
    for params, field in cases:
        # When the statistics are asked for with a bad parameter
        response = client.get("/v1/stats", params=params)
        # Then 422 naming it
        assert response.status_code == 422, (params, response.text)
        assert problem(response)["field"] == field, params
    # And the longest ranges allowed are answered
    assert len(stats(client, **{"from": "2025-01-01", "to": "2026-02-04"})["buckets"]) == 400
    hours = stats(client, **{"from": "2026-11-01", "to": "2026-12-01"}, granularity="hour")
    assert len(hours["buckets"]) == 744

    # And a key without the read scope gets 403, no key 401
    sender_only = stack.new_tenant(unique("stats-send-only"), scopes=("send",))
    assert problem(sender_only.get("/v1/stats"))["status"] == 403
    assert httpx.get(f"{stack.settings.api_url}/v1/stats").status_code == 401
