"""What the API shows of jobs and recipients (read side), always scoped to one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection
from redis import Redis
from redis.exceptions import RedisError

from engine import counters
from engine.clock import KST
from engine.errors import NotFound, ValidationError
from engine.keys import Keys
from engine.phone import mask_phone

RECIPIENT_STATUSES = ("queued", "submitted", "delivered", "failed", "expired", "fallback")
MAX_PAGE = 1000


def kst(moment: datetime | None) -> str | None:
    return moment.astimezone(KST).isoformat() if moment else None


def job_view(conn: Connection, redis: Redis, keys: Keys, tenant_id: int, job_id: int) -> dict[str, Any]:
    """A job's status, content, times and counts; NotFound unless it belongs to the tenant."""
    row = conn.execute(
        """
        SELECT id, status, created_at, first_sent_at, completed_at, requested_channel, priority, sender,
               title, body, total, sms_count, lms_count, kakao_count, invalid_count, duplicates_removed,
               template_code, fallback_channel, fallback_body, fallback_title, paused_at, paused_reason
        FROM jobs WHERE id = %s AND tenant_id = %s
        """,
        (job_id, tenant_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    (
        id_,
        status,
        created_at,
        first_sent_at,
        completed_at,
        channel,
        priority,
        sender,
        title,
        body,
        _total,
        sms_count,
        lms_count,
        kakao_count,
        invalid_count,
        duplicates_removed,
        template_code,
        fallback_channel,
        fallback_body,
        fallback_title,
        paused_at,
        paused_reason,
    ) = row
    live = _counts(conn, redis, keys, job_id, created_at)
    return {
        "id": id_,
        "status": status,
        "created_at": kst(created_at),
        "sent_at": kst(first_sent_at),
        "completed_at": kst(completed_at),
        # Why (and since when) the job is or was paused for its failure ratio; null if never.
        "paused": {"at": kst(paused_at), "reason": paused_reason} if paused_at else None,
        "content": {
            "channel": channel,
            "sender": sender,
            "title": title,
            "body": body,
            "priority": priority,
            "template_code": template_code,
            "fallback": {"channel": fallback_channel, "body": fallback_body, "title": fallback_title}
            if fallback_channel
            else None,
        },
        "counts": {
            "total": live.total,
            "queued": live.queued,
            "sent": live.sent,
            "delivered": live.delivered,
            "failed": live.failed,
            "expired": live.expired,
            "fallbacks": live.fallbacks,
            "in_flight": live.in_flight,
            "by_channel": {
                "sms": sms_count,
                "lms": lms_count,
                "kakao": kakao_count,
                "invalid": invalid_count,
            },
            "duplicates_removed": duplicates_removed,
        },
        "failures": [
            {"reason_code": code, "reason": live.reason_texts.get(code, code), "count": count}
            for code, count in sorted(live.reasons.items(), key=lambda item: -item[1])
        ],
    }


def _counts(
    conn: Connection, redis: Redis, keys: Keys, job_id: int, created_at: datetime
) -> counters.JobCounts:
    """Live counters from Redis; recounted from PostgreSQL if Redis lost them (or is down)."""
    try:
        live = counters.read(redis, keys, job_id)
    except RedisError:
        return counters.recount(conn, job_id, created_at)
    if live is None:
        live = counters.recount(conn, job_id, created_at)
    return live


def list_recipients(
    conn: Connection,
    tenant_id: int,
    job_id: int,
    *,
    status: str | None = None,
    reason: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of a job's recipients in seq order, with a cursor to the next page."""
    if status is not None and status not in RECIPIENT_STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(RECIPIENT_STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    job = conn.execute(
        "SELECT created_at, total FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)
    ).fetchone()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    # One entry per recipient: a KakaoTalk recipient handed to SMS/LMS shows its fallback beside it.
    rows = conn.execute(
        """
        SELECT r.seq, r.phone, r.member_id,
               r.channel, r.status, r.reason_code, r.reason_text, r.submitted_at, r.completed_at,
               f.channel, f.status, f.reason_code, f.reason_text, f.submitted_at, f.completed_at
        FROM recipients r
        LEFT JOIN recipients f ON f.job_id = r.job_id AND f.job_created_at = r.job_created_at
                              AND f.seq = %(total)s + r.seq AND r.status = 'fallback'
        WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
          AND r.seq > %(after)s AND r.seq < %(total)s
          AND (%(status)s::text IS NULL OR r.status = %(status)s)
          AND (%(reason)s::text IS NULL OR r.reason_code = %(reason)s)
        ORDER BY r.seq LIMIT %(limit)s
        """,
        {
            "job": job_id,
            "created_at": job[0],
            "total": job[1],
            "after": -1 if after is None else after,
            "status": status,
            "reason": reason,
            "limit": limit + 1,
        },
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "recipients": [
            {
                "seq": row[0],
                "phone": mask_phone(row[1]),
                "member_id": row[2],
                **_outcome(row[3:9]),
                "fallback": _outcome(row[9:15]) if row[10] is not None else None,
            }
            for row in rows
        ],
        "next_cursor": str(rows[-1][0]) if more else None,
    }


def _outcome(columns: Sequence[Any]) -> dict[str, Any]:
    channel, status, reason_code, reason_text, submitted_at, completed_at = columns
    return {
        "channel": channel,
        "status": status,
        "reason_code": reason_code,
        "reason": reason_text,
        "submitted_at": kst(submitted_at),
        "completed_at": kst(completed_at),
    }
