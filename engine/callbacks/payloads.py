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
from datetime import UTC, datetime
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventTimes:
    """A request's event times: each formatted for its event, and counted in 0.1 s buckets for
    the lag histogram. The events of a request share few whole seconds (a batch's submissions
    have one time, reports arrive over a few seconds), so a second's text is made once and its
    milliseconds added; formatting a datetime whole, and keeping one per event for the lag, was
    most of an event's cost. KST has no daylight saving: the offset is always +09:00."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}
        #: 0.1 s bucket (tenths of a second since the epoch) -> events.
        self.buckets: dict[int, int] = {}

    def text(self, at: datetime) -> str:
        since = at - _EPOCH
        second = since.days * 86_400 + since.seconds
        head = self._seconds.get(second)
        if head is None:
            head = self._seconds[second] = (
                at.replace(microsecond=0).astimezone(KST).strftime("%Y-%m-%dT%H:%M:%S")
            )
        bucket = second * 10 + since.microseconds // 100_000
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        return f"{head}.{since.microseconds // 1000:03d}+09:00"

    def lags(self, now: datetime) -> dict[float, int]:
        """Seconds from each bucket to ``now`` -> events."""
        tenths = (now - _EPOCH).total_seconds() * 10
        return {max(tenths - bucket, 0.0) / 10: count for bucket, count in self.buckets.items()}


def build_body(conn: Connection[Any], rows: Sequence[OutboxRow]) -> tuple[bytes, EventTimes]:
    """The request body for ``rows`` (in their order) and its events' times (for the lag)."""
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
    # Binary: PostgreSQL formats no text and psycopg parses none (a request reads 1,000 rows).
    cursor = conn.cursor(binary=True)
    for job_id, seqs in wanted.items():
        if job_id not in jobs:
            continue
        for seq, phone, reference, channel in cursor.execute(
            "SELECT seq, phone, reference, channel FROM recipients"
            " WHERE job_id = %s AND job_created_at = %s AND seq = ANY(%s::int[])",
            # An array literal: psycopg dumps a list of 1,000 ints element by element in Python.
            (job_id, jobs[job_id][0], "{" + ",".join(map(str, sorted(seqs))) + "}"),
        ).fetchall():
            recipients[job_id, seq] = (mask_phone(phone), reference, channel)
    events: list[dict[str, Any]] = []
    times = EventTimes()
    unknown = (None, None, None)
    for row in rows:
        created_at, job_reference, job_status = jobs.get(row.job_id, unknown)
        if row.kind == "job.finished":
            events.append(_job_finished(conn, row, created_at, job_reference, job_status, times))
            continue
        assert row.seqs and row.attempts and row.statuses and row.codes is not None and row.texts is not None
        job_id = row.job_id
        for seq, attempt, status, code, text, at in zip(
            row.seqs, row.attempts, row.statuses, row.codes, row.texts, row.occurred_at, strict=True
        ):
            phone, reference, channel = recipients.get((job_id, seq), unknown)
            events.append(
                {
                    "event_id": f"{job_id}-{seq}-{attempt}-{status}",
                    "type": "recipient.status",
                    "job_id": job_id,
                    "job_reference": job_reference,
                    "reference": reference,
                    "phone": phone,
                    "channel": channel,
                    "status": status,
                    "reason_code": code,
                    "reason": text,
                    "occurred_at": times.text(at),
                }
            )
    return orjson.dumps({"events": events}), times


def _job_finished(
    conn: Connection[Any],
    row: OutboxRow,
    created_at: datetime | None,
    job_reference: str | None,
    job_status: str | None,
    times: EventTimes,
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
        "occurred_at": times.text(row.occurred_at[0]),
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
