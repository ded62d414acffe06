"""The callback outbox: events written in the same transaction as the changes that made them.

Every statement that moves recipients to a status a caller can see (the flusher's submissions
and reports, cancellation, a missed reservation, the report deadline, a fallback that cannot be
sent) also inserts that statement's events for jobs with a callback URL (``jobs.callback_url``),
through `EVENTS_FROM`: one ``callback_events`` row per job and per 1,000 recipients, holding the
events as arrays. No event exists without its change (same transaction) and no change without
its event (same statement). A statement that changes nothing (an entry applied twice) makes no
event. Every place that finishes a job records its ``job.finished`` (`record_jobs_finished`).

Order: a recipient's later change can only be made once its earlier one has committed (each
statement moves rows only from the status the earlier one left), so its event row has the
higher id; the dispatcher delivers an endpoint's rows in id order (`engine.callbacks.dispatcher`).

``queued`` (a passing failure sent back to the queue) is no event: the recipient goes on, and
its next status will be one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from psycopg import Connection

#: Most events in one outbox row (and so in one delivery's share of it).
ROW_EVENTS = 1000


def events_from(changed: str) -> str:
    """SQL that inserts the recipient events of the rows in ``changed`` (a CTE, or a subquery
    in parentheses, with columns ``job_id, seq, attempt, status, reason_code, reason_text,
    at``), for jobs that have a callback URL. Put it in a ``WITH`` of the changing statement.

    The arrays have no ORDER BY: the aggregates of one group are fed the same rows in the same
    order, so element i of each is one event, and sorting each of the six (PostgreSQL 15 sorts
    them one by one) cost the flusher more than the insert itself."""
    return f"""
        INSERT INTO callback_events (tenant_id, job_id, url, kind, seqs, attempts, statuses, codes, texts,
                                     occurred_at, event_count)
        SELECT j.tenant_id, c.job_id, j.callback_url, 'recipient',
               array_agg(c.seq), array_agg(c.attempt), array_agg(c.status), array_agg(c.reason_code),
               array_agg(c.reason_text), array_agg(c.at), count(*)
        FROM {changed} c JOIN jobs j ON j.id = c.job_id
        WHERE j.callback_url IS NOT NULL AND c.status <> 'queued'
        GROUP BY j.tenant_id, c.job_id, j.callback_url, c.seq / {ROW_EVENTS}
    """


class RecipientEvent(NamedTuple):
    """A change made in Python rather than by one SQL statement (a fallback row made failed)."""

    seq: int
    attempt: int
    status: str
    reason_code: str | None
    reason_text: str | None
    at: datetime


_RECORD_EVENTS = f"""
    WITH changed AS (
        SELECT %(job)s::bigint AS job_id, u.*
        FROM unnest(%(seqs)s::int[], %(attempts)s::int[], %(statuses)s::text[], %(codes)s::text[],
                    %(texts)s::text[], %(ats)s::timestamptz[])
             AS u (seq, attempt, status, reason_code, reason_text, at)
    )
    {events_from("changed")}
"""


def record_events(conn: Connection[Any], job_id: int, events: Sequence[RecipientEvent]) -> None:
    """Record ``events`` of ``job_id`` (nothing if the job has no callback URL)."""
    if not events:
        return
    conn.execute(
        _RECORD_EVENTS,
        {
            "job": job_id,
            "seqs": [e.seq for e in events],
            "attempts": [e.attempt for e in events],
            "statuses": [e.status for e in events],
            "codes": [e.reason_code for e in events],
            "texts": [e.reason_text for e in events],
            "ats": [e.at for e in events],
        },
    )


def record_jobs_finished(conn: Connection[Any], job_ids: Sequence[int]) -> None:
    """One ``job.finished`` event for each of ``job_ids`` that has a callback URL; call it in the
    transaction that sets their final status, after their recipients' last changes."""
    if not job_ids:
        return
    conn.execute(
        """
        INSERT INTO callback_events (tenant_id, job_id, url, kind, occurred_at, event_count)
        SELECT tenant_id, id, callback_url, 'job.finished', ARRAY[coalesce(completed_at, now())], 1
        FROM jobs WHERE id = ANY(%s) AND callback_url IS NOT NULL
        ORDER BY id
        """,
        (list(job_ids),),
    )
