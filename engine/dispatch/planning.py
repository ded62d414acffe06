"""Planning: splitting an accepted job into batches, one per send_batch message.

Planning is idempotent: batches are derived from the job's stored per-channel counts and
inserted once (``planned_at`` marks it), so planning twice creates no second batch. The scheduler
re-plans jobs committed but never planned (the process died between commit and publish) and
re-publishes batches whose message was never confirmed by the broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from psycopg import Connection, sql
from redis import Redis

from engine.dispatch.job_states import JOB_MAY_SUBMIT, may_submit
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.statuses import JobStatus


@dataclass(frozen=True, slots=True, order=True)
class BatchRef:
    """What a send_batch message needs to find its batch."""

    job_id: int
    seq: int
    channel: str
    priority: str


def batch_ranges(
    sms_count: int, lms_count: int, batch_size: int, kakao_count: int = 0
) -> list[tuple[str, int, int]]:
    """(channel, first seq, last seq) of each batch: SMS recipients come first, then LMS, then
    KakaoTalk (a job is either SMS/LMS or KakaoTalk)."""
    ranges = []
    start = 0
    for channel, count in (("sms", sms_count), ("lms", lms_count), ("kakao", kakao_count)):
        end = start + count
        for first in range(start, end, batch_size):
            ranges.append((channel, first, min(first + batch_size, end) - 1))
        start = end
    return ranges


def plan_job(conn: Connection, job_id: int, batch_size: int, window: int) -> list[BatchRef]:
    """Create the job's batches if not done yet; return the first ones to publish (see `top_up`)."""
    with conn.transaction():
        row = conn.execute(
            "SELECT planned_at, sms_count, lms_count, kakao_count, status FROM jobs WHERE id = %s FOR UPDATE",
            (job_id,),
        ).fetchone()
        if row is None:
            return []
        planned_at, sms_count, lms_count, kakao_count, status = row
        if not may_submit(status) or status in (JobStatus.SCHEDULED, JobStatus.PREPARING):
            # Cancelled before planning, a reservation not due yet, a resend still being
            # filled: nothing to plan (a plan_job message for it is harmless).
            return []
        if planned_at is None:
            ranges = batch_ranges(sms_count, lms_count, batch_size, kakao_count)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO batches (job_id, seq, channel, first_seq, next_seq, last_seq)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (job_id, seq, channel, first, first, last)
                        for seq, (channel, first, last) in enumerate(ranges)
                    ],
                )
            conn.execute(
                "UPDATE jobs SET planned_at = now(), status = 'sending'"
                " WHERE id = %s AND status = 'accepted'",
                (job_id,),
            )
    return top_up(conn, job_id, window)


# The gate is a per-job try-lock: a top-up running while another one of the same job is still
# in its statement does nothing. Without it, every worker thread finishing a batch of one job
# queued behind the others' row locks (100-500 ms each under load, against ~3 ms alone).
_TOP_UP = (
    """
    WITH gate AS MATERIALIZED (
        SELECT pg_try_advisory_xact_lock(hashtextextended('balsong.top_up', %(job)s)) AS open
    ), outstanding AS MATERIALIZED (
        SELECT channel, count(*) FILTER (WHERE state = 'claimed' OR enqueued_at IS NOT NULL) AS n
        FROM batches
        WHERE (SELECT open FROM gate) AND job_id = %(job)s AND state IN ('planned', 'claimed')
        GROUP BY channel
    ), candidates AS MATERIALIZED (
        -- Computed once (materialized): inlined, the planner (which takes a job's batches for a
        -- handful until the table is analysed) ranked the job's planned batches again for each
        -- of them: 2 s a top-up at 1,000 batches, the workers' PostgreSQL sessions using both
        -- CPUs, and a 1,000,000-recipient job sent at 10,000/s.
        SELECT seq FROM (
            SELECT b.seq, row_number() OVER (PARTITION BY b.channel ORDER BY b.seq) AS rank, o.n
            FROM batches b JOIN outstanding o USING (channel)
            WHERE b.job_id = %(job)s AND b.state = 'planned' AND b.enqueued_at IS NULL
        ) ranked
        WHERE rank <= %(window)s - n
    )
    UPDATE batches b SET enqueued_at = now()
    FROM candidates c, jobs j
    WHERE b.job_id = %(job)s AND b.seq = c.seq AND j.id = b.job_id
      AND b.state = 'planned' AND b.enqueued_at IS NULL AND """
    + JOB_MAY_SUBMIT
    + """
    RETURNING b.seq, b.channel, j.priority
"""
)


def top_up(conn: Connection, job_id: int, window: int) -> list[BatchRef]:
    """Mark enqueued, and return to publish, the job's next batches: per channel, enough that
    ``window`` are in the queue or being sent.

    The window is the fair share: a job never has (many) more than ``window`` batches per
    channel in the queue, so two jobs sending at once take turns rather than one job's whole
    backlog queueing ahead of the other's. One statement, no lock held across round trips.
    While another top-up of the same job is in its statement, this one does nothing and returns
    no batch: that one fills the window, and a slot it did not see free is filled by the next
    batch to finish or by the outbox. Marking comes before publishing; a batch marked but never
    published (a crash in between) is published again by the outbox after
    ``republish_after_seconds`` (a duplicate message is harmless: only one can claim the batch)."""
    rows = conn.execute(_TOP_UP, {"job": job_id, "window": window}).fetchall()
    return sorted(BatchRef(job_id, int(seq), channel, priority) for seq, channel, priority in rows)


def initial_counts(conn: Connection, job_id: int) -> counters.JobCounts | None:
    """A freshly planned job's counters: valid recipients queued, intake failures by reason;
    None for a job not to be planned yet (a reservation, a resend being filled)."""
    row = conn.execute(
        "SELECT created_at, total, sms_count + lms_count + kakao_count, status FROM jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    created_at, total, valid, status = row
    if status in (JobStatus.SCHEDULED, JobStatus.PREPARING):
        return None
    if not may_submit(status):
        # Cancelled (perhaps before planning, its recipients already final): count what is.
        return counters.recount(conn, job_id, created_at)
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
    counts = initial_counts(conn, job_id)
    if counts is not None:
        counters.initialise(redis, keys, job_id, counts)


def unplanned_jobs(conn: Connection, older_than_seconds: float, limit: int = 100) -> list[int]:
    """Jobs committed but still not planned after ``older_than_seconds`` (the outbox)."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE planned_at IS NULL AND status = 'accepted'"
        " AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def jobs_with_unpublished_batches(conn: Connection, limit: int = 1000) -> list[int]:
    """Jobs with batches never published yet (whose window may need topping up)."""
    rows = conn.execute(
        "SELECT DISTINCT job_id FROM batches WHERE state = 'planned' AND enqueued_at IS NULL"
        " ORDER BY job_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def mark_unpublished(conn: Connection, batches: Sequence[BatchRef]) -> None:
    """Batches whose message could not be published (the broker is down): the outbox's next
    sweep (`lost_batches`) publishes them again, without waiting ``republish_after_seconds``."""
    if batches:
        conn.execute(
            "UPDATE batches SET enqueued_at = '-infinity' WHERE state = 'planned'"
            " AND (job_id, seq) IN (SELECT * FROM unnest(%s::bigint[], %s::int[]))",
            ([b.job_id for b in batches], [b.seq for b in batches]),
        )


def lost_batches(conn: Connection, older_than_seconds: float, limit: int = 1000) -> list[BatchRef]:
    """Batches published long ago and never claimed since: their message may be lost. Marks
    them published now (so the next sweep waits again) and returns them to publish again."""
    rows = conn.execute(
        """
        UPDATE batches b SET enqueued_at = now() FROM jobs j
        WHERE j.id = b.job_id AND """
        + JOB_MAY_SUBMIT
        + """ AND (b.job_id, b.seq) IN (
            SELECT job_id, seq FROM batches
            WHERE state = 'planned' AND enqueued_at < now() - make_interval(secs => %s)
            ORDER BY job_id, seq LIMIT %s)
        RETURNING b.job_id, b.seq, b.channel, j.priority
        """,
        (older_than_seconds, limit),
    ).fetchall()
    return sorted(BatchRef(int(j), int(s), c, p) for j, s, c, p in rows)


#: A job this large refreshes its recipients partition's planner statistics once it is planned.
ANALYZE_AFTER_ROWS = 10_000


def refresh_statistics(conn: Connection, job_id: int) -> bool:
    """ANALYZE the month's recipients partition after a large job went in, if its statistics are
    missing or older than the job. True if it ran.

    Autovacuum analyses a table only after its naptime and once 10 % of it changed; until then a
    fresh partition looks empty to the planner, which then picks plans that read a whole job per
    recipient for the claim, flush and report queries of exactly the job that just arrived.
    """
    job = conn.execute("SELECT created_at, total FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if job is None or job[1] < ANALYZE_AFTER_ROWS:
        return False
    new_rows = job[1]
    name = f"recipients_{job[0].astimezone(UTC):%Y_%m}"
    row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (name,)).fetchone()
    if row is None or (row[0] >= 0 and new_rows < 0.1 * row[0]):
        return False
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    return True
