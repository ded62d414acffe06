"""What the API shows of jobs and recipients (read side), always scoped to one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection
from redis import Redis
from redis.exceptions import RedisError

from engine.accounts import billing
from engine.attribution import links, revenue
from engine.clock import KST
from engine.errors import NotFound, ValidationError
from engine.intake.client_reference import check_reference
from engine.intake.phone import mask_phone, search_terms
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.statuses import RecipientStatus

#: The statuses a recipient listing may be filtered by: every one (defined once, in statuses).
RECIPIENT_STATUSES = tuple(status.value for status in RecipientStatus)
RECIPIENT_CHANNELS = ("sms", "lms", "kakao")
MAX_PAGE = 1000


def kst(moment: datetime | None) -> str | None:
    return moment.astimezone(KST).isoformat() if moment else None


def job_view(conn: Connection, redis: Redis, keys: Keys, tenant_id: int, job_id: int) -> dict[str, Any]:
    """A job's status, content, times and counts; NotFound unless it belongs to the tenant."""
    row = conn.execute(
        """
        SELECT id, status, created_at, first_sent_at, completed_at, requested_channel, priority, sender,
               title, body, total, sms_count, lms_count, kakao_count, invalid_count, duplicates_removed,
               template_code, fallback_channel, fallback_body, fallback_title,
               kind, scheduled_at, cancelled_at, resent_from, paused_at, paused_reason, reference
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
        kind,
        scheduled_at,
        cancelled_at,
        resent_from,
        paused_at,
        paused_reason,
        reference,
    ) = row
    live = _counts(conn, redis, keys, job_id, created_at)
    money = billing.job_money(conn, job_id)
    return {
        "id": id_,
        "status": status,
        "kind": kind,
        # The caller's own reference for the job, as submitted (null if none).
        "reference": reference,
        "created_at": kst(created_at),
        "scheduled_at": kst(scheduled_at),
        "cancelled_at": kst(cancelled_at),
        "resent_from": resent_from,
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
            "cancelled": live.cancelled,
            # Accepted, but no result by the report deadline (reason no_report); charged.
            "unknown": live.unknown,
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
        # Points, as decimal strings: charged (reserved at intake), refunded at settlement, net.
        "charges": {
            "charged": str(money.charged),
            "refunded": str(money.refunded),
            "net": str(money.net),
            "settled": money.settled,
        },
        # What the job earned (orders credited to it) and, with tracked links, its clicks.
        "attribution": revenue.job_attribution(conn, job_id, live.delivered),
        "clicks": links.job_clicks(conn, job_id, live.delivered),
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
    channel: str | None = None,
    phone: str | None = None,
    reference: str | None = None,
    sent_from: datetime | None = None,
    sent_to: datetime | None = None,
    after: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of a job's recipients in seq order, with a cursor to the next page.

    A KakaoTalk recipient handed to SMS/LMS matches a filter by its KakaoTalk outcome or by its
    fallback's: ``status=delivered`` finds the recipients whose fallback SMS was delivered, and
    ``channel=sms`` those that went by SMS in the end.

    Parameters:
      phone: the whole number (any form intake accepts) or its last four digits.
      reference: the caller's reference of the recipient, exactly as submitted.
      sent_from, sent_to: the time the carrier accepted the message, ``[sent_from, sent_to)``.
    """
    if status is not None and status not in RECIPIENT_STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(RECIPIENT_STATUSES)}")
    if channel is not None and channel not in RECIPIENT_CHANNELS:
        raise ValidationError("channel", f"must be one of {', '.join(RECIPIENT_CHANNELS)}")
    whole_phone, last_four = _phone_filter(phone)
    if reference is not None:
        check_reference(reference, "reference")
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    job = conn.execute(
        "SELECT created_at, total FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)
    ).fetchone()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    params = {
        "job": job_id,
        "created_at": job[0],
        "total": job[1],
        "after": -1 if after is None else after,
        "status": status,
        "reason_code": reason,
        "channel": channel,
        "phone": whole_phone,
        "last4": last_four,
        "reference": reference,
        "sent_from": sent_from,
        "sent_to": sent_to,
        "limit": limit + 1,
    }
    rows = conn.execute(_RECIPIENTS_PAGE, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    # One entry per recipient: a KakaoTalk recipient handed to SMS/LMS shows its fallback beside it.
    fallback_seqs = [row[0] + job[1] for row in rows if row[5] == "fallback"]
    fallbacks = {}
    if fallback_seqs:
        fallbacks = {
            seq - job[1]: outcome
            for seq, *outcome in conn.execute(
                """
                SELECT seq, channel, status, reason_code, reason_text, submitted_at, completed_at
                FROM recipients WHERE job_id = %s AND job_created_at = %s AND seq = ANY(%s)
                """,
                (job_id, job[0], fallback_seqs),
            )
        }
    clicked = links.first_clicks(conn, job_id, [row[0] for row in rows])
    return {
        "recipients": [
            {
                "seq": row[0],
                "phone": mask_phone(row[1]),
                "member_id": row[2],
                "reference": row[3],
                **_outcome(row[4:10]),
                "fallback": _outcome(fallbacks[row[0]]) if row[0] in fallbacks else None,
                "first_clicked_at": kst(clicked.get(row[0])),
            }
            for row in rows
        ],
        "next_cursor": str(rows[-1][0]) if more else None,
    }


# A recipient's fallback row, for the filters below (looked up by primary key).
_FALLBACK = """(r.status = 'fallback' AND EXISTS (
    SELECT 1 FROM recipients f
    WHERE f.job_id = r.job_id AND f.job_created_at = r.job_created_at AND f.seq = %(total)s + r.seq
      AND {}))"""


def _own_or_fallback(column: str) -> str:
    """A filter on ``column`` that a recipient meets by its own row or by its fallback's."""
    condition = f"f.{column} = %({column})s"
    return f"(%({column})s::text IS NULL OR r.{column} = %({column})s OR {_FALLBACK.format(condition)})"


def _sent_between(bound: str, operator: str) -> str:
    """The send time of the recipient's last message (its fallback's, if it has one) against a bound."""
    condition = f"f.submitted_at {operator} %({bound})s"
    return (
        f"(%({bound})s::timestamptz IS NULL"
        f" OR (r.status <> 'fallback' AND r.submitted_at {operator} %({bound})s)"
        f" OR {_FALLBACK.format(condition)})"
    )


# Filters on a fallback's row are EXISTS lookups by primary key, not a join: before a partition's
# first ANALYZE, the planner took a join over a whole job's rows for one row per recipient.
_RECIPIENTS_PAGE = f"""
    SELECT r.seq, r.phone, r.member_id, r.reference,
           r.channel, r.status, r.reason_code, r.reason_text, r.submitted_at, r.completed_at
    FROM recipients r
    WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
      AND r.seq > %(after)s AND r.seq < %(total)s
      AND {_own_or_fallback("status")}
      AND {_own_or_fallback("reason_code")}
      AND {_own_or_fallback("channel")}
      AND (%(phone)s::text IS NULL OR r.phone = %(phone)s)
      AND (%(last4)s::text IS NULL OR right(r.phone, 4) = %(last4)s)
      AND (%(reference)s::text IS NULL OR r.reference = %(reference)s)
      AND {_sent_between("sent_from", ">=")}
      AND {_sent_between("sent_to", "<")}
    ORDER BY r.seq LIMIT %(limit)s
"""


def _phone_filter(phone: str | None) -> tuple[str | None, str | None]:
    """``(whole normalised number, its last four digits)`` or ``(None, last four digits)``
    (`engine.intake.phone.search_terms`): the job's last-four-digits index serves both."""
    return search_terms("phone", phone)


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
