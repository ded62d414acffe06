"""Job statuses, and the one place that says whether a job may plan and submit batches.

    scheduled -> accepted -> sending -> completed | partially_failed | failed
    scheduled -> cancelled | missed
    preparing -> accepted (a resend job once its recipients are copied) | cancelled
    accepted / sending -> cancelled

Every path that would plan a batch or hand one to a carrier asks `may_submit`: planning
(`engine.planning.plan_job`), the sending of a claimed batch (`engine.sending`: the claim
already joins jobs and returns its status, so the check costs one comparison; reconciliation
goes the same way), and a batch about to wait for a retry (`current_status`). A status
that must stop new batches (a future ``paused``) joins `HALTED_STATUSES`; a batch that comes up
while its job is halted ends its slice as ``SliceEnd.HALTED``, and `actors.jobs.finish_slice`
decides what becomes of it (for a cancelled job: dropped, its recipients ``cancelled``).
"""

from __future__ import annotations

from psycopg import Connection

SCHEDULED, PREPARING, ACCEPTED, SENDING = "scheduled", "preparing", "accepted", "sending"
COMPLETED, PARTIALLY_FAILED, FAILED = "completed", "partially_failed", "failed"
CANCELLED, MISSED = "cancelled", "missed"

#: Statuses of a job that has ended: nothing of it will be sent any more.
FINISHED_STATUSES = (COMPLETED, PARTIALLY_FAILED, FAILED, CANCELLED, MISSED)
#: Statuses in which a job plans and submits no new batch (batches already with a carrier
#: stay, and are reported).
HALTED_STATUSES = (CANCELLED,)
#: The condition (on the job, aliased ``j``) for any batch of it to be claimed or published:
#: a paused job's batches stay where they are (planned or waiting) until it is resumed. A
#: cancelled job's batches, by contrast, are claimed and dropped (`may_submit`), so that its
#: recipients end ``cancelled`` and the job finishes.
JOB_MAY_SUBMIT = "j.status <> 'paused'"
#: What a job's ``kind`` may be: chosen at intake (manual, automatic) or implied (scheduled).
KINDS = ("manual", "scheduled", "automatic")


def may_submit(status: str) -> bool:
    """May a job in ``status`` plan batches and submit them to a carrier?"""
    return status not in HALTED_STATUSES


def current_status(conn: Connection, job_id: int) -> str | None:
    """The job's status read now (off the hot path: for a batch about to wait for a retry,
    whose claim-time status may be stale); None if there is no such job."""
    row = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else str(row[0])
