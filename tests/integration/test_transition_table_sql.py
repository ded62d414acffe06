"""The flusher applies delivery reports in SQL, many rows at a time; what that SQL does to a row
is the transition table's word (`engine.lifecycle.transitions.decide`), for every status a row
can be in, every report, with and without a fallback, before and after the retry deadline; and so
is what the report deadline's SQL does to a row left without a report."""

from __future__ import annotations

import itertools
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
from engine.lifecycle.report_deadline import NO_REPORT_REASON, Overdue, mark_unknown
from engine.lifecycle.results import RecipientOutcome, ResultRecorder
from engine.lifecycle.statuses import RecipientStatus as Status
from engine.lifecycle.transitions import Event, Standing, decide
from engine.redis_client import make_redis
from tests.support.results import seed_job

pytestmark = pytest.mark.integration

#: A report of each kind, as the carrier's result says it.
REPORTS = {
    Event.DELIVERED: (Outcome.DELIVERED, "1000"),
    Event.FAILED: (Outcome.FAILED, "3018"),
    Event.RETRY: (Outcome.RETRY, "3005"),
}


def test_the_flusher_moves_a_reported_row_exactly_as_the_transition_table_says(settings: Settings) -> None:
    # Given one KakaoTalk recipient, and a flusher and recorder of their own (no other consumer)
    keys = Keys(f"transitions-{uuid.uuid4().hex[:8]}")
    redis = make_redis(settings.redis_url)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, create_tenant(conn, f"transitions-{uuid.uuid4().hex[:6]}"))
        created = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        # With a callback URL: each change must write its event, and only a change.
        conn.execute("UPDATE jobs SET callback_url = 'https://example.com/hooks' WHERE id = %s", (job_id,))
    recorder = ResultRecorder(redis, keys)
    checked = 0
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        for status, event, falls_back, late in itertools.product(
            Status, REPORTS, (False, True), (False, True)
        ):
            if status is Status.FALLBACK and not falls_back:
                continue  # only a job with a fallback has rows in that status
            submitted = status in (Status.SUBMITTED, Status.DELIVERED) or (
                status in (Status.FAILED, Status.EXPIRED, Status.FALLBACK) and late
            )
            first_attempt = datetime.now(UTC) - timedelta(days=3 if late else 0, minutes=1)
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE jobs SET fallback_channel = %s, fallback_body = %s WHERE id = %s",
                    ("sms" if falls_back else None, "대체 문자" if falls_back else None, job_id),
                )
                conn.execute(
                    "DELETE FROM recipients WHERE job_id = %s AND job_created_at = %s AND fallback_of = 0",
                    (job_id, created),
                )
                conn.execute(
                    """
                    UPDATE recipients SET status = %s, channel = 'kakao', attempt = 0,
                        submitted_at = CASE WHEN %s THEN now() END, first_attempt_at = %s,
                        completed_at = NULL
                    WHERE job_id = %s AND job_created_at = %s AND seq = 0
                    """,
                    (status, submitted, first_attempt, job_id, created),
                )
            # When a report of it comes and the flusher applies it
            outcome, code = REPORTS[event]
            report = SubmitOutcome(f"{job_id}-0", outcome, code, "report", "r:1", datetime.now(UTC))
            recorder.record_reports([RecipientOutcome(job_id, 0, report)], carrier="nhn_alimtalk")
            Flusher(pool, redis, keys, "test", settings=settings, clock=SystemClock()).flush_once()
            with psycopg.connect(settings.database_url) as conn:
                row = conn.execute(
                    "SELECT status FROM recipients WHERE job_id = %s AND job_created_at = %s AND seq = 0",
                    (job_id, created),
                ).fetchone()
                events = conn.execute(
                    "DELETE FROM callback_events WHERE job_id = %s AND kind = 'recipient' RETURNING statuses",
                    (job_id,),
                ).fetchall()
            # Then the row is where the table takes it; a report of a row not in flight changes
            # nothing (its submission's outcome, a duplicate, a late one)
            before = Standing(status, submitted)
            step = decide(before, event, falls_back=falls_back, past_deadline=late)
            expected = step.after.status if (step is not None and status is Status.SUBMITTED) else status
            assert row == (expected,), (status, event, falls_back, late)
            # And the change, and only a change, wrote its event (a recipient sent back to the
            # queue makes none: its next status will)
            changed = expected != status and expected is not Status.QUEUED
            assert events == ([([str(expected)],)] if changed else []), (status, event, falls_back, late)
            checked += 1
    redis.close()
    assert checked >= 70


def test_the_report_deadline_moves_a_row_exactly_as_the_transition_table_says(settings: Settings) -> None:
    # Given one KakaoTalk recipient, in each status a row can be in, submitted or not
    keys = Keys(f"deadline-{uuid.uuid4().hex[:8]}")
    redis = make_redis(settings.redis_url)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, create_tenant(conn, f"deadline-{uuid.uuid4().hex[:6]}"))
        created = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE jobs SET callback_url = 'https://example.com/hooks' WHERE id = %s", (job_id,))
    submitted_at = datetime.now(UTC) - timedelta(days=4)
    checked = 0
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        for status, submitted in itertools.product(Status, (False, True)):
            if submitted and status in (Status.QUEUED, Status.CANCELLED):
                continue  # a row the carrier never took has no submission
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute(
                    """
                    UPDATE recipients SET status = %s, channel = 'kakao', attempt = 0,
                        submitted_at = CASE WHEN %s THEN %s::timestamptz END, completed_at = NULL,
                        reason_code = NULL, reason_text = NULL
                    WHERE job_id = %s AND job_created_at = %s AND seq = 0
                    """,
                    (status, submitted, submitted_at, job_id, created),
                )
            redis.delete(keys.job_counts(job_id))
            # When the report deadline passes for it (the carrier, asked again, had no result)
            overdue = Overdue(job_id, created, 0, "kakao", 0, submitted_at)
            changed = mark_unknown(pool, redis, keys, settings, [overdue], datetime.now(UTC))
            with psycopg.connect(settings.database_url) as conn:
                row = conn.execute(
                    "SELECT status, reason_code, submitted_at IS NOT NULL FROM recipients"
                    " WHERE job_id = %s AND job_created_at = %s AND seq = 0",
                    (job_id, created),
                ).fetchone()
                events = conn.execute(
                    "DELETE FROM callback_events WHERE job_id = %s AND kind = 'recipient' RETURNING statuses",
                    (job_id,),
                ).fetchall()
            # Then the row is where the table takes it, and the counters moved by its transition
            # (and its event was written, if it moved)
            step = decide(Standing(status, submitted), Event.NO_REPORT)
            counts = {k.decode(): int(v) for k, v in redis.hgetall(keys.job_counts(job_id)).items()}  # type: ignore[union-attr]
            if step is None:
                assert row == (status, None, submitted), (status, submitted)
                assert changed == {} and counts == {} and events == []
            else:
                assert row == (step.after.status, NO_REPORT_REASON, step.after.submitted)
                assert changed == {"kakao": 1} and counts == dict(step.counters)
                assert events == [([str(step.after.status)],)]
            checked += 1
    redis.close()
    assert checked >= 12
