"""The console's send page (발송하기): compose, bring recipients, map columns, check, confirm.

1. ``GET /console/send``: the form. SMS/LMS (channel auto/sms/lms, LMS title) or AlimTalk (a
   template from the provider's approved ones, an SMS/LMS fallback text); the sender from the
   tenant's approved numbers; advertising (the label and the free 080 line added by
   `engine.intake.compliance.with_advertising_marks`); an optional reservation in KST; recipients
   pasted or uploaded (.xlsx / .csv).
2. ``POST /console/send``: the recipients are read row by row (`engine.intake.recipient_files`)
   and staged in a draft (`api.console.send_drafts`); on to the draft's page.
3. ``GET /console/send/{token}``: which column is what (phone, variables by name, member id,
   reference); ``POST .../check`` keeps the choice.
4. ``GET /console/send/{token}/check``: what sending would do (`api.console.send_check`),
   computed by the code that will do it (`api.submission.prepare`,
   `engine.intake.job_store.quote_job`): valid recipients per
   channel, bad numbers by row, duplicates, opted-out numbers, the cost and the balance after,
   the first messages as they will read; or the engine's refusal.
5. ``POST /console/send/{token}/confirm``: the job is stored (origin ``console``) under the
   draft's idempotency key, so a double click makes one job; on to the job's page.

Every step needs the ``send`` scope (`api.scopes.Action.SEND`), as POST /v1/jobs does.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile as StarletteUpload

from api import submission
from api.console import labels, routes, send_drafts
from api.console.send_check import check_result, prepared, refusal
from api.console.send_drafts import Draft
from api.console.session import ConsoleSession, check_csrf, same_origin, session_for
from api.scopes import Action
from carriers.errors import CarrierError
from engine.accounts import billing
from engine.accounts.tenants import list_senders, tenant_name
from engine.errors import (
    BalsongError,
    IdempotencyInProgress,
    InsufficientBalance,
    IntakeLimited,
    NotFound,
    ValidationError,
)
from engine.intake import compliance, recipient_files
from engine.intake.channels import LMS_MAX_BYTES, LMS_TITLE_MAX_BYTES, SMS_MAX_BYTES
from engine.intake.intake import PreparedJob
from engine.intake.template import Template
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
SendSession = Annotated[ConsoleSession, Depends(session_for(Action.SEND))]

templates = Jinja2Templates(directory=routes.HERE / "templates")
templates.env.filters.update(routes.templates.env.filters)
templates.env.filters["points"] = labels.points

#: Compose fields kept in a draft (the form's names).
COMPOSE_FIELDS = (
    "mode",
    "channel",
    "sender",
    "title",
    "body",
    "template_code",
    "fallback_channel",
    "fallback_title",
    "fallback_body",
    "advertisement",
    "opt_out_number",
    "scheduled_date",
    "scheduled_time",
)
#: Largest pasted recipient list, in bytes (larger lists come as a file; Starlette's default
#: for a form field is 1 MB, some 40,000 lines).
PASTE_MAX_BYTES = 8 * 1024 * 1024
#: How long a second confirm of a draft waits for the first one's job, in seconds.
CONFIRM_WAIT_SECONDS = 30.0


def _render(
    request: Request, name: str, session: ConsoleSession, status_code: int = 200, **context: Any
) -> HTMLResponse:
    with get_runtime().pool.connection() as conn:
        context["tenant"] = tenant_name(conn, session.principal.tenant_id)
    response = templates.TemplateResponse(
        request, name, {"session": session, **context}, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- 1. compose -----------------------------------------------------------------------------------


def _compose_context(session: ConsoleSession, compose: dict[str, str]) -> dict[str, Any]:
    rt = get_runtime()
    tenant_id = session.principal.tenant_id
    with rt.pool.connection() as conn:
        senders = [number for number, state in list_senders(conn, tenant_id) if state == "approved"]
        balance = billing.balance(conn, tenant_id).balance
        prices = billing.prices_for(conn, rt.settings, tenant_id)
    template_error = None
    kakao: list[Any] = []
    try:
        kakao = rt.kakao_carrier.templates()
    except CarrierError:
        template_error = "알림톡 템플릿 목록을 불러오지 못했습니다. 잠시 후 다시 여세요."
    return {
        "compose": compose,
        "senders": senders,
        "kakao_templates": kakao,
        "template_error": template_error,
        "balance": balance,
        "prices": prices,
        "quiet_now": compliance.in_quiet_hours(rt.clock.now()),
        "limits": {"sms": SMS_MAX_BYTES, "lms": LMS_MAX_BYTES, "title": LMS_TITLE_MAX_BYTES},
        "ad_label": compliance.AD_LABEL,
    }


@router.get("/send")
def send_page(request: Request, session: SendSession, draft: str | None = None) -> HTMLResponse:
    compose: dict[str, str] = {"mode": "text", "channel": "auto", "fallback_channel": "auto"}
    kept: Draft | None = None
    if draft:
        try:
            kept = send_drafts.load(session, draft)
            compose = kept.compose
        except NotFound:
            kept = None
    return _render(request, "send.html", session, kept=kept, **_compose_context(session, compose))


@router.post("/send")
async def stage_recipients(request: Request, session: SendSession) -> Response:
    """Stage the recipients (a file, pasted lines, or the kept draft's) with the composed message."""
    form = await request.form(max_part_size=PASTE_MAX_BYTES)
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    upload = form.get("recipients_file")
    file = upload if isinstance(upload, StarletteUpload) and upload.filename else None
    return await run_in_threadpool(_stage, request, session, fields, file)


def _stage(
    request: Request, session: ConsoleSession, fields: dict[str, str], upload: StarletteUpload | None
) -> Response:
    check_csrf(session, fields.get("csrf_token", ""))
    compose = {name: fields.get(name, "") for name in COMPOSE_FIELDS}
    max_rows = get_runtime().settings.max_recipients_per_job + 1  # a header row
    pasted = fields.get("recipients_text", "")
    try:
        if upload is not None and upload.filename:
            kind = recipient_files.kind_of(upload.filename)
            # The upload was spooled to disk past 1 MB as it arrived; it is read from there row by row.
            rows = recipient_files.read_rows(upload.file, kind)
            draft = send_drafts.stage(session, compose, upload.filename, rows, max_rows)
        elif pasted.strip():
            rows = recipient_files.pasted_rows(pasted)
            draft = send_drafts.stage(session, compose, "붙여넣기", rows, max_rows)
        elif fields.get("keep_draft"):
            kept = send_drafts.load(session, fields["keep_draft"])
            draft = send_drafts.restage(session, kept, compose)
        else:
            raise ValidationError("recipients", "paste numbers or upload a file")
    except (ValidationError, NotFound) as exc:
        error = refusal(exc) if isinstance(exc, ValidationError) else "앞서 올린 수신자가 만료되었습니다."
        if isinstance(exc, ValidationError) and exc.field == "recipients":
            error = f"수신자를 붙여넣거나 파일을 올리세요. ({exc.reason})"
        context = _compose_context(session, compose)
        return _render(request, "send.html", session, status_code=422, error=error, **context)
    return _redirect(f"/console/send/{draft.token}")


# -- 2. columns -----------------------------------------------------------------------------------


def _body_variables(compose: dict[str, str]) -> tuple[str, ...]:
    if compose.get("mode") == "kakao":
        try:
            return submission.kakao_template(compose.get("template_code", "")).variables  # type: ignore[no-any-return]
        except (LookupError, CarrierError):
            return ()
    return Template.parse(compose.get("body", "")).variables


@router.get("/send/{token}")
def mapping_page(request: Request, token: str, session: SendSession) -> HTMLResponse:
    try:
        draft = send_drafts.load(session, token)
    except NotFound:
        return _render(request, "not_found.html", session, status_code=404)
    variables = _body_variables(draft.compose)
    mapping = draft.column_mapping or recipient_files.guess_mapping(
        draft.sample[0] if draft.sample else [], draft.columns, variables
    )
    return _render(request, "send_columns.html", session, **_columns_context(draft, mapping, variables))


def _columns_context(
    draft: Draft, mapping: recipient_files.ColumnMapping, variables: tuple[str, ...]
) -> dict[str, Any]:
    by_column = {column: name for name, column in mapping.variables.items()}
    columns = []
    for column in range(draft.columns):
        if column == mapping.phone:
            role = recipient_files.PHONE
        elif column == mapping.member_id:
            role = recipient_files.MEMBER_ID
        elif column == mapping.reference:
            role = recipient_files.REFERENCE
        elif column in by_column:
            role = recipient_files.VARIABLE
        else:
            role = recipient_files.SKIP
        heading = draft.sample[0][column] if mapping.header and column < len(draft.sample[0]) else ""
        columns.append({"index": column, "role": role, "name": by_column.get(column, ""), "heading": heading})
    return {"draft": draft, "mapping": mapping, "columns": columns, "variables": variables}


@router.post("/send/{token}/check")
async def choose_columns(request: Request, token: str, session: SendSession) -> Response:
    """Keep the column mapping (fields ``role<N>`` and ``name<N>`` per column), then show the check."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    return await run_in_threadpool(_choose_columns, request, token, session, form)


def _choose_columns(request: Request, token: str, session: ConsoleSession, form: dict[str, str]) -> Response:
    check_csrf(session, form.get("csrf_token", ""))
    try:
        draft = send_drafts.load(session, token)
    except NotFound:
        return _render(request, "not_found.html", session, status_code=404)
    variables: dict[str, int] = {}
    phone = member_id = reference = None
    problems = []
    for column in range(draft.columns):
        role = form.get(f"role{column}", recipient_files.SKIP)
        if role == recipient_files.PHONE:
            if phone is not None:
                problems.append("수신번호 열은 하나만 고르세요.")
            phone = column
        elif role == recipient_files.MEMBER_ID:
            member_id = column
        elif role == recipient_files.REFERENCE:
            reference = column
        elif role == recipient_files.VARIABLE:
            name = form.get(f"name{column}", "").strip().removeprefix("#{").removesuffix("}")
            if not name:
                problems.append(f"{column + 1}열: 변수 이름을 적으세요.")
            elif name in variables:
                problems.append(f"변수 #{{{name}}}에 열이 둘 이상입니다.")
            variables[name] = column
    if phone is None:
        problems.append("수신번호 열을 고르세요.")
    mapping = recipient_files.ColumnMapping(
        phone if phone is not None else 0, variables, member_id, reference, header=form.get("header") == "1"
    )
    if problems:
        context = _columns_context(draft, mapping, _body_variables(draft.compose))
        return _render(
            request, "send_columns.html", session, status_code=422, error=" ".join(problems), **context
        )
    draft.mapping = mapping.as_json()
    send_drafts.save(draft)
    return _redirect(f"/console/send/{token}/check")


# -- 3. check and confirm -------------------------------------------------------------------------


@router.get("/send/{token}/check")
def check_page(request: Request, token: str, session: SendSession) -> HTMLResponse:
    try:
        draft = send_drafts.load(session, token)
    except NotFound:
        return _render(request, "not_found.html", session, status_code=404)
    if draft.column_mapping is None:
        return _render(request, "not_found.html", session, status_code=404)
    if draft.job_id is not None:
        return _redirect(f"/console/jobs/{draft.job_id}")  # type: ignore[return-value]
    try:
        result = check_result(draft, session)
    except (ValidationError, IntakeLimited) as exc:
        return _render(
            request, "send_check.html", session, status_code=422, draft=draft, refused=refusal(exc)
        )
    error = None
    if result["short"]:
        error = refusal(InsufficientBalance(needed=result["cost"], available=result["balance"]))
    return _render(request, "send_check.html", session, draft=draft, result=result, error=error)


@router.post("/send/{token}/confirm")
def confirm(
    request: Request, token: str, session: SendSession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Store the draft's job (once: the draft's token is its Idempotency-Key) and go to its page."""
    check_csrf(session, csrf_token)
    try:
        draft = send_drafts.load(session, token)
    except NotFound:
        return _render(request, "not_found.html", session, status_code=404)
    mapping = draft.column_mapping
    if draft.job_id is not None or mapping is None:
        return _redirect(f"/console/jobs/{draft.job_id}" if draft.job_id else f"/console/send/{token}")
    tenant_id = session.principal.tenant_id
    try:
        submission.check_request_rate(tenant_id)
        job = prepared(draft, mapping)
        stored = _store_once(tenant_id, job, f"console-send-{token}", actor=session.actor)
    except BalsongError as exc:
        return _render(
            request, "send_check.html", session, status_code=422, draft=draft, refused=refusal(exc)
        )
    if stored.created and not stored.scheduled:
        submission.plan(stored.job_id)
    draft.job_id = stored.job_id
    send_drafts.save(draft)
    return _redirect(f"/console/jobs/{stored.job_id}?notice=sent")


def _store_once(tenant_id: int, job: PreparedJob, key: str, *, actor: str) -> Any:
    """Store the job; a second confirm of the draft while the first is storing waits for it and
    gets the same job (the key's advisory lock, `engine.intake.job_store`)."""
    deadline = time.monotonic() + CONFIRM_WAIT_SECONDS
    while True:
        try:
            return submission.store(tenant_id, job, key, actor=actor)
        except IdempotencyInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
