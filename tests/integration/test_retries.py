"""Retries for up to two days, on real processes and a shared clock the test moves.

Given a carrier that refuses some recipients for now ("try again"), or whole requests (5xx),
the engine retries them with back-off from a retry ledger, never sends anyone twice, and once
two days have passed since the first attempt, expires what is left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis

from engine.clock import SharedOffsetClock
from engine.db import upgrade
from engine.keys import Keys
from tests.support.jobs import wait_finished
from tests.support.services import isolated_settings
from tests.support.stack import Stack, running_stack, submit_sms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def retrying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "clock": "shared",
        "retry_base_seconds": 0.3,
        "retry_cap_seconds": 2.0,
        "carrier_timeout_seconds": 2.0,
        "reconcile_after_seconds": 4.0,
    }
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("retry-logs")) as stack:
            yield stack


def clock_of(stack: Stack) -> SharedOffsetClock:
    return SharedOffsetClock(
        Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix).clock_offset
    )


def ledger_size(stack: Stack) -> int:
    return int(Redis.from_url(stack.settings.redis_url).zcard(Keys(stack.settings.redis_prefix).retry_ledger))


@pytest.mark.slow  # ~20 s of real retry back-off
def test_recipients_refused_for_now_are_retried_until_accepted(retrying: Stack) -> None:
    # Given a carrier that tells about half the recipients, each time, to try again later
    client = retrying.new_tenant("flaky")
    retrying.simulator.configure(reject_mix={"-9999": 0.5}, seed=11)
    try:
        job_id = submit_sms(client, "재시도", [f"010-3000-{i:04d}" for i in range(400)])
        # When it runs to the end
        job = wait_finished(retrying, client, job_id, timeout=90)
    finally:
        retrying.simulator.configure(reject_mix={})
    # Then every recipient was delivered, each accepted exactly once, after retries
    assert job["counts"]["delivered"] == 400, job
    seen = retrying.submissions(job_id)
    assert len(seen) == 400 and set(seen.values()) == {1}
    assert retrying.simulator.summary()["rejected_recipients"] > 200


def test_a_carrier_down_with_5xx_is_retried_with_back_off(retrying: Stack) -> None:
    # Given a carrier answering 500 to every request for a while
    client = retrying.new_tenant("outage")
    retrying.simulator.configure(http_5xx_rate=1.0)
    job_id = submit_sms(client, "장애", [f"010-3100-{i:04d}" for i in range(300)])
    deadline = time.monotonic() + 20
    while ledger_size(retrying) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ledger_size(retrying) > 0, "the refused batch went to the retry ledger"
    # When the carrier comes back
    retrying.simulator.configure(http_5xx_rate=0.0)
    job = wait_finished(retrying, client, job_id, timeout=60)
    # Then nothing was lost or sent twice
    assert job["counts"]["delivered"] == 300
    assert set(retrying.submissions(job_id).values()) == {1}


def test_recipients_never_accepted_expire_two_days_after_the_first_attempt(retrying: Stack) -> None:
    # Given a carrier that never takes these recipients
    client = retrying.new_tenant("never")
    retrying.simulator.configure(reject_mix={"-9999": 1.0})
    try:
        job_id = submit_sms(client, "만료", [f"010-3200-{i:04d}" for i in range(50)])
        time.sleep(3)
        # ... retried for a while, not yet expired
        assert retrying.job(client, job_id)["status"] == "sending"
        # When two days pass
        clock_of(retrying).advance(timedelta(hours=49))
        job = wait_finished(retrying, client, job_id, timeout=60)
    finally:
        retrying.simulator.configure(reject_mix={})
    # Then every recipient is expired, and the job failed
    assert job["counts"]["expired"] == 50
    assert job["status"] == "failed"
    assert {f["reason_code"] for f in job["failures"]} == {"expired"}
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "expired", "limit": 5}).json()
    assert len(page["recipients"]) == 5 and "48 hours" in page["recipients"][0]["reason"]


@pytest.mark.slow  # ~26 s of real retry back-off and report polls
def test_a_phone_off_report_sends_the_recipient_again_under_a_new_reference(retrying: Stack) -> None:
    # Given a carrier that reports "device power off" (2003) for about a third of its messages
    client = retrying.new_tenant("phone-off")
    retrying.simulator.configure(failure_mix={"2003": 0.3}, result_delay_ms=100, seed=3)
    try:
        job_id = submit_sms(client, "전원", [f"010-3300-{i:04d}" for i in range(200)])
        # When it runs to the end
        job = wait_finished(retrying, client, job_id, timeout=90)
    finally:
        retrying.simulator.configure(failure_mix={}, result_delay_ms=0)
    # Then everyone is delivered; those reported "phone off" were sent again, each attempt once
    assert job["counts"]["delivered"] == 200, job
    seen = retrying.submissions(job_id)
    assert set(seen.values()) == {1}
    retried = {ref for ref in seen if ref.count("-") == 2}
    assert 30 <= len(retried) <= 110
    assert all(ref.rsplit("-", 1)[0] in seen for ref in retried if ref.endswith("-1"))


def test_a_phone_never_on_expires_after_two_days(retrying: Stack) -> None:
    client = retrying.new_tenant("phone-never")
    retrying.simulator.configure(failure_mix={"2003": 1.0}, result_delay_ms=100)
    try:
        job_id = submit_sms(client, "꺼짐", [f"010-3400-{i:04d}" for i in range(20)])
        time.sleep(4)
        assert retrying.job(client, job_id)["status"] == "sending"
        clock_of(retrying).advance(timedelta(hours=49))
        job = wait_finished(retrying, client, job_id, timeout=60)
    finally:
        retrying.simulator.configure(failure_mix={}, result_delay_ms=0)
    assert job["counts"]["expired"] == 20
    assert job["status"] == "failed"
