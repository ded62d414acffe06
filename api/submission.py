"""Making a job: the one path POST /v1/jobs and the console's send page (발송하기) both take.

`prepare` validates and classifies a job request (`engine.intake.intake.prepare_job`, with the
provider's templates for AlimTalk), checks its callback URL and, for advertising, the time it
would go out (`engine.intake.compliance`); `store` commits it (`engine.intake.job_store`),
reserving its cost; `plan` publishes its plan. The console's check step runs `prepare` and
`engine.intake.job_store.quote_job` on the same request to show what `store` would do, so a
rule is never written twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from carriers.errors import CarrierRejected
from engine.callbacks import urls
from engine.intake import intake_limits
from engine.intake.compliance import check_send_time
from engine.intake.intake import PreparedJob, prepare_job
from engine.intake.job_store import PartitionCache, StoredJob, store_job
from engine.lifecycle.pipeline_metrics import count_intake_failures
from engine.runtime import get_runtime

log = logging.getLogger(__name__)
_partitions = PartitionCache()


def check_request_rate(tenant_id: int) -> intake_limits.IntakeLimits:
    """Count a submission against the tenant's rate (IntakeLimited past it); the tenant's limits."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        limits = intake_limits.limits_for(conn, rt.settings, tenant_id)
    intake_limits.check_request_rate(rt.redis, rt.keys, tenant_id, limits, rt.clock.now())
    return limits


def prepare(
    fields: Any, *, body_sha256: bytes, origin: str = "api", defer_classification: bool = False
) -> PreparedJob:
    """A job request validated and classified, ready for `store`.

    Parameters:
      fields: the request's top-level fields, as POST /v1/jobs takes them.
      body_sha256: the request's fingerprint, telling an idempotent retry from another request.
      origin: ``api`` or ``console``.
      defer_classification: leave the recipients' classification to `store`, which stores them
        as they are classified (`engine.intake.intake.prepare_job`); for a caller that stores
        the job at once and reads no row before.

    Raises:
      ValidationError: the request cannot be accepted (the engine's reason and field).
    """
    rt = get_runtime()
    now = rt.clock.now()
    job = prepare_job(
        fields,
        max_recipients=rt.settings.max_recipients_per_job,
        kakao_template=kakao_template,
        now=now,
        reservation_horizon_days=rt.settings.reservation_horizon_days,
        link_base_url=rt.settings.link_base_url,
        defer_classification=defer_classification,
    )
    if job.callback_url is not None:
        job.callback_url = urls.check_setting(job.callback_url, "callback_url", rt.settings)
    job.request_hash = body_sha256
    job.origin = origin
    if job.advertisement:
        # A reservation is judged by when it will go out, not when it was made.
        if job.scheduled_at is not None:
            check_send_time(job.scheduled_at, "scheduled_at")
        else:
            check_send_time(now, "advertisement")
    return job


def store(tenant_id: int, job: PreparedJob, idempotency_key: str | None, *, actor: str) -> StoredJob:
    """Commit a prepared job and reserve its cost, and audit who submitted it (``actor``, in the
    same transaction); see `engine.intake.job_store.store_job` for what it raises."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        stored = store_job(
            conn,
            tenant_id=tenant_id,
            job=job,
            now=rt.clock.now(),
            idempotency_key=idempotency_key,
            partitions=_partitions,
            settings=rt.settings,
            actor=actor,
        )
    if stored.created:
        log.info(
            "job accepted",
            extra={
                "job_id": stored.job_id,
                "channel": job.requested_channel,
                "recipients": job.total,
                "origin": job.origin,
            },
        )
        if job.invalid:
            count_intake_failures(
                job.requested_channel, Counter(row.reason_code or "other" for row in job.invalid)
            )
    return stored


def kakao_template(code: str) -> Any:
    """The provider's approved template (cached by the adapter); LookupError if it has none."""
    try:
        return get_runtime().kakao_carrier.template(code)
    except CarrierRejected as exc:
        raise LookupError(code) from exc


def plan(job_id: int) -> None:
    """Publish the job's plan. The job is durable already: if publishing fails, the scheduler's
    outbox plans it later."""
    from actors.publish import publish_plan

    try:
        publish_plan(job_id)
    except Exception:
        log.exception("could not publish plan_job; the outbox will plan the job", extra={"job_id": job_id})
