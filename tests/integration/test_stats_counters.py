"""Send statistics' counters in PostgreSQL: a finished job is added once, each message in its KST
hour and channel; reading answers from the counters; retention keeps them past the results.

(End to end through the running processes: tests/integration/test_stats.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.intake.intake import prepare_job
from engine.intake.reservations import start_due_reservations
from engine.lifecycle.completion import finish_if_complete
from engine.lifecycle.job_stats import add_finished_jobs, add_uncounted_jobs
from engine.reporting.retention import purge_old_stats
from engine.reporting.stats import StatsQuery, read_stats, reason_text
from tests.support.results import SUBMITTED, seed_job
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration

#: 2026-11-23 11:30 KST: the seeded job's creation, an hour before its messages went (12:00 KST).
CREATED = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
DAY = date(2026, 11, 23)


def _hangul(text: str) -> bool:
    return any("\uac00" <= character <= "\ud7a3" for character in text)


def seed_handed_over(conn: psycopg.Connection, tenant_id: int, created: datetime = CREATED) -> int:
    """The seeded finished Kakao job (tests/support/results.py), its messages first handed to
    the carrier at SUBMITTED (12:00 KST); refusals at intake never were."""
    job_id = seed_job(conn, tenant_id, created)
    conn.execute(
        "UPDATE recipients SET first_attempt_at = %s WHERE job_id = %s AND channel IS NOT NULL",
        (SUBMITTED if created == CREATED else created, job_id),
    )
    return job_id


def test_a_finished_job_is_added_once_in_the_hours_and_channels_of_its_messages(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a finished job: Kakao 1 delivered, 1 failed, 2 handed to SMS (delivered) and LMS
        # (failed); 2 refused at intake
        tenant_id = create_tenant(conn, "stats-once")
        job_id = seed_handed_over(conn, tenant_id)

        # When it is added, then added again, and its finish is attempted again
        with conn.transaction():
            first = add_finished_jobs(conn, [job_id])
        with conn.transaction():
            again = add_finished_jobs(conn, [job_id, job_id])
        finish_if_complete(conn, job_id)

        # Then it was added once
        assert (first, again) == ([job_id], [])
        hourly = read_stats(conn, tenant_id, StatsQuery(DAY, DAY, "hour"))
        by_day = read_stats(conn, tenant_id, StatsQuery(DAY - timedelta(days=1), DAY, "day"))
        kakao = read_stats(conn, tenant_id, StatsQuery(DAY, DAY, "hour", "kakao"))

    # And the messages are in 12:00 KST, refusals at intake in the job's creation hour (11:00)
    buckets = {start.hour: counts for start, counts in hourly.buckets if start.day == 23}
    assert len(hourly.buckets) == 24
    at_noon, at_eleven = buckets[12], buckets[11]
    assert (at_noon.sent, at_noon.delivered, at_noon.failed, at_noon.fallbacks, at_noon.rejected) == (
        6,
        2,
        2,
        2,
        0,
    )
    assert (at_eleven.sent, at_eleven.rejected) == (0, 2)
    assert all(c.sent == 0 and c.rejected == 0 for h, c in buckets.items() if h not in (11, 12))
    # And by channel: the fallbacks are Kakao's, their messages SMS's and LMS's
    assert {ch: (c.sent, c.delivered, c.failed, c.fallbacks) for ch, c in hourly.by_channel.items()} == {
        "sms": (1, 1, 0, 0),
        "lms": (1, 0, 1, 0),
        "kakao": (4, 1, 1, 2),
        "intake": (0, 0, 0, 0),
    }
    assert hourly.by_channel["intake"].rejected == 2
    assert hourly.totals.success_rate == round(2 / 6, 4)
    # And by day, the whole job is on 23 November (KST), nothing on the 22nd
    assert [(start.date(), counts.sent, counts.rejected) for start, counts in by_day.buckets] == [
        (date(2026, 11, 22), 0, 0),
        (DAY, 6, 2),
    ]
    # And a channel filter keeps that channel only (refusals at intake have none)
    assert (kakao.totals.sent, kakao.totals.rejected) == (4, 0)
    # And failures by reason: carrier failures (not the fallbacks) and refusals, Korean where known
    assert [(r.channel, r.code, r.failures, r.text) for r in hourly.reasons] == [
        ("lms", "carrier_23", 1, "수신 거부"),
        ("kakao", "carrier_3019", 1, "메시지를 보낼 수 없음: 카카오톡 사용자 아님"),
        ("intake", "invalid_character", 1, reason_text("invalid_character", None)),
        ("intake", "missing_variable", 1, reason_text("missing_variable", None)),
    ]
    assert all(_hangul(r.text) for r in hourly.reasons)
    assert [r.share for r in hourly.reasons] == [0.25] * 4
    assert [r.code for r in kakao.reasons] == ["carrier_3019"]


def test_days_are_korean_days_and_tenants_are_apart(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a job created and sent at 00:30 KST on 23 November (still the 22nd in UTC), and
        # another tenant's job on the same day
        tenant_id = create_tenant(conn, "stats-kst-day")
        other_id = create_tenant(conn, "stats-kst-day-other")
        just_after_midnight = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
        job_id = seed_handed_over(conn, tenant_id, just_after_midnight)
        other_job = seed_handed_over(conn, other_id, just_after_midnight)
        with conn.transaction():
            add_finished_jobs(conn, [job_id, other_job])

        # When the tenant reads the 22nd and 23rd by day
        by_day = read_stats(conn, tenant_id, StatsQuery(date(2026, 11, 22), DAY, "day"))

    # Then everything is on the 23rd (KST), once: the other tenant's job is not in it
    assert [counts.sent for _, counts in by_day.buckets] == [0, 6]
    assert by_day.totals.rejected == 2


def test_retention_keeps_statistics_past_the_results_and_drops_them_later(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given the counters of a job sent on 23 November 2026 (KST)
        tenant_id = create_tenant(conn, "stats-retention")
        job_id = seed_handed_over(conn, tenant_id)
        with conn.transaction():
            add_finished_jobs(conn, [job_id])
        query = StatsQuery(DAY, DAY, "day")

        # When retention runs 400 days later (the results are gone by then), with 1096 days for
        # statistics, then they are kept
        purge_old_stats(conn, datetime(2027, 12, 28, tzinfo=UTC), 1096)
        assert read_stats(conn, tenant_id, query).totals.sent == 6

        # When it runs once the day is wholly older than the statistics' retention
        deleted = purge_old_stats(conn, datetime(2029, 11, 24, 15, 1, tzinfo=UTC), 1096)

        # Then the day's counters and reasons are gone
        assert deleted >= 5
        gone = read_stats(conn, tenant_id, query)
    assert gone.totals.sent == 0 and gone.totals.rejected == 0 and gone.reasons == []


def test_jobs_finished_before_the_statistics_are_backfilled_once(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a job that finished before the counters existed (never offered to them)
        tenant_id = create_tenant(conn, "stats-backfill")
        seed_handed_over(conn, tenant_id)

        # When the backfill runs twice
        first = add_uncounted_jobs(conn, page=1)
        second = add_uncounted_jobs(conn)

        # Then the job is counted, once
        assert first >= 1 and second == 0
        found = read_stats(conn, tenant_id, StatsQuery(DAY, DAY, "day"))
    assert (found.totals.sent, found.totals.rejected) == (6, 2)


def test_a_missed_reservation_is_counted_cancelled_in_its_creation_hour(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a reservation for 09:00 KST on 23 November, stored at 11:30 KST the day before, with
        # two numbers and one refused at intake. The dates are years ahead: the session's live
        # scheduler runs the same pump on the real clock and would take a reservation already past.
        tenant_id = create_tenant(conn, "stats-missed")
        top_up(conn, tenant_id, Decimal(1000))
        add_sender(conn, tenant_id, "0212345678")
        stored_at = datetime(2036, 11, 22, 2, 30, tzinfo=UTC)
        request = {
            "channel": "sms",
            "sender": "02-1234-5678",
            "body": "예약",
            "scheduled_at": "2036-11-23T09:00:00+09:00",
            "recipients": [{"phone": "010-8800-0001"}, {"phone": "010-8800-0002"}, {"phone": "010-12"}],
        }
        stored = store_prepared(
            conn,
            Settings.from_env(),
            tenant_id,
            prepare_job(request, max_recipients=10, now=stored_at),
            now=stored_at,
        )

        # When the reservation pump finds it an hour past its time (the system was down): missed
        pumped = start_due_reservations(conn, datetime(2036, 11, 23, 1, 0, tzinfo=UTC), grace_seconds=600)
        assert stored.job_id in pumped.missed

        # Then its recipients are counted once, in the hour it was created (22 Nov, 11:00 KST)
        found = read_stats(conn, tenant_id, StatsQuery(date(2036, 11, 22), date(2036, 11, 23), "hour"))
    counted = [
        (start, c.cancelled, c.rejected, c.sent) for start, c in found.buckets if c.cancelled or c.rejected
    ]
    assert counted == [(datetime(2036, 11, 22, 11), 2, 1, 0)]
