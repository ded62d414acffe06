"""Operator actions on a job: cancel it, resend its failures, resume it.

Each ``perform_*`` is the API's and the console's one way to do the action, and writes who did
it (``actor``, `engine.accounts.audit`) to the audit log in the action's own transaction.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import principal
from api.inputs import load_json
from api.problems import problem
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts import audit
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import Principal
from engine.dispatch import planning
from engine.dispatch.cancel import CancelResult, cancel_job
from engine.errors import JobStateConflict, ResendInProgress, ValidationError
from engine.inputs import refuse_unknown
from engine.intake.job_store import PartitionCache, StoredJob
from engine.intake.resend import create_resend, validate_reasons
from engine.lifecycle import pausing
from engine.reporting.views import kst
from engine.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", default_response_class=JSONResponse)
_partitions = PartitionCache()

#: Longest Idempotency-Key accepted (as for job intake).
IDEMPOTENCY_KEY_MAX = 200

RESEND_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "description": "Only failures with one of these reason codes (default: every failure)",
        }
    },
    "additionalProperties": False,
}


def _conflict(exc: JobStateConflict) -> JSONResponse:
    if isinstance(exc, ResendInProgress):
        return problem(409, exc.code, str(exc), job_id=exc.resend_job_id)
    return problem(409, exc.code, str(exc))


@router.post("/{job_id}/cancel")
async def cancel(job_id: int, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """Cancel a job: a reservation (or a job not yet started) whole; a running job stops
    submitting new batches, and ends once what is already with a carrier is reported.
    Cancelling a cancelled job again changes nothing; a finished job answers 409."""
    require_for(Action.CANCEL, who)
    try:
        result = await run_in_threadpool(perform_cancel, who.tenant_id, job_id, actor=who.actor)
    except JobStateConflict as exc:
        return _conflict(exc)
    return JSONResponse(
        {
            "job_id": result.job_id,
            "status": "cancelled",
            "cancelled_at": kst(result.cancelled_at),
            "finished": result.finished,
        }
    )


def perform_cancel(tenant_id: int, job_id: int, *, actor: str) -> CancelResult:
    """Cancel the job and publish its batches to be dropped (the API's and the console's cancel).
    A job cancelled already is not cancelled (nor audited) again."""
    from actors.publish import publish_batches

    rt = get_runtime()
    with rt.pool.connection() as conn, conn.transaction():
        result = cancel_job(conn, tenant_id, job_id, rt.clock.now())
        if not result.already:
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=actor,
                action=AuditAction.JOB_CANCEL,
                subject=audit.job_subject(job_id),
                details={"finished": result.finished},
            )
    try:
        publish_batches(result.to_drop)
    except Exception:
        # The cancel is committed; the outbox and the retry pump publish these batches later,
        # and they are dropped then.
        log.exception("could not publish a cancelled job's batches", extra={"job_id": job_id})
    return result


@router.post(
    "/{job_id}/resend",
    status_code=202,
    openapi_extra={
        "requestBody": {"required": False, "content": {"application/json": {"schema": RESEND_REQUEST_SCHEMA}}}
    },
)
async def resend(
    job_id: int,
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """A new job for this finished job's failed (and expired) recipients, with the same
    content, linked by ``resent_from``: 202 with its id at once, while the resend_failed actor
    copies the recipients. The same Idempotency-Key again returns the same job (200). While a
    resend of any of the same failures (same job, overlapping ``reasons``) has not finished,
    another is refused: 409 ``resend_in_progress``, with that resend's ``job_id``."""
    require_for(Action.RESEND, who)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationError("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    raw = await request.body()
    reasons = None
    if raw.strip():
        decoded = load_json(raw)
        if not isinstance(decoded, dict):
            raise ValidationError("body", 'must be a JSON object such as {"reasons": ["carrier_3015"]}')
        refuse_unknown(decoded, RESEND_REQUEST_SCHEMA["properties"], "a resend")
        reasons = validate_reasons(decoded.get("reasons"))
    try:
        stored = await run_in_threadpool(
            perform_resend, who.tenant_id, job_id, reasons, idempotency_key, actor=who.actor
        )
    except JobStateConflict as exc:
        return _conflict(exc)
    return JSONResponse(
        {"job_id": stored.job_id, "resent_from": job_id}, status_code=202 if stored.created else 200
    )


def perform_resend(
    tenant_id: int, job_id: int, reasons: list[str] | None, idempotency_key: str | None, *, actor: str
) -> StoredJob:
    """Store the resend job and publish resend_failed for it (the API's and the console's resend);
    audited with the job stored (a repeated Idempotency-Key makes no job and no entry)."""
    from actors.publish import publish_resend

    rt = get_runtime()
    with rt.pool.connection() as conn:
        stored = create_resend(
            conn,
            tenant_id=tenant_id,
            source_job_id=job_id,
            reasons=reasons,
            now=rt.clock.now(),
            idempotency_key=idempotency_key,
            partitions=_partitions,
            settings=rt.settings,
            actor=actor,
        )
    if stored.created:
        try:
            publish_resend(stored.job_id)
        except Exception:
            log.exception(
                "could not publish resend_failed; the outbox will fill the job",
                extra={"job_id": stored.job_id},
            )
    return stored


def perform_resume(tenant_id: int, job_id: int, *, actor: str) -> None:
    """Resume a job paused for its failure ratio and publish its next batches (the API's and
    the console's resume); JobNotPaused if it is not paused."""
    from actors.publish import publish_batches

    rt = get_runtime()
    with rt.pool.connection() as conn:
        with conn.transaction():
            pausing.resume_job(conn, job_id, tenant_id)
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=actor,
                action=AuditAction.JOB_RESUME,
                subject=audit.job_subject(job_id),
            )
        refs = planning.top_up(conn, job_id, rt.settings.batch_window)
    try:
        publish_batches(refs)
    except Exception:
        # Marked enqueued already: the outbox publishes them again after republish_after_seconds.
        log.exception("could not publish a resumed job's batches", extra={"job_id": job_id})
