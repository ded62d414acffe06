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

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from psycopg import Connection

from engine.clock import KST
from engine.intake.phone import mask_phone
from engine.lifecycle.counters import recount


class OutboxRow(NamedTuple):
    """One ``callback_events`` row, as the dispatcher reads it."""

    id: int
    job_id: int
    kind: str
    seqs: list[int] | None
    attempts: list[int] | None
    statuses: list[str] | None
    codes: list[str | None] | None
    texts: list[str | None] | None
    occurred_at: list[datetime]
    event_count: int
    created_at: datetime


#: The columns of `OutboxRow`, in order, for SELECTs.
COLUMNS = "id, job_id, kind, seqs, attempts, statuses, codes, texts, occurred_at, event_count, created_at"


def _time(at: datetime, cache: dict[datetime, str]) -> str:
    """``at`` in KST, ISO 8601 with its offset; ``cache``: a request's events share few times
    (a batch's submissions have one)."""
    text = cache.get(at)
    if text is None:
        text = cache[at] = at.astimezone(KST).isoformat(timespec="milliseconds")
    return text


def build_body(conn: Connection[Any], rows: Sequence[OutboxRow]) -> tuple[bytes, list[datetime]]:
    """The request body for ``rows`` (in their order) and each event's time (for the lag)."""
    jobs = {
        int(job_id): (created_at, reference, status)
        for job_id, created_at, reference, status in conn.execute(
            "SELECT id, created_at, reference, status FROM jobs WHERE id = ANY(%s)",
            (sorted({r.job_id for r in rows}),),
        ).fetchall()
    }
    wanted: dict[int, set[int]] = defaultdict(set)
    for row in rows:
        if row.seqs:
            wanted[row.job_id].update(row.seqs)
    recipients: dict[tuple[int, int], tuple[str, str | None, str | None]] = {}
    for job_id, seqs in wanted.items():
        if job_id not in jobs:
            continue
        for seq, phone, reference, channel in conn.execute(
            "SELECT seq, phone, reference, channel FROM recipients"
            " WHERE job_id = %s AND job_created_at = %s AND seq = ANY(%s)",
            (job_id, jobs[job_id][0], sorted(seqs)),
        ).fetchall():
            recipients[job_id, seq] = (mask_phone(phone), reference, channel)
    events: list[dict[str, Any]] = []
    times: list[datetime] = []
    texts: dict[datetime, str] = {}
    for row in rows:
        created_at, job_reference, job_status = jobs.get(row.job_id, (None, None, None))
        if row.kind == "job.finished":
            events.append(_job_finished(conn, row, created_at, job_reference, job_status, texts))
            times.append(row.occurred_at[0])
            continue
        assert row.seqs and row.attempts and row.statuses and row.codes is not None and row.texts is not None
        for i, seq in enumerate(row.seqs):
            phone, reference, channel = recipients.get((row.job_id, seq), (None, None, None))
            status, at = row.statuses[i], row.occurred_at[i]
            events.append(
                {
                    "event_id": f"{row.job_id}-{seq}-{row.attempts[i]}-{status}",
                    "type": "recipient.status",
                    "job_id": row.job_id,
                    "job_reference": job_reference,
                    "reference": reference,
                    "phone": phone,
                    "channel": channel,
                    "status": status,
                    "reason_code": row.codes[i],
                    "reason": row.texts[i],
                    "occurred_at": _time(at, texts),
                }
            )
            times.append(at)
    return orjson.dumps({"events": events}), times


def _job_finished(
    conn: Connection[Any],
    row: OutboxRow,
    created_at: datetime | None,
    job_reference: str | None,
    job_status: str | None,
    texts: dict[datetime, str],
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
        "occurred_at": _time(row.occurred_at[0], texts),
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
