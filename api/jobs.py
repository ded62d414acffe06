"""Job routes: submit a job, list the history, read a job, page through its recipients."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from api import cursors, exports, submission
from api.auth import principal
from api.intake_body import IntakeSlot
from api.job_actions import perform_resume
from api.problems import problem
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts.tenants import Principal
from engine.callbacks.urls import MAX_URL_LENGTH
from engine.errors import ValidationError
from engine.intake import client_reference
from engine.intake.job_request import JobRequest
from engine.intake.job_store import StoredJob
from engine.reporting import history, views
from engine.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", default_response_class=JSONResponse)

#: Longest Idempotency-Key accepted.
IDEMPOTENCY_KEY_MAX = 200

#: A ``reference`` (engine.intake.client_reference): 1 to 100 characters, no control character.
REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": client_reference.MAX_LENGTH,
}

JOB_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["channel", "sender", "recipients"],
    "properties": {
        "channel": {"type": "string", "enum": ["sms", "lms", "auto", "kakao"]},
        "template_code": {"type": "string", "description": "KakaoTalk: the approved AlimTalk template"},
        "fallback": {
            "type": "object",
            "description": "KakaoTalk: SMS/LMS text for recipients whose Kakao message fails",
            "properties": {
                "channel": {"type": "string", "enum": ["sms", "lms", "auto"]},
                "body": {"type": "string"},
                "title": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "sender": {"type": "string", "description": "A registered sender number"},
        "title": {"type": "string", "description": "LMS title (at most 40 bytes in EUC-KR)"},
        "body": {"type": "string", "description": "Message text; #{name} is filled per recipient"},
        "priority": {"type": "string", "enum": ["bulk", "transactional"], "default": "bulk"},
        "kind": {
            "type": "string",
            "enum": ["manual", "automatic", "scheduled"],
            "default": "manual",
            "description": "manual: a person pressed send; automatic: an upstream system's trigger; "
            "a job with scheduled_at is kind scheduled",
        },
        "scheduled_at": {
            "type": "string",
            "format": "date-time",
            "description": "Reservation: ISO 8601 time to send at, in the future and at most 60 days ahead; "
            "without an offset it is read as KST (e.g. 2026-12-01T09:00:00 is 09:00 in Korea)",
        },
        "advertisement": {
            "type": "boolean",
            "default": False,
            "description": "Advertising (광고): the body must carry the label and a free 080 opt-out line, "
            "and is not sent 21:00-08:00 KST",
        },
        "track_links": {
            "type": "boolean",
            "default": False,
            "description": "SMS/LMS: each link becomes a per-recipient short link counting clicks",
        },
        "reference": {**REFERENCE_SCHEMA, "description": "The caller's own id for the job"},
        "callback_url": {
            "type": "string",
            "maxLength": MAX_URL_LENGTH,
            "description": "https URL this job's status callbacks go to (default: the tenant's, see "
            "PUT /v1/callback); public addresses only, never balsong itself",
        },
        "recipients": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["phone"],
                "properties": {
                    "phone": {"type": "string"},
                    "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                    "member_id": {"type": "string"},
                    "reference": {
                        **REFERENCE_SCHEMA,
                        "description": "The caller's own id for the recipient (an order or member number)",
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


@router.post(
    "",
    status_code=202,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": JOB_REQUEST_SCHEMA}}}
    },
)
async def submit_job(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Accept a job: 202 with its id once the job and every recipient are committed."""
    require_for(Action.SEND, who)
    limits = await run_in_threadpool(submission.check_request_rate, who.tenant_id)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationError("Idempotency-Key", f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    try:
        async with IntakeSlot(request, who.tenant_id, limits) as slot:
            job_request = await slot.read()
            stored = await run_in_threadpool(_accept, who, job_request, idempotency_key)
    except ClientDisconnect:
        log.info("job submission abandoned by its client mid-body")
        return problem(400, "client_disconnected", "the body ended before it was whole")  # nobody reads it
    if stored.created and not stored.scheduled:
        await run_in_threadpool(submission.plan, stored.job_id)
    return JSONResponse({"job_id": stored.job_id}, status_code=202 if stored.created else 200)


def _accept(who: Principal, job_request: JobRequest, idempotency_key: str | None) -> StoredJob:
    job = submission.prepare(
        job_request.fields, body_sha256=job_request.body_sha256, origin="api", defer_classification=True
    )
    return submission.store(who.tenant_id, job, idempotency_key, actor=who.actor)


@router.get("")
def list_jobs(
    who: Annotated[Principal, Depends(principal)],
    created_from: Annotated[str | None, Query(description="first day, YYYY-MM-DD (KST)")] = None,
    created_to: Annotated[str | None, Query(description="last day, included, YYYY-MM-DD (KST)")] = None,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
    reference: Annotated[str | None, Query(description="the job's reference, exactly")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: int = 20,
) -> JSONResponse:
    """The tenant's jobs, newest first, with their counts; filters by creation day, status, channel,
    kind, reference."""
    require_for(Action.LIST_JOBS, who)
    job_filter = history.JobFilter(
        created_from=history.parse_day("created_from", created_from),
        created_to=history.parse_day("created_to", created_to),
        status=status,
        channel=channel,
        kind=kind,
        reference=reference,
    )
    scope = cursors.jobs_scope(who.tenant_id)
    position = cursors.open_cursor(scope, cursor)
    rt = get_runtime()
    # History may lag the primary by the replica's delay (docs/scaling.md); a job's own page reads
    # the primary, so a job just submitted is always found there.
    with rt.read_pool.connection() as conn:
        page = history.list_jobs(
            conn, rt.redis, rt.keys, who.tenant_id, job_filter, cursor=position, limit=limit
        )
    return JSONResponse(cursors.signed(page, scope))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv; charset=utf-8": {}}}},
)
def export_jobs(
    who: Annotated[Principal, Depends(principal)],
    created_from: Annotated[str | None, Query(description="first day, YYYY-MM-DD (KST)")] = None,
    created_to: Annotated[str | None, Query(description="last day, included, YYYY-MM-DD (KST)")] = None,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
    format: Annotated[str, Query(description="csv")] = "csv",
) -> StreamingResponse:
    """The tenant's jobs (발송 자료), newest first, one CSV row each: send time, kind, channel,
    sender, content, template code, counts, charged and refunded points, origin, deletion date
    (see ``engine.reporting.job_list_export``). Filters as ``GET /v1/jobs``; streamed."""
    job_filter = history.JobFilter(
        created_from=history.parse_day("created_from", created_from),
        created_to=history.parse_day("created_to", created_to),
        status=status,
        channel=channel,
        kind=kind,
    )
    return exports.export_job_list(who, job_filter, format)


@router.get("/{job_id}")
def get_job(job_id: int, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """A job's status, times, content, counts and failures grouped by reason."""
    require_for(Action.VIEW_JOB, who)
    rt = get_runtime()
    with rt.pool.connection() as conn:
        return JSONResponse(views.job_view(conn, rt.redis, rt.keys, who.tenant_id, job_id))


@router.post("/{job_id}/resume")
def resume_job(job_id: int, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """Resume a job paused for its failure ratio: its remaining batches are sent (409 if it is
    not paused). It is not paused again by the ratio."""
    require_for(Action.RESUME, who)
    perform_resume(who.tenant_id, job_id, actor=who.actor)
    rt = get_runtime()
    with rt.pool.connection() as conn:
        return JSONResponse(views.job_view(conn, rt.redis, rt.keys, who.tenant_id, job_id))


@router.get("/{job_id}/recipients")
def get_recipients(
    job_id: int,
    who: Annotated[Principal, Depends(principal)],
    status: str | None = None,
    reason: Annotated[str | None, Query(description="reason code")] = None,
    channel: Annotated[str | None, Query(description="channel actually used: sms, lms or kakao")] = None,
    phone: Annotated[str | None, Query(description="whole phone number or its last four digits")] = None,
    reference: Annotated[str | None, Query(description="the recipient's reference, exactly")] = None,
    sent_from: Annotated[str | None, Query(description="ISO 8601; without an offset, KST")] = None,
    sent_to: Annotated[str | None, Query(description="ISO 8601, excluded; without an offset, KST")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: int = 100,
) -> JSONResponse:
    """A page of recipients (masked phone numbers), filtered by outcome, channel, number, reference
    and time."""
    require_for(Action.VIEW_RECIPIENTS, who)
    scope = cursors.recipients_scope(who.tenant_id, job_id)
    position = cursors.open_cursor(scope, cursor)
    with get_runtime().read_pool.connection() as conn:
        page = views.list_recipients(
            conn,
            who.tenant_id,
            job_id,
            status=status,
            reason=reason,
            channel=channel,
            phone=phone,
            reference=reference,
            sent_from=history.parse_instant("sent_from", sent_from),
            sent_to=history.parse_instant("sent_to", sent_to),
            after=None if position is None else int(position),
            limit=limit,
        )
    return JSONResponse(cursors.signed(page, scope))
