"""Deciding that a job is finished, and with which status.

A job is finished when it was planned, every batch is recorded and no recipient is queued or in
flight. The live counters tell cheaply which jobs may be finished; PostgreSQL has the last word
(the counters are a hint, never the truth).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import Connection
from redis import Redis

from engine.callbacks.outbox import record_jobs_finished
from engine.keys import Keys
from engine.lifecycle import counters, job_stats
from engine.lifecycle.settlement import settle_locked
from engine.lifecycle.statuses import JobStatus


def final_status(total: int, failed: int) -> JobStatus:
    """A finished job's status from its recipients' outcomes."""
    if failed == 0:
        return JobStatus.COMPLETED
    if failed >= total:
        return JobStatus.FAILED
    return JobStatus.PARTIALLY_FAILED


def finish_completed_jobs(
    conn: Connection, redis: Redis, keys: Keys, job_ids: Sequence[int], *, use_hints: bool = True
) -> list[int]:
    """Mark finished those of ``job_ids`` that are; returns the ids of the jobs finished now.

    ``use_hints``: skip jobs whose live counters still show work left. The scheduler's sweep
    turns it off: counters that drifted (a lost Redis, a reconciliation re-recording outcomes
    not yet flushed) must not keep a finished job open for ever."""
    pipe = redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(keys.job_counts(job_id), "queued", "in_flight")
    hints = pipe.execute()
    finished = []
    for job_id, (queued, in_flight) in zip(job_ids, hints, strict=True):
        if use_hints and queued is not None and (int(queued) > 0 or int(in_flight or 0) > 0):
            continue
        if finish_if_complete(conn, job_id):
            finished.append(job_id)
    for job_id in finished:
        # The job's rows are final now: its counters become exactly what PostgreSQL says, which
        # corrects any drift a lost Redis caused (increments applied to a hash being recounted).
        recount_into_redis(conn, redis, keys, job_id)
    return finished


def recount_into_redis(conn: Connection, redis: Redis, keys: Keys, job_id: int) -> None:
    row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is not None:
        counters.replace(redis, keys, job_id, counters.recount(conn, job_id, row[0]))


def finish_if_complete(conn: Connection, job_id: int) -> bool:
    """Check PostgreSQL and, if nothing of the job is left to do, set its final status."""
    with conn.transaction():
        row = conn.execute(
            """
            SELECT j.created_at FROM jobs j
            WHERE j.id = %s AND j.completed_at IS NULL AND j.planned_at IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.job_id = j.id AND b.state <> 'recorded')
            FOR UPDATE
            """,
            (job_id,),
        ).fetchone()
        if row is None:
            return False
        created_at = row[0]
        counts = conn.execute(
            """
            SELECT count(*) FILTER (WHERE status <> 'fallback'),
                   count(*) FILTER (WHERE status IN ('failed', 'expired')),
                   count(*) FILTER (WHERE status IN ('queued', 'submitted'))
            FROM recipients WHERE job_id = %s AND job_created_at = %s
            """,
            (job_id, created_at),
        ).fetchone()
        assert counts is not None
        total, failed, open_ = counts
        if open_:
            return False
        # A cancelled job keeps its status: what it sent is in its counts.
        conn.execute(
            "UPDATE jobs SET status = CASE WHEN status = %s THEN status ELSE %s END, completed_at = now()"
            " WHERE id = %s",
            (JobStatus.CANCELLED, final_status(total, failed), job_id),
        )
        record_jobs_finished(conn, [job_id])
        # In the same transaction: a finished job is in its tenant's statistics exactly once, and
        # never seen unsettled. Statistics first: settlement takes the tenant's balance lock,
        # which intake of the tenant waits for, so it is held only for the refund.
        job_stats.add_finished_jobs(conn, [job_id])
        settle_locked(conn, job_id)
    return True
