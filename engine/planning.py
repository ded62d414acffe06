"""Planning: splitting an accepted job into batches, one per send_batch message.

Planning is idempotent: batches are derived from the job's stored per-channel counts and
inserted once (``planned_at`` marks it), so planning twice creates no second batch. The scheduler
re-plans jobs committed but never planned (the process died between commit and publish) and
re-publishes batches whose message was never confirmed by the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import Connection
from redis import Redis

from engine import counters
from engine.keys import Keys


@dataclass(frozen=True, slots=True)
class BatchRef:
    """What a send_batch message needs to find its batch."""

    job_id: int
    seq: int
    channel: str
    priority: str


def batch_ranges(sms_count: int, lms_count: int, batch_size: int) -> list[tuple[str, int, int]]:
    """(channel, first seq, last seq) of each batch: SMS recipients come first, then LMS."""
    ranges = []
    start = 0
    for channel, count in (("sms", sms_count), ("lms", lms_count)):
        end = start + count
        for first in range(start, end, batch_size):
            ranges.append((channel, first, min(first + batch_size, end) - 1))
        start = end
    return ranges


def plan_job(conn: Connection, job_id: int, batch_size: int) -> list[BatchRef]:
    """Create the job's batches if not done yet; return the batches still to be published."""
    with conn.transaction():
        row = conn.execute(
            "SELECT planned_at, sms_count, lms_count, priority FROM jobs WHERE id = %s FOR UPDATE",
            (job_id,),
        ).fetchone()
        if row is None:
            return []
        planned_at, sms_count, lms_count, priority = row
        if planned_at is None:
            ranges = batch_ranges(sms_count, lms_count, batch_size)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO batches (job_id, seq, channel, first_seq, last_seq)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (job_id, seq, channel, first, last)
                        for seq, (channel, first, last) in enumerate(ranges)
                    ],
                )
            conn.execute(
                "UPDATE jobs SET planned_at = now(), status = 'sending'"
                " WHERE id = %s AND status = 'accepted'",
                (job_id,),
            )
        rows = conn.execute(
            "SELECT seq, channel FROM batches WHERE job_id = %s AND state = 'planned' AND enqueued_at IS NULL"
            " ORDER BY seq",
            (job_id,),
        ).fetchall()
    return [BatchRef(job_id, seq, channel, priority) for seq, channel in rows]


def mark_enqueued(conn: Connection, job_id: int, seqs: list[int]) -> None:
    """Note that the broker confirmed these batches' messages."""
    conn.execute(
        "UPDATE batches SET enqueued_at = now() WHERE job_id = %s AND seq = ANY(%s) AND state = 'planned'",
        (job_id, seqs),
    )


def initial_counts(conn: Connection, job_id: int) -> counters.JobCounts:
    """A freshly planned job's counters: valid recipients queued, intake failures by reason."""
    row = conn.execute(
        "SELECT created_at, total, sms_count + lms_count FROM jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    created_at, total, valid = row
    counts = counters.JobCounts(total=total, queued=valid, failed=total - valid)
    reasons = conn.execute(
        """
        SELECT reason_code, min(reason_text), count(*) FROM recipients
        WHERE job_id = %s AND job_created_at = %s AND seq >= %s GROUP BY reason_code
        """,
        (job_id, created_at, valid),
    ).fetchall()
    for code, text, count in reasons:
        counts.reasons[code] = count
        counts.reason_texts[code] = text
    return counts


def initialise_counters(conn: Connection, redis: Redis, keys: Keys, job_id: int) -> None:
    counters.initialise(redis, keys, job_id, initial_counts(conn, job_id))


def unplanned_jobs(conn: Connection, older_than_seconds: float, limit: int = 100) -> list[int]:
    """Jobs committed but still not planned after ``older_than_seconds`` (the outbox)."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE planned_at IS NULL AND status = 'accepted'"
        " AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def unpublished_batches(conn: Connection, older_than_seconds: float, limit: int = 1000) -> list[BatchRef]:
    """Planned batches whose message was never confirmed, or was handed back for a later retry."""
    rows = conn.execute(
        """
        SELECT b.job_id, b.seq, b.channel, j.priority FROM batches b JOIN jobs j ON j.id = b.job_id
        WHERE b.state = 'planned' AND b.enqueued_at IS NULL
          AND j.planned_at < now() - make_interval(secs => %s)
          AND (b.claimed_at IS NULL OR b.claimed_at < now() - make_interval(secs => %s))
        ORDER BY b.job_id, b.seq LIMIT %s
        """,
        (older_than_seconds, older_than_seconds, limit),
    ).fetchall()
    return [BatchRef(int(j), int(s), c, p) for j, s, c, p in rows]
