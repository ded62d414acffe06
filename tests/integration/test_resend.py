"""Resending a finished job's failures: a new job, linked to the original, with the same content,
filled by the resend_failed actor; idempotent by key; the same from the CLI; crash-safe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from engine.accounts.tenants import tenant_id_by_name
from engine.clock import KST
from engine.errors import ValidationError
from engine.intake.job_store import PartitionCache
from engine.intake.resend import create_resend, fill_resend
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.services import settings_env
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration


def rows(stack: Stack, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.settings.database_url) as conn:
        return conn.execute(sql, params).fetchall()


def failed_phones(stack: Stack, job_id: int) -> set[str]:
    """Phones of the job's recipients a carrier failed (not those refused at intake)."""
    return {
        r[0]
        for r in rows(
            stack,
            "SELECT phone FROM recipients WHERE job_id = %s AND status IN ('failed', 'expired')"
            " AND channel IS NOT NULL",
            job_id,
        )
    }


def phones(stack: Stack, job_id: int) -> set[str]:
    return {r[0] for r in rows(stack, "SELECT phone FROM recipients WHERE job_id = %s", job_id)}


def finished_job_with_failures(stack: Stack, client: httpx.Client, base: int) -> tuple[int, dict[str, Any]]:
    """An LMS job with personalised text where the carrier fails about a third (3015), plus one
    number refused at intake; run to its end."""
    stack.simulator.configure(failure_mix={"3015": 0.35}, seed=base % 97)
    try:
        recipients: list[dict[str, Any]] = [
            {"phone": f"010{base + i:08d}", "variables": {"name": f"고객{i}"}, "member_id": f"m{i}"}
            # Every other recipient carries the caller's reference too.
            | ({"reference": f"주문-{i}"} if i % 2 else {})
            for i in range(60)
        ]
        recipients.append({"phone": "010-12", "variables": {"name": "x"}})
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "lms",
                "sender": SENDER,
                "title": "재발송",
                "body": "#{name}님 안내입니다",
                "reference": f"campaign-{base}",
                "recipients": recipients,
            },
        )
        assert response.status_code == 202, response.text
        job_id = int(response.json()["job_id"])
        return job_id, wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_resend_makes_one_linked_job_for_the_failures_with_the_same_content(stack: Stack) -> None:
    # Given a finished job where the carrier failed some recipients and one number was invalid
    client = stack.new_tenant("resend-api")
    original, job = finished_job_with_failures(stack, client, 70_000_000)
    assert job["status"] == "partially_failed"
    carrier_failed = failed_phones(stack, original)
    assert carrier_failed and job["counts"]["failed"] == len(carrier_failed) + 1

    # When its failures are resent, twice with the same Idempotency-Key
    headers = {"Idempotency-Key": "resend-1"}
    first = client.post(f"/v1/jobs/{original}/resend", headers=headers)
    second = client.post(f"/v1/jobs/{original}/resend", headers=headers)

    # Then one new job answers both, linked to the original, with the same content, kind manual
    assert first.status_code == 202, first.text
    assert second.status_code == 200 and second.json()["job_id"] == first.json()["job_id"]
    resend_id = int(first.json()["job_id"])
    resent = wait_finished(stack, client, resend_id)
    assert resent["resent_from"] == original and resent["kind"] == "manual"
    assert resent["content"] == job["content"]
    assert resent["reference"] == job["reference"] == "campaign-70000000"
    # ... holding exactly the carrier's failures (not the invalid number), sent once each
    assert phones(stack, resend_id) == carrier_failed
    assert resent["counts"]["delivered"] == len(carrier_failed)
    seen = stack.submissions(resend_id)
    assert len(seen) == len(carrier_failed) and set(seen.values()) == {1}
    # ... each with its own member id, reference and variables
    copied = rows(
        stack,
        'SELECT n.member_id, n."values" FROM recipients n JOIN recipients o ON o.phone = n.phone'
        ' WHERE n.job_id = %s AND o.job_id = %s AND (n.member_id, n.reference, n."values")'
        ' IS DISTINCT FROM (o.member_id, o.reference, o."values")',
        resend_id,
        original,
    )
    assert copied == []
    assert rows(stack, "SELECT 1 FROM recipients WHERE job_id = %s AND reference IS NOT NULL", resend_id)
    assert len(rows(stack, "SELECT 1 FROM jobs WHERE resent_from = %s", original)) == 1


def test_resend_refuses_what_it_cannot_do(stack: Stack) -> None:
    client = stack.new_tenant("resend-refusals")
    other = stack.new_tenant("resend-refusals-other")
    original, _ = finished_job_with_failures(stack, client, 71_000_000)
    # A reason no recipient failed with: nothing to resend
    response = client.post(f"/v1/jobs/{original}/resend", json={"reasons": ["carrier_9999"]})
    assert response.status_code == 422
    assert problem(response)["code"] == "nothing_to_resend"
    assert problem(response)["field"] == "reasons"
    bad = client.post(f"/v1/jobs/{original}/resend", json={"reasons": "carrier_3015"})
    assert bad.status_code == 422 and problem(bad)["field"] == "reasons"
    # Another tenant's job: not found
    assert other.post(f"/v1/jobs/{original}/resend").status_code == 404
    # A job not finished yet: its failures are not all known
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reserved = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "x",
            "scheduled_at": at,
            "recipients": [{"phone": "01071999999"}],
        },
    ).json()["job_id"]
    running = client.post(f"/v1/jobs/{reserved}/resend")
    assert running.status_code == 409 and problem(running)["code"] == "job_not_finished"
    # A job with no failures (once cancelled, the reservation has none either)
    client.post(f"/v1/jobs/{reserved}/cancel")
    none = client.post(f"/v1/jobs/{reserved}/resend")
    assert none.status_code == 422 and problem(none)["code"] == "nothing_to_resend"


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_kakao_recipients_whose_fallback_failed_too_are_resent_by_kakao(stack: Stack) -> None:
    # Given a Kakao job with an SMS fallback, where Kakao fails about half and SMS about half
    client = stack.new_tenant("resend-kakao")
    stack.simulator.configure(
        kakao_failure_mix={"3019": 0.5}, failure_mix={"3015": 0.5}, kakao_result_delay_ms=100, seed=23
    )
    try:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "kakao",
                "sender": SENDER,
                "template_code": "ORDER_SHIPPED",
                "recipients": [
                    {
                        "phone": f"010{72_000_000 + i:08d}",
                        "variables": {"name": f"고객{i}", "invoice": f"I{i}"},
                    }
                    for i in range(80)
                ],
                "fallback": {"channel": "sms", "body": "#{name}님 상품 발송"},
            },
        )
        original = int(response.json()["job_id"])
        job = wait_finished(stack, client, original, timeout=90)
    finally:
        stack.simulator.configure(kakao_failure_mix={}, failure_mix={})
    # (the recipients whose fallback failed as well)
    both_failed = {
        r[0]
        for r in rows(
            stack,
            "SELECT k.phone FROM recipients k JOIN recipients f"
            " ON f.job_id = k.job_id AND f.fallback_of = k.seq"
            " WHERE k.job_id = %s AND k.status = 'fallback' AND f.status = 'failed'",
            original,
        )
    }
    assert both_failed and job["counts"]["failed"] == len(both_failed)

    # When its failures are resent
    response = client.post(f"/v1/jobs/{original}/resend")
    assert response.status_code == 202, response.text
    resent = wait_finished(stack, client, int(response.json()["job_id"]), timeout=90)

    # Then exactly those go again, by KakaoTalk, with the same template and fallback
    assert phones(stack, resent["id"]) == both_failed
    assert resent["counts"]["by_channel"]["kakao"] == len(both_failed)
    assert resent["content"] == job["content"]
    assert resent["counts"]["delivered"] == len(both_failed)


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_the_cli_resends_through_the_same_engine_function(stack: Stack) -> None:
    # Given a finished job with carrier failures
    client = stack.new_tenant("resend-cli")
    original, _ = finished_job_with_failures(stack, client, 73_000_000)
    # When an operator runs `balsong resend JOB --reason carrier_3015`
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "resend", str(original), "--reason", "carrier_3015"],
        env={**os.environ, **settings_env(stack.settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Then it names the new job, which sends the failures again
    resend_id = int(done.stdout.split()[1])
    resent = wait_finished(stack, client, resend_id)
    assert resent["resent_from"] == original
    assert phones(stack, resend_id) == failed_phones(stack, original)


@pytest.mark.slow  # ~18 s waiting for the outbox
def test_a_resend_job_never_filled_is_filled_by_the_outbox_and_only_once(stack: Stack) -> None:
    # Given a resend job stored, whose resend_failed message was lost (never published)
    client = stack.new_tenant("resend-outbox")
    original, _ = finished_job_with_failures(stack, client, 74_000_000)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        stored = create_resend(
            conn,
            tenant_id=tenant_id_by_name(conn, "resend-outbox"),
            source_job_id=original,
            reasons=None,
            now=datetime.now(UTC),
            idempotency_key=None,
            partitions=PartitionCache(),
            settings=stack.settings,
        )
    assert client.get(f"/v1/jobs/{stored.job_id}").json()["status"] == "preparing"
    # When the scheduler's outbox finds it
    resent = wait_finished(stack, client, stored.job_id, timeout=60)
    # Then it is filled and sent; filling it again (a redelivered message) copies nothing
    expected = failed_phones(stack, original)
    assert resent["counts"]["delivered"] == len(expected)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        assert fill_resend(conn, stored.job_id) is False
    assert len(rows(stack, "SELECT 1 FROM recipients WHERE job_id = %s", stored.job_id)) == len(expected)


def test_an_advertising_resend_keeps_to_the_quiet_hours(stack: Stack) -> None:
    # Given a finished advertising job with failures
    client = stack.new_tenant("resend-advert")
    original, _ = finished_job_with_failures(stack, client, 75_000_000)
    night = datetime(2026, 12, 8, 22, 30, tzinfo=KST)
    day = datetime(2026, 12, 8, 10, 0, tzinfo=KST)
    with psycopg.connect(stack.settings.database_url) as conn:
        conn.execute("UPDATE jobs SET advertisement = true WHERE id = %s", (original,))
        tenant_id = tenant_id_by_name(conn, "resend-advert")

        def resend_at(now: datetime) -> int:
            return create_resend(
                conn,
                tenant_id=tenant_id,
                source_job_id=original,
                reasons=None,
                now=now,
                idempotency_key=None,
                partitions=PartitionCache(),
                settings=stack.settings,
            ).job_id

        # When its failures are resent at 22:30 KST
        with pytest.raises(ValidationError) as refused:
            resend_at(night)
        # Then the resend is refused as any advertising job would be then; at 10:00 it is made
        assert refused.value.code == "advertising_quiet_hours"
        assert refused.value.field == "advertisement"
        assert resend_at(day) > original
        conn.rollback()
