"""Where one phone number was sent to: a tenant's recipient rows of that number across its jobs
of a date range (수신번호 검색), newest job first, the numbers masked.

The query reads through indexes only. The tenant's jobs of the range come from the jobs table
(``jobs_by_tenant``: tenant, creation time); for each, the recipients of the number come from the
last-four-digits index (``recipients_phone_last4``: ``right(phone, 4), job_id``, migration 0006),
and ``job_created_at`` keeps PostgreSQL to the monthly partitions of the range. No index on whole
numbers is needed (each costs COPY time at intake): four digits and a job leave a handful of rows.

The range is bounded, `MAX_DAYS` KST days, as the providers bound theirs (NHN Cloud: one month):
the work grows with the tenant's jobs in the range, and a search must stay an index probe per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from psycopg import Connection

from engine.clock import KST
from engine.errors import ValidationError
from engine.intake.phone import mask_phone, search_terms
from engine.reporting.views import kst

#: Longest range of one search, in KST days (both ends included).
MAX_DAYS = 31
#: Most rows one search returns (a number rarely gets more in a month; the answer says if cut).
MAX_ROWS = 500


@dataclass(frozen=True, slots=True)
class PhoneSearch:
    """One search: a whole number (any form intake accepts) and the KST days of the jobs' creation."""

    phone: str
    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        whole, _ = search_terms("phone", self.phone)
        if whole is None:
            raise ValidationError("phone", "give the whole number, not its last four digits")
        check_range(self.first_day, self.last_day)

    def bounds(self) -> tuple[datetime, datetime]:
        start = datetime.combine(self.first_day, time(), KST)
        return start, datetime.combine(self.last_day + timedelta(days=1), time(), KST)


def check_range(first_day: date, last_day: date) -> None:
    """Raise a ValidationError on ``to`` unless the days make a range of at most `MAX_DAYS`."""
    if last_day < first_day:
        raise ValidationError("to", "is before from")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValidationError("to", f"a search covers at most {MAX_DAYS} days")


# The jobs first (tenant, range), then an index probe per job on (right(phone, 4), job_id);
# job_created_at = j.created_at prunes the partitions to the range's months.
_SEARCH = """
    SELECT j.id, j.kind, j.requested_channel, j.sender, j.title, j.body, j.created_at,
           j.first_sent_at, j.scheduled_at, j.total,
           r.seq, r.phone, r.member_id, r.channel, r.status, r.reason_code, r.reason_text,
           r.submitted_at, r.completed_at,
           f.channel, f.status, f.reason_code, f.reason_text, f.submitted_at, f.completed_at
    FROM jobs j
    JOIN recipients r
      ON r.job_id = j.id AND r.job_created_at = j.created_at
     AND right(r.phone, 4) = %(last4)s AND r.phone = %(phone)s AND r.seq < j.total
    LEFT JOIN recipients f
      ON r.status = 'fallback' AND f.job_id = j.id AND f.job_created_at = j.created_at
     AND f.seq = j.total + r.seq
    WHERE j.tenant_id = %(tenant)s AND j.created_at >= %(start)s AND j.created_at < %(end)s
      AND r.job_created_at >= %(start)s AND r.job_created_at < %(end)s
    ORDER BY j.created_at DESC, j.id DESC, r.seq
    LIMIT %(limit)s
"""


def search(conn: Connection, tenant_id: int, wanted: PhoneSearch, limit: int = MAX_ROWS) -> dict[str, Any]:
    """The tenant's recipient rows of the number in the range, each with its job; ``truncated``
    when there were more than ``limit``."""
    whole, last4 = search_terms("phone", wanted.phone)
    start, end = wanted.bounds()
    rows = conn.execute(
        _SEARCH,
        {"tenant": tenant_id, "phone": whole, "last4": last4, "start": start, "end": end, "limit": limit + 1},
    ).fetchall()
    return {
        "phone": mask_phone(whole or ""),
        "from": wanted.first_day.isoformat(),
        "to": wanted.last_day.isoformat(),
        "recipients": [_row(row) for row in rows[:limit]],
        "truncated": len(rows) > limit,
    }


def _outcome(columns: tuple[Any, ...]) -> dict[str, Any]:
    channel, status, reason_code, reason_text, submitted_at, completed_at = columns
    return {
        "channel": channel,
        "status": status,
        "reason_code": reason_code,
        "reason": reason_text,
        "submitted_at": kst(submitted_at),
        "completed_at": kst(completed_at),
    }


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    (job_id, kind, channel, sender, title, body, created_at, sent_at, scheduled_at, _total) = row[:10]
    seq, phone, member_id = row[10:13]
    fallback = row[19:25]
    return {
        "job": {
            "id": job_id,
            "kind": kind,
            "channel": channel,
            "sender": sender,
            "title": title,
            "body": body,
            "created_at": kst(created_at),
            "sent_at": kst(sent_at),
            "scheduled_at": kst(scheduled_at),
        },
        "seq": seq,
        "phone": mask_phone(phone),
        "member_id": member_id,
        **_outcome(tuple(row[13:19])),
        "fallback": _outcome(tuple(fallback)) if fallback[1] is not None else None,
    }
