"""Cancelling a job: a reservation (or a job not yet planned) whole; a running job from now on.

A job never planned (a reservation, a job whose plan_job has not run, a resend still being
filled) is cancelled in one transaction: the job ends ``cancelled`` and every recipient is
``cancelled``; nothing was or will be sent (plan_job refuses a cancelled job).

A running job becomes ``cancelled`` at once but ends only when what is already with a carrier
is reported: batches submitted stay and are counted. Its other batches are dropped where every
batch must pass anyway, the claim (`engine.dispatch.claims`): a cancelled job's batch is claimed, sends
nothing, and its recipients are recorded ``cancelled`` through the result stream, so the Redis
counters and PostgreSQL move together and `balsong recount` agrees. To drop them promptly
rather than at their turn, the cancel publishes at once every batch of the job that is waiting
for a retry or not yet published; should the process die before publishing, the outbox and the
retry pump publish them later, and they are dropped then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import Connection

from engine.callbacks.outbox import record_jobs_finished
from engine.dispatch.planning import BatchRef
from engine.errors import JobStateConflict, NotFound
from engine.intake.reservations import cancel_queued_recipients
from engine.lifecycle import job_stats
from engine.lifecycle.results import CANCELLED_REASON
from engine.lifecycle.statuses import FINISHED_JOB_STATUSES, JobStatus

# Every batch of the job not yet in a worker's hands or in the queue: waiting for a retry, or
# planned but never published. Marked published now; the caller publishes them.
_RELEASE_FOR_DROP = """
    UPDATE batches b SET state = 'planned', due_at = NULL, enqueued_at = now()
    FROM jobs j
    WHERE b.job_id = %(job)s AND j.id = b.job_id
      AND (b.state = 'waiting' OR (b.state = 'planned' AND b.enqueued_at IS NULL))
    RETURNING b.seq, b.channel, j.priority
"""


@dataclass(frozen=True, slots=True)
class CancelResult:
    job_id: int
    cancelled_at: datetime
    #: The job has ended (nothing of it is with a carrier); else it ends once that is reported.
    finished: bool
    #: It was cancelled before this call (cancelling is idempotent).
    already: bool = False
    #: Batches to publish now, so that their claim drops them at once.
    to_drop: list[BatchRef] = field(default_factory=list)


def cancel_job(conn: Connection, tenant_id: int, job_id: int, now: datetime) -> CancelResult:
    """Cancel the tenant's job.

    Raises:
      NotFound: no such job for this tenant.
      JobStateConflict: the job has finished already (``job_finished``).
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT status, planned_at, cancelled_at, completed_at FROM jobs"
            " WHERE id = %s AND tenant_id = %s FOR UPDATE",
            (job_id, tenant_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        status, planned_at, cancelled_at, completed_at = row
        if status == JobStatus.CANCELLED:
            return CancelResult(job_id, cancelled_at, finished=completed_at is not None, already=True)
        if status in FINISHED_JOB_STATUSES:
            raise JobStateConflict(
                "job_finished", f"job {job_id} has already finished ({status}); there is nothing to cancel"
            )
        if planned_at is None:
            conn.execute(
                "UPDATE jobs SET status = %s, cancelled_at = %s, completed_at = %s WHERE id = %s",
                (JobStatus.CANCELLED, now, now, job_id),
            )
            cancel_queued_recipients(conn, [job_id], now, CANCELLED_REASON, "not sent: the job was cancelled")
            record_jobs_finished(conn, [job_id])
            job_stats.add_finished_jobs(conn, [job_id])
            return CancelResult(job_id, now, finished=True)
        conn.execute(
            "UPDATE jobs SET status = %s, cancelled_at = %s WHERE id = %s", (JobStatus.CANCELLED, now, job_id)
        )
        rows = conn.execute(_RELEASE_FOR_DROP, {"job": job_id}).fetchall()
    refs = sorted(BatchRef(job_id, int(seq), channel, priority) for seq, channel, priority in rows)
    return CancelResult(job_id, now, finished=False, to_drop=refs)
