"""The one place that says whether a job may plan and submit batches.

The statuses themselves are `engine.lifecycle.statuses.JobStatus`. Every path that would plan a
batch or hand one to a carrier asks `may_submit`: planning (`engine.dispatch.planning.plan_job`), the
sending of a claimed batch (`engine.dispatch.claims`: the claim already joins jobs and returns its
status, so the check costs one comparison; reconciliation goes the same way), and a batch about
to wait for a retry (`current_status`). A batch that comes up while its job is halted
(`HALTED_JOB_STATUSES`) ends its slice as ``SliceEnd.HALTED``, and `engine.lifecycle.batches.finish_slice`
decides what becomes of it (for a cancelled job: dropped, its recipients ``cancelled``). A
paused job is not halted: its batches are never claimed (`JOB_MAY_SUBMIT`) until it resumes.
"""

from __future__ import annotations

from psycopg import Connection

from engine.lifecycle.statuses import HALTED_JOB_STATUSES, JobStatus

#: The condition (on the job, aliased ``j``) for any batch of it to be claimed or published:
#: a paused job's batches stay where they are (planned or waiting) until it is resumed. A
#: cancelled job's batches, by contrast, are claimed and dropped (`may_submit`), so that its
#: recipients end ``cancelled`` and the job finishes.
JOB_MAY_SUBMIT = f"j.status <> '{JobStatus.PAUSED}'"


def may_submit(status: str) -> bool:
    """May a job in ``status`` plan batches and submit them to a carrier?"""
    return status not in HALTED_JOB_STATUSES


def current_status(conn: Connection, job_id: int) -> str | None:
    """The job's status read now (off the hot path: for a batch about to wait for a retry,
    whose claim-time status may be stale); None if there is no such job."""
    row = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else str(row[0])
