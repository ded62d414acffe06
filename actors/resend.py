"""The resend_failed actor: fills a resend job with its original's failed recipients, then plans it."""

from __future__ import annotations

import dramatiq

from actors.broker import PLAN_QUEUE
from actors.publish import RESEND_FAILED, publish_plan
from engine.intake.resend import fill_resend
from engine.runtime import get_runtime


@dramatiq.actor(
    actor_name=RESEND_FAILED, queue_name=PLAN_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000
)
def resend_failed(job_id: int) -> None:
    """Copy the failed recipients into resend job ``job_id`` (once) and publish its plan_job.

    A redelivered message finds the job filled and only publishes plan_job again, which is
    harmless (planning twice creates no second batch) and covers a crash between the two."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        fill_resend(conn, job_id)
    publish_plan(job_id)
