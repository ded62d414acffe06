"""Pausing a job whose recipients fail at the carrier too often, and resuming it.

A job whose failure ratio passes ``pause_failure_ratio`` (once at least ``pause_min_sample`` of
its recipients have a carrier answer) is paused instead of burning the rest of its recipients:
a wrong template or sender, a blocked account, a carrier refusing everything. Its status
becomes ``paused`` with the reason shown in ``GET /v1/jobs/{id}``; no new batch of it is
claimed, published or re-published. A batch already being sent finishes its slice, and a batch
left claimed by a dead worker is still reconciled (the carrier may have it already).

An operator resumes it (``POST /v1/jobs/{id}/resume`` or ``balsong resume JOB``): its waiting
batches are published again. A job resumed once is not paused again by the ratio: someone
decided its failures are acceptable. ``paused_at`` and ``paused_reason`` stay as its history.
"""

from __future__ import annotations

import logging

from psycopg import Connection
from psycopg_pool import ConnectionPool
from redis import Redis

from engine.config import Settings
from engine.errors import JobNotPaused, NotFound
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.statuses import JobStatus

log = logging.getLogger(__name__)

#: Reason codes of failures at (or after) the carrier, as opposed to refusals at intake.
CARRIER_REASONS = ("carrier_", "expired")


def failure_ratio_reason(counts: counters.JobCounts, invalid: int, settings: Settings) -> str | None:
    """Why the job must be paused, or None. Intake refusals (bad numbers) do not count: they
    never reached the carrier."""
    if settings.pause_failure_ratio <= 0:
        return None
    answered = counts.total - counts.queued - invalid
    failed = counts.failed + counts.expired - invalid
    if answered < max(1, settings.pause_min_sample) or failed < settings.pause_failure_ratio * answered:
        return None
    carrier_reasons = {
        code: n for code, n in counts.reasons.items() if n > 0 and code.startswith(CARRIER_REASONS)
    }
    top = max(carrier_reasons, key=lambda code: carrier_reasons[code], default=None)
    most = f"; most common: {top} ({counts.reason_texts.get(top, top)})" if top else ""
    return (
        f"{failed} of the {answered} recipients the carrier answered failed "
        f"({failed / answered:.0%}, limit {settings.pause_failure_ratio:.0%}){most}; "
        "resume the job to send the rest"
    )


def pause_if_failing(pool: ConnectionPool, redis: Redis, keys: Keys, settings: Settings, job_id: int) -> bool:
    """Pause the job if its failure ratio passed the limit; True if this call paused it.

    The live counters decide cheaply whether PostgreSQL needs asking at all (it is asked after
    every slice of every batch): without intake refusals subtracted the ratio is only higher,
    so a job under the limit by them is under it."""
    if settings.pause_failure_ratio <= 0:
        return False
    counts = counters.read(redis, keys, job_id)
    if counts is None or failure_ratio_reason(counts, 0, settings) is None:
        return False
    with pool.connection() as conn:
        return _pause(conn, counts, settings, job_id)


def _pause(conn: Connection, counts: counters.JobCounts, settings: Settings, job_id: int) -> bool:
    row = conn.execute(
        "SELECT invalid_count FROM jobs WHERE id = %s AND status = 'sending' AND paused_at IS NULL", (job_id,)
    ).fetchone()
    if row is None:
        return False
    reason = failure_ratio_reason(counts, int(row[0]), settings)
    if reason is None:
        return False
    paused = conn.execute(
        "UPDATE jobs SET status = 'paused', paused_at = now(), paused_reason = %s"
        " WHERE id = %s AND status = 'sending' AND paused_at IS NULL",
        (reason, job_id),
    ).rowcount
    if paused:
        log.warning("job paused: %s", reason, extra={"job_id": job_id})
    return bool(paused)


def resume_job(conn: Connection, job_id: int, tenant_id: int | None = None) -> None:
    """Set a paused job sending again and make its waiting batches publishable (the caller
    tops the job's window up and publishes). ``tenant_id``: only that tenant's job."""
    with conn.transaction():
        row = conn.execute(
            "SELECT status FROM jobs WHERE id = %s AND (%s::bigint IS NULL OR tenant_id = %s) FOR UPDATE",
            (job_id, tenant_id, tenant_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        if row[0] != JobStatus.PAUSED:
            raise JobNotPaused(f"job {job_id} is {row[0]}, not paused")
        conn.execute("UPDATE jobs SET status = 'sending' WHERE id = %s", (job_id,))
        # Their messages were dropped while the job was paused: publish them again.
        conn.execute(
            "UPDATE batches SET enqueued_at = NULL WHERE job_id = %s AND state = 'planned'", (job_id,)
        )
