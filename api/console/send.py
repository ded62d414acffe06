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
4. ``GET /console/send/{token}/check``: what sending would do, computed by the code that will
   do it (`api.submission.prepare`, `engine.intake.job_store.quote_job`): valid recipients per
   channel, bad numbers by row, duplicates, opted-out numbers, the cost and the balance after,
   the first messages as they will read; or the engine's refusal.
5. ``POST /console/send/{token}/confirm``: the job is stored (origin ``console``) under the
   draft's idempotency key, so a double click makes one job; on to the job's page.

Every step needs the ``send`` scope (`api.scopes.Action.SEND`), as POST /v1/jobs does.
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api import submission
from api.console import routes, send_drafts
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
from engine.intake.job_store import quote_job
from engine.intake.phone import InvalidPhone, normalize_recipient
from engine.intake.template import Template
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
SendSession = Annotated[ConsoleSession, Depends(session_for(Action.SEND))]

templates = Jinja2Templates(directory=routes.HERE / "templates")
templates.env.filters.update(routes.templates.env.filters)

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
#: Bad numbers listed by row on the check page (all are counted).
BAD_ROWS_SHOWN = 100
#: Recipients whose message is shown as it will read.
PREVIEWS = 3
#: How long a second confirm of a draft waits for the first one's job, in seconds.
CONFIRM_WAIT_SECONDS = 30.0

#: The engine's refusals, in the operator's words (the engine's own reason follows).
REFUSALS = {
    "advertising_quiet_hours": (
        "광고성 메시지는 21:00~08:00(한국 시간)에 보낼 수 없습니다. 08:00 이후로 예약하세요."
    ),
    "advertising_label_missing": "광고성 메시지는 (광고)로 시작해야 합니다.",
    "advertising_opt_out_missing": "광고성 메시지에는 무료 수신거부 080 번호가 있어야 합니다.",
    "advertising_not_allowed": "알림톡으로는 광고를 보낼 수 없습니다. 문자(SMS/LMS)로 보내세요.",
    "content_too_long": "내용이 채널의 최대 길이를 넘습니다.",
    "unencodable_text": "문자(SMS/LMS)로 보낼 수 없는 글자(이모지 등)가 있습니다.",
    "template_not_found": "승인된 알림톡 템플릿이 아닙니다.",
    "template_not_approved": "승인되지 않은 알림톡 템플릿입니다.",
    "sender_not_registered": "승인된 발신번호가 아닙니다.",
    "invalid_sender": "발신번호 형식이 올바르지 않습니다.",
    "unsupported_file": "읽을 수 없는 파일입니다. .xlsx 또는 .csv 파일을 올리세요.",
}
#: Reasons a recipient fails at intake, in Korean (the engine's code is shown beside).
REASONS = {
    "empty": "번호 없음",
    "invalid_character": "번호에 쓸 수 없는 문자",
    "not_korean": "국내 번호 아님",
    "unknown_prefix": "없는 국번",
    "too_short": "번호가 짧음",
    "too_long": "번호가 긺",
    "sender_only": "수신할 수 없는 번호(대표번호)",
    "invalid_phone": "잘못된 번호",
    "missing_variable": "변수 값 없음",
    "unencodable_text": "보낼 수 없는 글자",
    "content_too_long": "내용이 너무 긺",
    "opted_out": "수신거부",
}


def points(value: Decimal | int | str) -> str:
    """Points as Korean operators read them: ``12,345 P``, ``8.5 P``."""
    amount = Decimal(value)
    text = f"{amount:,.2f}".rstrip("0").rstrip(".")
    return f"{text} P"


templates.env.filters["points"] = points


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


def refusal(exc: BalsongError) -> str:
    """The engine's refusal as the page says it: Korean first, the engine's reason after."""
    if isinstance(exc, InsufficientBalance):
        return (
            f"잔액이 부족합니다: 필요 {points(exc.needed)}, 잔액 {points(exc.available)}. "
            "충전한 뒤에 다시 시도하세요."
        )
    if isinstance(exc, ValidationError):
        lead = REFUSALS.get(exc.code, "입력값을 확인하세요.")
        return f"{lead} ({exc.field}: {exc.reason})"
    if isinstance(exc, IntakeLimited):
        return f"지금은 발송을 더 받을 수 없습니다. 잠시 후 다시 시도하세요. ({exc})"
    return f"요청을 처리하지 못했습니다. ({exc})"


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
def stage_recipients(
    request: Request,
    session: SendSession,
    csrf_token: Annotated[str, Form()] = "",
    recipients_text: Annotated[str, Form()] = "",
    recipients_file: Annotated[UploadFile | None, File()] = None,
    keep_draft: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "text",
    channel: Annotated[str, Form()] = "auto",
    sender: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
    template_code: Annotated[str, Form()] = "",
    fallback_channel: Annotated[str, Form()] = "auto",
    fallback_title: Annotated[str, Form()] = "",
    fallback_body: Annotated[str, Form()] = "",
    advertisement: Annotated[str, Form()] = "",
    opt_out_number: Annotated[str, Form()] = "",
    scheduled_date: Annotated[str, Form()] = "",
    scheduled_time: Annotated[str, Form()] = "",
) -> Response:
    """Stage the recipients (file, pasted lines, or the kept draft's) with the composed message."""
    check_csrf(session, csrf_token)
    given = locals()
    compose = {name: str(given[name]) for name in COMPOSE_FIELDS}
    max_rows = get_runtime().settings.max_recipients_per_job + 1  # a header row
    try:
        if recipients_file is not None and recipients_file.filename:
            kind = recipient_files.kind_of(recipients_file.filename)
            # UploadFile spooled the upload to disk past 1 MB; it is read from there row by row.
            rows = recipient_files.read_rows(recipients_file.file, kind)
            draft = send_drafts.stage(session, compose, recipients_file.filename, rows, max_rows)
        elif recipients_text.strip():
            rows = recipient_files.pasted_rows(recipients_text)
            draft = send_drafts.stage(session, compose, "붙여넣기", rows, max_rows)
        elif keep_draft:
            draft = send_drafts.restage(session, send_drafts.load(session, keep_draft), compose)
        else:
            raise ValidationError("recipients", "paste numbers or upload a file")
    except (ValidationError, NotFound) as exc:
        error = refusal(exc) if isinstance(exc, ValidationError) else "저장된 수신자가 만료되었습니다."
        if isinstance(exc, ValidationError) and exc.field == "recipients":
            error = f"수신자를 붙여넣거나 파일을 올리세요. ({exc.reason})"
        return _render(
            request, "send.html", session, status_code=422, error=error, **_compose_context(session, compose)
        )
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


def job_fields(draft: Draft, mapping: recipient_files.ColumnMapping) -> dict[str, Any]:
    """The draft as a job request, in POST /v1/jobs's fields."""
    compose = draft.compose
    fields: dict[str, Any] = {
        "sender": compose.get("sender", ""),
        "kind": "manual",
        "recipients": send_drafts.recipients(draft, mapping, get_runtime().settings.max_recipients_per_job),
    }
    if compose.get("mode") == "kakao":
        fields["channel"] = "kakao"
        fields["template_code"] = compose.get("template_code", "")
        if compose.get("fallback_body", "").strip():
            fallback = {
                "channel": compose.get("fallback_channel") or "auto",
                "body": compose["fallback_body"],
            }
            if compose.get("fallback_title", "").strip():
                fallback["title"] = compose["fallback_title"]
            fields["fallback"] = fallback
    else:
        fields["channel"] = compose.get("channel") or "auto"
        body = compose.get("body", "")
        if compose.get("advertisement"):
            body = compliance.with_advertising_marks(body, compose.get("opt_out_number", ""))
        fields["body"] = body
        if compose.get("title", "").strip():
            fields["title"] = compose["title"]
    if compose.get("advertisement"):
        fields["advertisement"] = True
    day, at = compose.get("scheduled_date", "").strip(), compose.get("scheduled_time", "").strip()
    if day or at:
        if not (day and at):
            raise ValidationError("scheduled_at", "give both the date and the time of a reservation")
        fields["scheduled_at"] = f"{day}T{at}"  # no offset: KST (engine.intake.reservations)
    return fields


def _prepared(draft: Draft, mapping: recipient_files.ColumnMapping) -> PreparedJob:
    return submission.prepare(job_fields(draft, mapping), body_sha256=draft.fingerprint(), origin="console")


def _bad_numbers(draft: Draft, mapping: recipient_files.ColumnMapping) -> tuple[int, list[dict[str, Any]]]:
    """How many rows have no number intake can send to, and the first ones with their row and
    reason (intake's own normalisation, `engine.intake.phone`)."""
    count = 0
    shown: list[dict[str, Any]] = []
    for number, row in send_drafts.numbered_rows(draft, mapping):
        raw = row[mapping.phone] if mapping.phone < len(row) else ""
        try:
            normalize_recipient(raw)
        except InvalidPhone as exc:
            count += 1
            if len(shown) < BAD_ROWS_SHOWN:
                shown.append(
                    {
                        "row": number,
                        "value": raw[:40],
                        "code": exc.code,
                        "reason": REASONS.get(exc.code, exc.reason),
                    }
                )
    return count, shown


def check_result(draft: Draft, session: ConsoleSession) -> dict[str, Any]:
    """What confirming the draft would do, computed by the code that will do it."""
    mapping = draft.column_mapping
    assert mapping is not None
    rt = get_runtime()
    job = _prepared(draft, mapping)
    tenant_id = session.principal.tenant_id
    with rt.pool.connection() as conn:
        quote = quote_job(conn, tenant_id=tenant_id, job=job, settings=rt.settings)
        balance = billing.balance(conn, tenant_id).balance
    bad_count, bad_rows = _bad_numbers(draft, mapping)
    failures = Counter(row.reason_code or "other" for row in job.invalid)
    fallback_channel = job.fallback.channel if job.fallback else None
    lines = []
    for channel, count, unit in (
        ("sms", len(job.sms), quote.prices.sms),
        ("lms", len(job.lms), quote.prices.lms),
        ("kakao", len(job.kakao), max(quote.prices.kakao, quote.prices.fallback(fallback_channel))),
    ):
        if count:
            lines.append({"channel": channel, "count": count, "unit": unit, "amount": unit * count})
    template = Template.parse(job.body)
    previews = [
        {"phone": row.phone, "text": template.render(row.values) if row.values else job.body}
        for row in job.valid_rows()[:PREVIEWS]
    ]
    return {
        "job": job,
        "rows": draft.rows - (1 if mapping.header else 0),
        "valid": len(job.valid_rows()),
        "bad_count": bad_count,
        "bad_rows": bad_rows,
        "failures": sorted(
            ((code, REASONS.get(code, code), n) for code, n in failures.items()), key=lambda item: -item[2]
        ),
        "duplicates": job.duplicates_removed,
        "opted_out": quote.opted_out,
        "lines": lines,
        "cost": quote.cost,
        "balance": balance,
        "after": balance - quote.cost,
        "short": quote.cost > balance,
        "previews": previews,
        "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None,
    }


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
        job = _prepared(draft, mapping)
        stored = _store_once(tenant_id, job, f"console-send-{token}")
    except BalsongError as exc:
        return _render(
            request, "send_check.html", session, status_code=422, draft=draft, refused=refusal(exc)
        )
    if stored.created and not stored.scheduled:
        submission.plan(stored.job_id)
    draft.job_id = stored.job_id
    send_drafts.save(draft)
    return _redirect(f"/console/jobs/{stored.job_id}?notice=sent")


def _store_once(tenant_id: int, job: PreparedJob, key: str) -> Any:
    """Store the job; a second confirm of the draft while the first is storing waits for it and
    gets the same job (the key's advisory lock, `engine.intake.job_store`)."""
    deadline = time.monotonic() + CONFIRM_WAIT_SECONDS
    while True:
        try:
            return submission.store(tenant_id, job, key)
        except IdempotencyInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
