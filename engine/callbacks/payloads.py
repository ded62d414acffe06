"""What a receiver gets: ``{"events": [...]}``, built from outbox rows.

Each event::

    {"event_id", "type", "job_id", "job_reference", "reference", "phone", "channel",
     "status", "reason_code", "reason", "occurred_at"}

- ``type``: ``recipient.status`` (a recipient reached ``status``) or ``job.finished`` (the job
  reached its final ``status``; it adds ``counts``, and its recipient fields are null);
- ``event_id``: stable for one change (``<job>-<seq>-<attempt>-<status>``, ``<job>-finished``):
  a receiver drops an id it has seen, whatever the number of deliveries;
- ``phone``: masked as in exports (``010-****-5678``); ``channel``: the channel that carried it
  (an SMS/LMS fallback of a KakaoTalk message has its own events, with its channel);
- ``occurred_at``: ISO 8601 with its offset, in KST.

The row keeps what changed (status, reason, time); the recipient's phone, reference and channel,
which never change, are read from its row when the request is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from psycopg import Connection

from engine.clock import KST
from engine.lifecycle.counters import recount


class OutboxRow(NamedTuple):
    """One ``callback_events`` row, as the dispatcher picks it (its arrays stay in PostgreSQL)."""

    id: int
    job_id: int
    kind: str
    occurred_at: list[datetime]
    event_count: int
    created_at: datetime


#: The columns of `OutboxRow`, in order, for SELECTs. ``occurred_at`` only for a ``job.finished``
#: row: a recipient row's 1,000 times are read where its JSON is built.
COLUMNS = "id, job_id, kind, CASE WHEN kind = 'job.finished' THEN occurred_at END, event_count, created_at"

def masked_phone_sql(phone: str) -> str:
    """SQL for the stored (normalised, receivable) number in column ``phone`` masked as
    `engine.intake.phone.mask_phone` masks it: its prefix (02; 050x; else three digits), a star
    per middle digit, the last four; ``****`` for anything else.
    tests/integration/test_callback_payloads.py holds the two to the same answers."""
    head = f"(CASE WHEN {phone} LIKE '02%%' THEN 2 WHEN {phone} ~ '^050[2-8]' THEN 4 ELSE 3 END)"
    return f"""
        CASE WHEN {phone} ~ '^010[0-9]{{8}}$' THEN '010-****-' || right({phone}, 4)
             WHEN {phone} !~ '^0[0-9]{{8,11}}$' THEN '****'
             ELSE left({phone}, {head}) || '-' || repeat('*', length({phone}) - {head} - 4)
                  || '-' || right({phone}, 4)
        END
    """


# Each recipient row's events as one JSON array (text), built where the data is: the arrays are
# never decoded in Python, and the recipient's phone, reference and channel are read by index
# (one lookup per event: a join could pick a hash of the whole job). Time buckets of 0.1 s for
# the lag come with it.
_EVENTS_JSON = f"""
    WITH event AS (
        SELECT e.id AS row_id, u.ord, e.job_id, u.seq, u.attempt, u.status, u.code, u.text, u.at
        FROM callback_events e,
             unnest(e.seqs, e.attempts, e.statuses, e.codes, e.texts, e.occurred_at)
                 WITH ORDINALITY AS u (seq, attempt, status, code, text, at, ord)
        WHERE e.id = ANY(%(ids)s) AND e.kind <> 'job.finished'
    )
    SELECT event.row_id,
           json_agg(json_build_object(
               'event_id', event.job_id || '-' || event.seq || '-' || event.attempt || '-' || event.status,
               'type', 'recipient.status',
               'job_id', event.job_id,
               'job_reference', j.reference,
               'reference', r.reference,
               'phone', {masked_phone_sql("r.phone")},
               'channel', r.channel,
               'status', event.status,
               'reason_code', event.code,
               'reason', event.text,
               'occurred_at', to_char(event.at AT TIME ZONE 'Asia/Seoul',
                                      'YYYY-MM-DD"T"HH24:MI:SS.MS"+09:00"')
           ) ORDER BY event.ord)::text
    FROM event
    JOIN jobs j ON j.id = event.job_id
    LEFT JOIN LATERAL (
        SELECT phone, reference, channel FROM recipients
        WHERE job_id = event.job_id AND job_created_at = j.created_at AND seq = event.seq
    ) r ON true
    GROUP BY event.row_id
"""

#: When the events of the rows happened, in 0.1 s buckets (epoch seconds, count): the lag's
#: histogram wants every event, not 1,000 datetimes decoded per request.
_EVENT_TIMES = """
    SELECT round(extract(epoch FROM at)::numeric, 1)::float8, count(*)
    FROM callback_events e, unnest(e.occurred_at) AS at
    WHERE e.id = ANY(%s)
    GROUP BY 1
"""


class Body(NamedTuple):
    """A request's body and when its events happened (epoch seconds in 0.1 s buckets -> events)."""

    content: bytes
    times: dict[float, int]


def build_body(conn: Connection[Any], rows: Sequence[OutboxRow]) -> Body:
    """The request body for ``rows``, their events in row order: ``{"events": [...]}``."""
    ids = [r.id for r in rows]
    fragments = {
        int(row_id): events.encode() for row_id, events in conn.execute(_EVENTS_JSON, {"ids": ids}).fetchall()
    }
    finished = [r for r in rows if r.kind == "job.finished"]
    jobs = (
        {
            int(job_id): (created_at, reference, status)
            for job_id, created_at, reference, status in conn.execute(
                "SELECT id, created_at, reference, status FROM jobs WHERE id = ANY(%s)",
                (sorted({r.job_id for r in finished}),),
            ).fetchall()
        }
        if finished
        else {}
    )
    parts: list[bytes] = []
    for row in rows:
        if row.kind == "job.finished":
            created_at, job_reference, job_status = jobs.get(row.job_id, (None, None, None))
            parts.append(orjson.dumps(_job_finished(conn, row, created_at, job_reference, job_status)))
        elif row.id in fragments:
            parts.append(fragments[row.id][1:-1])  # the array's elements, without its brackets
    times = {float(at): int(count) for at, count in conn.execute(_EVENT_TIMES, (ids,)).fetchall()}
    return Body(b'{"events":[' + b",".join(parts) + b"]}", times)


def _job_finished(
    conn: Connection[Any],
    row: OutboxRow,
    created_at: datetime | None,
    job_reference: str | None,
    job_status: str | None,
) -> dict[str, Any]:
    counts = recount(conn, row.job_id, created_at) if created_at is not None else None
    return {
        "event_id": f"{row.job_id}-finished",
        "type": "job.finished",
        "job_id": row.job_id,
        "job_reference": job_reference,
        "reference": None,
        "phone": None,
        "channel": None,
        "status": job_status,
        "reason_code": None,
        "reason": None,
        "occurred_at": row.occurred_at[0].astimezone(KST).isoformat(timespec="milliseconds"),
        "counts": None
        if counts is None
        else {
            "total": counts.total,
            "sent": counts.sent,
            "delivered": counts.delivered,
            "failed": counts.failed,
            "expired": counts.expired,
            "cancelled": counts.cancelled,
            "unknown": counts.unknown,
            "fallbacks": counts.fallbacks,
        },
    }
