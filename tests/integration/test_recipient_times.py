"""A recipient's ``completed_at`` is never earlier than its ``submitted_at``
(`engine.lifecycle.recipient_times`): the carrier reports its result by its own clock, which may be
behind ours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from carriers.base import Outcome, SubmitOutcome
from engine.accounts.tenants import create_tenant
from engine.clock import SystemClock
from engine.config import Settings
from engine.keys import Keys
from engine.lifecycle.flusher import Flusher
from engine.lifecycle.report_deadline import Overdue, mark_unknown
from engine.lifecycle.results import RecipientOutcome, ResultRecorder
from engine.redis_client import make_redis
from tests.support.results import seed_job

pytestmark = pytest.mark.integration

#: How far the carrier's clock is behind ours in these tests (as seen: 2 ms; here more).
SKEW = timedelta(milliseconds=2200)


def _in_flight(settings: Settings, name: str) -> tuple[int, datetime, datetime]:
    """A job whose recipient 0 is an SMS in flight, submitted now by our clock: (job, created, submitted)."""
    submitted = datetime.now(UTC)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, create_tenant(conn, f"{name}-{uuid.uuid4().hex[:6]}"))
        created = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        conn.execute(
            """
            UPDATE recipients SET status = 'submitted', channel = 'sms', attempt = 0, submitted_at = %s,
                first_attempt_at = %s, completed_at = NULL, reason_code = NULL, reason_text = NULL
            WHERE job_id = %s AND job_created_at = %s AND seq = 0
            """,
            (submitted, submitted, job_id, created),
        )
    return job_id, created, submitted


def _times(settings: Settings, job_id: int, created: datetime) -> tuple[str, datetime, datetime]:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT status, submitted_at, completed_at FROM recipients"
            " WHERE job_id = %s AND job_created_at = %s AND seq = 0",
            (job_id, created),
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


@pytest.mark.parametrize("outcome", [Outcome.DELIVERED, Outcome.FAILED])
def test_a_report_dated_before_the_submission_completes_at_the_submission(
    settings: Settings, outcome: Outcome
) -> None:
    # Given an SMS recipient submitted now, and a report whose result time (the carrier's clock)
    # is before that
    keys = Keys(f"times-{uuid.uuid4().hex[:8]}")
    redis = make_redis(settings.redis_url)
    job_id, created, submitted = _in_flight(settings, "times")
    report = SubmitOutcome(
        f"{job_id}-0",
        outcome,
        "1000" if outcome is Outcome.DELIVERED else "3018",
        "report",
        "r:1",
        submitted - SKEW,
    )
    ResultRecorder(redis, keys).record_reports([RecipientOutcome(job_id, 0, report)], carrier="nhn_sms")

    # When the flusher applies it
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        Flusher(pool, redis, keys, "test", settings=settings, clock=SystemClock()).flush_once()
    redis.close()

    # Then the recipient is final, submitted when we submitted it, and completed not before that
    status, submitted_at, completed_at = _times(settings, job_id, created)
    assert status == outcome.value
    assert submitted_at == submitted
    assert completed_at == submitted


def test_a_report_dated_after_the_submission_keeps_its_own_time(settings: Settings) -> None:
    # Given an SMS recipient submitted now, and a report of its delivery 3 s later
    keys = Keys(f"times-{uuid.uuid4().hex[:8]}")
    redis = make_redis(settings.redis_url)
    job_id, created, submitted = _in_flight(settings, "times-after")
    delivered_at = submitted + timedelta(seconds=3)
    report = SubmitOutcome(f"{job_id}-0", Outcome.DELIVERED, "1000", "report", "r:1", delivered_at)
    ResultRecorder(redis, keys).record_reports([RecipientOutcome(job_id, 0, report)], carrier="nhn_sms")

    # When the flusher applies it
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        Flusher(pool, redis, keys, "test", settings=settings, clock=SystemClock()).flush_once()
    redis.close()

    # Then its completion is the carrier's result time
    assert _times(settings, job_id, created) == ("delivered", submitted, delivered_at)


def test_the_report_deadline_never_completes_a_recipient_before_its_submission(settings: Settings) -> None:
    # Given an SMS recipient submitted now, and a report deadline pass whose clock reads earlier
    # (another process's clock, a moment behind)
    keys = Keys(f"times-{uuid.uuid4().hex[:8]}")
    redis = make_redis(settings.redis_url)
    job_id, created, submitted = _in_flight(settings, "times-deadline")

    # When it ends the recipient unknown
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        changed = mark_unknown(
            pool, redis, keys, settings, [Overdue(job_id, created, 0, "sms", 0, submitted)], submitted - SKEW
        )
    redis.close()

    # Then it completed at its submission, not before
    assert changed == {"sms": 1}
    assert _times(settings, job_id, created) == ("unknown", submitted, submitted)
