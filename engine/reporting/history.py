"""A tenant's send history: its jobs, newest first, with filters, counts and a cursor.

The page's counts come from Redis (one pipelined round trip for the whole page); a job whose
counters Redis lost is recounted from PostgreSQL and its counters put back, so the next page
view is cheap again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from psycopg import Connection
from redis import Redis
from redis.exceptions import RedisError

from engine import inputs
from engine.clock import KST
from engine.errors import ValidationError
from engine.intake.client_reference import check_reference
from engine.intake.reservations import REQUESTED_KINDS
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.statuses import JobStatus
from engine.reporting.views import kst

JOB_STATUSES = tuple(JobStatus)
JOB_CHANNELS = ("sms", "lms", "auto", "kakao")
CENTS = Decimal("0.01")
#: Largest page of jobs a caller may ask for.
MAX_JOBS_PAGE = 100


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What the caller narrowed the history to; None means "any"."""

    #: First and last day (KST calendar days, both included) of the jobs' creation.
    created_from: date | None = None
    created_to: date | None = None
    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    #: The caller's reference of the job, exactly as submitted.
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.reference is not None:
            check_reference(self.reference, "reference")
        _one_of("status", self.status, JOB_STATUSES)
        _one_of("channel", self.channel, JOB_CHANNELS)
        _one_of("kind", self.kind, REQUESTED_KINDS)
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValidationError("created_to", "is before created_from")

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The creation-time range as instants: [start of first KST day, start of the day after last)."""
        start = datetime.combine(self.created_from, time(), KST) if self.created_from else None
        end = datetime.combine(self.created_to + timedelta(days=1), time(), KST) if self.created_to else None
        return start, end


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}")


def parse_day(name: str, value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query value as a date (years 2000-2100), or a ValidationError naming the field."""
    return inputs.parse_day(name, value)


def parse_instant(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 query value as an instant (years 2000-2100); without an offset it is read as KST."""
    return None if value is None else inputs.parse_instant(name, value)


def encode_cursor(created_at: datetime, job_id: int) -> str:
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, job_id = raw.partition("|")
        return datetime.fromisoformat(moment), int(job_id)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor this API returned") from None


_LIST_JOBS = """
    SELECT id, created_at, status, kind, requested_channel, priority, sender, title, body,
           template_code, scheduled_at, first_sent_at, completed_at, resent_from, reference,
           origin, money.charged, money.refunded
    FROM jobs
    -- One index probe per job (ledger_once_per_job: one charge, at most one refund).
    CROSS JOIN LATERAL (
        SELECT coalesce(-sum(amount) FILTER (WHERE kind = 'charge'), 0) AS charged,
               coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
        FROM ledger WHERE ledger.job_id = jobs.id AND kind IN ('charge', 'refund')
    ) AS money
    WHERE tenant_id = %(tenant)s
      AND (%(start)s::timestamptz IS NULL OR created_at >= %(start)s)
      AND (%(end)s::timestamptz IS NULL OR created_at < %(end)s)
      AND (%(status)s::text IS NULL OR status = %(status)s)
      AND (%(channel)s::text IS NULL OR requested_channel = %(channel)s)
      AND (%(kind)s::text IS NULL OR kind = %(kind)s)
      AND (%(reference)s::text IS NULL OR reference = %(reference)s)
      AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s))
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s
"""


def list_jobs(
    conn: Connection,
    redis: Redis,
    keys: Keys,
    tenant_id: int,
    job_filter: JobFilter,
    *,
    cursor: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """One page of the tenant's jobs, newest first, each with its counts; ``next_cursor`` or None."""
    if not 1 <= limit <= MAX_JOBS_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_JOBS_PAGE}")
    after_at, after_id = decode_cursor(cursor) if cursor else (None, None)
    start, end = job_filter.bounds()
    rows = conn.execute(
        _LIST_JOBS,
        {
            "tenant": tenant_id,
            "start": start,
            "end": end,
            "status": job_filter.status,
            "channel": job_filter.channel,
            "kind": job_filter.kind,
            "reference": job_filter.reference,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit + 1,
        },
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    page_counts = _page_counts(conn, redis, keys, [(row[0], row[1]) for row in rows])
    return {
        "jobs": [_job_summary(row, page_counts[row[0]]) for row in rows],
        "next_cursor": encode_cursor(rows[-1][1], rows[-1][0]) if more else None,
    }


def _page_counts(
    conn: Connection, redis: Redis, keys: Keys, jobs: list[tuple[int, datetime]]
) -> dict[int, counters.JobCounts]:
    found: dict[int, counters.JobCounts] = {}
    try:
        pipe = redis.pipeline(transaction=False)
        for job_id, _ in jobs:
            pipe.hgetall(keys.job_counts(job_id))
        for (job_id, _), raw in zip(jobs, pipe.execute(), strict=True):
            if raw:
                found[job_id] = counters.JobCounts.from_hash(raw)
        redis_up = True
    except RedisError:
        redis_up = False
    for job_id, created_at in jobs:
        if job_id in found:
            continue
        found[job_id] = counters.recount(conn, job_id, created_at)
        if redis_up:
            # Put them back so the next view of this page is one Redis round trip again.
            counters.initialise(redis, keys, job_id, found[job_id])
    return found


def _job_summary(row: tuple[Any, ...], counts: counters.JobCounts) -> dict[str, Any]:
    (
        job_id,
        created_at,
        status,
        kind,
        channel,
        priority,
        sender,
        title,
        body,
        template_code,
        scheduled_at,
        first_sent_at,
        completed_at,
        resent_from,
        reference,
        origin,
        charged,
        refunded,
    ) = row
    return {
        "id": job_id,
        "status": status,
        "kind": kind,
        "reference": reference,
        "channel": channel,
        "priority": priority,
        "sender": sender,
        "title": title,
        "body": body,
        "template_code": template_code,
        "created_at": kst(created_at),
        "scheduled_at": kst(scheduled_at),
        "sent_at": kst(first_sent_at),
        "completed_at": kst(completed_at),
        "resent_from": resent_from,
        # Where the job was submitted: "api" or "console".
        "origin": origin,
        # Points, as decimal strings: charged at intake, refunded at settlement.
        "charged": str(Decimal(charged).quantize(CENTS)),
        "refunded": str(Decimal(refunded).quantize(CENTS)),
        "counts": {
            "total": counts.total,
            "queued": counts.queued,
            "sent": counts.sent,
            "in_flight": counts.in_flight,
            "delivered": counts.delivered,
            "failed": counts.failed,
            "expired": counts.expired,
            "cancelled": counts.cancelled,
            "unknown": counts.unknown,
            "fallbacks": counts.fallbacks,
        },
    }
