"""The report deadline, on real processes and a shared clock the test moves.

Given a carrier that never reports on some of the recipients it accepted, their job waits with
them in flight; once their channel's report deadline has passed since their submission, the
scheduler asks the carrier about them once more, ends them ``unknown`` (reason ``no_report``),
and the job finishes and is settled, without refunding them (NHN charges on acceptance).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from redis import Redis

from carriers.simulator.behaviour import NO_REPORT, fraction
from engine.clock import SharedOffsetClock
from engine.db import upgrade
from engine.keys import Keys
from engine.lifecycle import counters
from tests.support.jobs import wait_finished
from tests.support.services import isolated_settings
from tests.support.stack import Stack, running_stack, submit_sms

pytestmark = pytest.mark.integration

#: The SMS report deadline the stack runs with: short, and passed by moving the shared clock.
DEADLINE_SECONDS = 3600.0
SEED = 17


@pytest.fixture(scope="module")
def deadline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides: dict[str, Any] = {
        "clock": "shared",
        "report_deadline_sms_seconds": DEADLINE_SECONDS,
        "report_deadline_poll_seconds": 1.0,
    }
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("deadline-logs")) as stack:
            yield stack


def test_recipients_never_reported_end_unknown_after_the_deadline_and_are_not_refunded(
    deadline_stack: Stack,
) -> None:
    stack = deadline_stack
    # Given a carrier that never reports on about a quarter of the recipients it accepts
    client = stack.new_tenant("silent-carrier")
    stack.simulator.configure(no_report_rate=0.25, seed=SEED)
    try:
        job_id = submit_sms(client, "결과 없음", [f"010-3500-{i:04d}" for i in range(200)])
        silent = {
            f"{job_id}-{seq}" for seq in range(200) if fraction(SEED, NO_REPORT, f"{job_id}-{seq}") < 0.25
        }
        assert 20 <= len(silent) <= 80
        # ... so that once the others are reported, the job waits with the silent ones in flight
        wait_until(lambda: stack.job(client, job_id)["counts"]["delivered"] == 200 - len(silent))
        time.sleep(3)  # a few deadline passes: none is past its deadline yet
        job = stack.job(client, job_id)
        assert job["status"] == "sending" and job["counts"]["in_flight"] == len(silent), job
        # When the SMS report deadline passes since their submission
        clock = SharedOffsetClock(
            Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix).clock_offset
        )
        clock.advance(timedelta(seconds=DEADLINE_SECONDS + 600))
        job = wait_finished(stack, client, job_id, timeout=60)
    finally:
        stack.simulator.configure(no_report_rate=0.0)
    # Then the job is finished (unknown is no failure), the silent recipients are unknown with
    # reason no_report, and no one is in flight any more
    assert job["status"] == "completed", job
    counts = job["counts"]
    assert counts["unknown"] == len(silent) and counts["delivered"] == 200 - len(silent)
    assert counts["in_flight"] == 0 and counts["queued"] == 0 and counts["failed"] == 0
    assert counts["delivered"] + counts["unknown"] == counts["total"] == 200
    assert job["failures"] == []
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT seq, status, reason_code, reason_text, completed_at IS NOT NULL FROM recipients"
            " WHERE job_id = %s AND status = 'unknown'",
            (job_id,),
        ).fetchall()
        created_at = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        recount = counters.recount(conn, job_id, created_at)
    assert {f"{job_id}-{seq}" for seq, *_ in rows} == silent
    assert {(code, done) for _, _, code, _, done in rows} == {("no_report", True)}
    assert "1 hours" in rows[0][3]
    # and the live counters equal a recount from the rows
    live = counters.read(Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix), job_id)
    assert live == recount
    # and settlement charged them (the carrier did) and refunded nothing
    charges = job["charges"]
    assert charges["settled"] is True
    assert Decimal(charges["refunded"]) == 0 and Decimal(charges["charged"]) == 200 * 9
    # and a recipient listing by status shows them with their reason
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "unknown", "limit": 5}).json()
    assert len(page["recipients"]) == 5
    assert {r["status"] for r in page["recipients"]} == {"unknown"}


def wait_until(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError("condition not met in time")
