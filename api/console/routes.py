"""The operator console: server-rendered pages under ``/console``.

Pages read through the same engine functions as the API (``engine.reporting.history``,
``engine.reporting.views``),
scoped to the signed-in operator's (or key's) tenant, and each page or form needs the scope the
API route doing the same needs (one table, `api.scopes`; an operator's role is a set of scopes),
so the console can show or do nothing the API would not. Actions are audited under the session's
``actor``. Forms that change something (resend, cancel, sign out) are POSTs that carry the session's
CSRF token and come from the console's own site.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api import cursors, exports, job_actions, job_callbacks, orders, statements
from api.auth import client_address
from api.console import labels
from api.console.session import (
    COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
    CsrfRejected,
    ScopeMissing,
    SignInRequired,
    check_csrf,
    current_session,
    same_origin,
    session_for,
    sign_in,
    sign_in_operator,
    sign_out,
)
from api.problems import problem
from api.responses import JSONResponse
from api.scopes import Action, allowed
from engine.accounts import operators
from engine.accounts.tenants import tenant_name
from engine.attribution import revenue
from engine.errors import (
    AccountDisabled,
    AccountLocked,
    BalsongError,
    NotFound,
    SignInThrottled,
    ValidationError,
)
from engine.intake.resend import validate_reasons
from engine.lifecycle.statuses import CANCELLABLE_JOB_STATUSES, FINISHED_JOB_STATUSES
from engine.reason_codes import advice
from engine.reporting import history, retention, views
from engine.runtime import get_runtime

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["label"] = labels.label
templates.env.filters["when"] = labels.when
templates.env.filters["number"] = labels.number
templates.env.filters["phone"] = labels.sender_number
templates.env.filters["points"] = labels.points
templates.env.filters["day"] = labels.day

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
Session = Annotated[ConsoleSession, Depends(current_session)]
# Every page or form that shows or changes a job needs the scope the API route doing the same
# needs (`api.scopes`); only sign-in and sign-out need none.
HistorySession = Annotated[ConsoleSession, Depends(session_for(Action.LIST_JOBS))]
JobSession = Annotated[
    ConsoleSession, Depends(session_for(Action.VIEW_JOB, Action.VIEW_RECIPIENTS, Action.VIEW_ORDERS))
]
ProgressSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_JOB))]
ExportSession = Annotated[ConsoleSession, Depends(session_for(Action.EXPORT_RESULTS))]
OrdersExportSession = Annotated[ConsoleSession, Depends(session_for(Action.EXPORT_ORDERS))]
StatementSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_STATEMENT))]
CancelSession = Annotated[ConsoleSession, Depends(session_for(Action.CANCEL))]
ResumeSession = Annotated[ConsoleSession, Depends(session_for(Action.RESUME))]
ReplaySession = Annotated[ConsoleSession, Depends(session_for(Action.REPLAY_CALLBACKS))]
ResendSession = Annotated[ConsoleSession, Depends(session_for(Action.RESEND))]

#: Recipients per page of the job page's table.
RECIPIENTS_PER_PAGE = 50
#: Jobs per page of the history.
JOBS_PER_PAGE = 30
#: Members who ordered shown on the job page (the rest through the API or the CSV).
ORDERING_MEMBERS_SHOWN = 50


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session: ConsoleSession | None = context.get("session")
    if session is not None and "tenant" not in context:
        with get_runtime().pool.connection() as conn:
            context["tenant"] = tenant_name(conn, session.principal.tenant_id)
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    # Pages show personal data: no shared cache keeps them (`api.security_headers` keeps other
    # sites from framing them).
    response.headers["Cache-Control"] = "no-store"
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _given(**params: str | None) -> dict[str, str]:
    """The query parameters that carry a value (empty form fields mean "any")."""
    return {name: value for name, value in params.items() if value}


# -- sign-in --------------------------------------------------------------------------------------


@router.get("")
def console_home() -> RedirectResponse:
    return _redirect("/console/jobs")


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


def _login_page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    lock = {"lock_failures": operators.LOCK_AFTER_FAILURES, "lock_minutes": operators.LOCK_SECONDS // 60}
    return _render(request, "login.html", status_code=status_code, **lock, **context)


@router.post("/login")
def login(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Sign in with an operator account (email and password) or, if one is given, an API key."""
    try:
        if api_key.strip():
            token = sign_in(api_key, client_address(request))
            wrong = "API 키가 올바르지 않거나 폐기되었습니다."
        else:
            token = sign_in_operator(email, password, client_address(request))
            wrong = "이메일 또는 비밀번호가 올바르지 않습니다."
    except SignInThrottled as exc:
        error = f"로그인 시도가 너무 많습니다. {exc.retry_after_seconds}초 후에 다시 시도하세요."
        refused = _login_page(request, status_code=429, error=error, email=email)
        refused.headers["Retry-After"] = str(exc.retry_after_seconds)
        return refused
    except AccountLocked as exc:
        wait = max(1, math.ceil((exc.until - get_runtime().clock.now()).total_seconds()))
        error = (
            f"로그인에 {operators.LOCK_AFTER_FAILURES}번 연속 실패하여 계정이 잠겼습니다."
            f" {labels.when(exc.until.isoformat())}(KST)에 풀립니다(약 {math.ceil(wait / 60)}분 후)."
            " 급하면 관리자에게 잠금 해제를 요청하세요."
        )
        locked = _login_page(request, status_code=423, error=error, email=email)
        locked.headers["Retry-After"] = str(wait)
        return locked
    except AccountDisabled:
        error = "사용이 중지된 계정입니다. 관리자에게 문의하세요."
        return _login_page(request, status_code=403, error=error, email=email)
    if token is None:
        return _login_page(request, status_code=401, error=wrong, email=email)
    response = _redirect("/console/jobs")
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: Session, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(session, csrf_token)
    sign_out(request)
    response = _redirect("/console/login")
    response.delete_cookie(COOKIE, path="/console")
    return response


# -- history --------------------------------------------------------------------------------------


@router.get("/jobs")
def jobs_page(
    request: Request,
    session: HistorySession,
    created_from: str | None = None,
    created_to: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    filters = _given(
        created_from=created_from, created_to=created_to, status=status, channel=channel, kind=kind
    )
    context: dict[str, Any] = {
        "session": session,
        "filters": filters,
        "jobs": [],
        "next_url": None,
        "job_statuses": list(labels.JOB_STATUS.items()),
        "job_channels": list(labels.CHANNEL.items()),
        "job_kinds": list(labels.KIND.items()),
        "retention": labels.period(get_runtime().settings.retention_days),
        "export_url": "/console/jobs/export?" + urlencode(filters),
        # A job that ended without sending anything says 미발송; one not sent yet, 발송 전.
        "finished_statuses": [str(status) for status in FINISHED_JOB_STATUSES],
    }
    rt = get_runtime()
    scope = cursors.jobs_scope(session.principal.tenant_id)
    try:
        position = cursors.open_cursor(scope, cursor)
        job_filter = _job_filter(filters)
        with rt.pool.connection() as conn:
            page = history.list_jobs(
                conn,
                rt.redis,
                rt.keys,
                session.principal.tenant_id,
                job_filter,
                cursor=position,
                limit=JOBS_PER_PAGE,
            )
    except ValidationError as exc:
        return _render(request, "jobs.html", status_code=422, error=_field_error(exc), **context)
    context["jobs"] = [_with_deletion(job) for job in page["jobs"]]
    if page["next_cursor"]:
        next_cursor = rt.cursors.sign(scope, page["next_cursor"])
        context["next_url"] = "/console/jobs?" + urlencode({**filters, "cursor": next_cursor})
    return _render(request, "jobs.html", **context)


@router.get("/jobs/export")
def jobs_export(
    request: Request,
    session: HistorySession,
    created_from: str | None = None,
    created_to: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    kind: str | None = None,
) -> Response:
    """The history's jobs, under its filters, as CSV (발송 자료): the API's ``GET /v1/jobs/export``."""
    filters = _given(
        created_from=created_from, created_to=created_to, status=status, channel=channel, kind=kind
    )
    try:
        job_filter = _job_filter(filters)
    except ValidationError:
        # The history's page under the same filters: a 422 naming the field.
        return jobs_page(request, session, created_from, created_to, status, channel, kind)
    return exports.export_job_list(session.principal, job_filter, "csv")


def _job_filter(filters: dict[str, str]) -> history.JobFilter:
    return history.JobFilter(
        created_from=history.parse_day("created_from", filters.get("created_from")),
        created_to=history.parse_day("created_to", filters.get("created_to")),
        status=filters.get("status"),
        channel=filters.get("channel"),
        kind=filters.get("kind"),
    )


# -- one job --------------------------------------------------------------------------------------


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: int,
    session: JobSession,
    status: str | None = None,
    reason: str | None = None,
    channel: str | None = None,
    phone: str | None = None,
    sent_from: str | None = None,
    sent_to: str | None = None,
    cursor: str | None = None,
    notice: str | None = None,
    refused: str | None = None,
) -> HTMLResponse:
    rt = get_runtime()
    tenant_id = session.principal.tenant_id
    filters = _given(
        status=status, reason=reason, channel=channel, phone=phone, sent_from=sent_from, sent_to=sent_to
    )
    try:
        with rt.pool.connection() as conn:
            job = views.job_view(conn, rt.redis, rt.keys, tenant_id, job_id)
    except NotFound:
        return _render(request, "not_found.html", status_code=404, session=session)
    can_resend = _can_resend(job, session)
    context: dict[str, Any] = {
        "session": session,
        "job": _with_deletion(job),
        "retention": labels.period(rt.settings.retention_days),
        "failures": [_failure_row(failure, can_resend) for failure in job["failures"]],
        "refusal_fix": labels.FIX_LINKS.get(_REFUSAL_FIX.get(refused or "", "")),
        "filters": filters,
        "notice": _NOTICES.get(notice or ""),
        "error": _REFUSALS.get(refused or "", "요청을 처리하지 못했습니다." if refused else None),
        "request_token": secrets.token_urlsafe(16),
        "finished": job["status"] in FINISHED_JOB_STATUSES,
        "progress": labels.progress_percent(job["counts"]),
        "recipients": [],
        "next_url": None,
        "recipient_statuses": list(labels.RECIPIENT_STATUS.items()),
        "recipient_channels": [(c, labels.CHANNEL[c]) for c in views.RECIPIENT_CHANNELS],
        "can_resend": can_resend,
        "can_cancel": _can_cancel(job, session),
        "can_resume": job["status"] == "paused" and allowed(Action.RESUME, session.principal),
        "ordering": None,
        "callbacks": job_callbacks.callback_state(tenant_id, job_id),
        "can_replay": allowed(Action.REPLAY_CALLBACKS, session.principal),
    }
    attribution = job["attribution"]
    if attribution["orders"] or attribution["cancelled_orders"]:
        with rt.pool.connection() as conn:
            context["ordering"] = revenue.job_orders(conn, tenant_id, job_id, limit=ORDERING_MEMBERS_SHOWN)
    scope = cursors.recipients_scope(tenant_id, job_id)
    try:
        position = cursors.open_cursor(scope, cursor)
        with rt.pool.connection() as conn:
            page = views.list_recipients(
                conn,
                tenant_id,
                job_id,
                status=filters.get("status"),
                reason=filters.get("reason"),
                channel=filters.get("channel"),
                phone=filters.get("phone"),
                sent_from=history.parse_instant("sent_from", filters.get("sent_from")),
                sent_to=history.parse_instant("sent_to", filters.get("sent_to")),
                after=None if position is None else int(position),
                limit=RECIPIENTS_PER_PAGE,
            )
    except ValidationError as exc:
        # The context has an "error" (a refused action's) already: this one replaces it.
        context["error"] = _field_error(exc)
        return _render(request, "job.html", status_code=422, **context)
    context["recipients"] = page["recipients"]
    if page["next_cursor"]:
        query = urlencode({**filters, "cursor": rt.cursors.sign(scope, page["next_cursor"])})
        context["next_url"] = f"/console/jobs/{job_id}?{query}#recipients"
    return _render(request, "job.html", **context)


@router.get("/jobs/{job_id}/progress")
def job_progress(job_id: int, session: ProgressSession) -> JSONResponse:
    """The live counts the job page polls while the job runs."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        job = views.job_view(conn, rt.redis, rt.keys, session.principal.tenant_id, job_id)
    counts = job["counts"]
    return JSONResponse(
        {
            "status": job["status"],
            "status_label": labels.label(job["status"], "job_status"),
            "finished": job["status"] in FINISHED_JOB_STATUSES,
            "progress": labels.progress_percent(counts),
            "counts": {
                "total": counts["total"],
                "delivered": counts["delivered"],
                "failed": counts["failed"] + counts["expired"],
                "in_flight": counts["in_flight"],
                "queued": counts["queued"],
                "fallbacks": counts["fallbacks"],
                "cancelled": counts["cancelled"],
                "unknown": counts["unknown"],
            },
        }
    )


@router.get("/jobs/{job_id}/export")
def job_export(job_id: int, session: ExportSession, format: str = "csv") -> Response:
    """The job's results as CSV or XLSX, masked (whole numbers only through the API, by a key
    with the ``export:unmasked`` scope)."""
    return exports.export_job(job_id, session.principal, format=format, unmasked=False)


@router.get("/jobs/{job_id}/orders/export")
def job_orders_export(job_id: int, session: OrdersExportSession) -> Response:
    """The job's orders, one row per order line, as CSV."""
    return orders.export_job_orders(job_id, session.principal, format="csv")


@router.get("/jobs/{job_id}/statement")
def job_statement(job_id: int, session: StatementSession, format: str = "html") -> Response:
    """The job's printable send statement (발송내역서)."""
    return statements.job_statement(job_id, session.principal, format=format)


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: int, session: CancelSession, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(session, csrf_token)
    try:
        job_actions.perform_cancel(session.principal.tenant_id, job_id, actor=session.actor)
    except BalsongError as exc:
        return _redirect(f"/console/jobs/{job_id}?" + urlencode({"refused": _refusal(exc)}))
    return _redirect(f"/console/jobs/{job_id}?notice=cancelled")


@router.post("/jobs/{job_id}/resume")
def resume(job_id: int, session: ResumeSession, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(session, csrf_token)
    try:
        job_actions.perform_resume(session.principal.tenant_id, job_id, actor=session.actor)
    except BalsongError as exc:
        return _redirect(f"/console/jobs/{job_id}?" + urlencode({"refused": _refusal(exc)}))
    return _redirect(f"/console/jobs/{job_id}?notice=resumed")


@router.post("/jobs/{job_id}/callbacks/replay")
def replay_callbacks(
    job_id: int, session: ReplaySession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Send the job's status callbacks again (the API's replay)."""
    check_csrf(session, csrf_token)
    try:
        job_callbacks.perform_replay(session.principal.tenant_id, job_id, actor=session.actor)
    except BalsongError as exc:
        return _redirect(f"/console/jobs/{job_id}?" + urlencode({"refused": _refusal(exc)}))
    return _redirect(f"/console/jobs/{job_id}?notice=replayed#callbacks")


@router.post("/jobs/{job_id}/resend")
def resend(
    job_id: int,
    session: ResendSession,
    csrf_token: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    request_token: Annotated[str, Form()] = "",
) -> Response:
    """Resend the job's failures (or those of one reason) as a new job; the form's one-time
    token is its Idempotency-Key, so a double click makes one job."""
    check_csrf(session, csrf_token)
    try:
        stored = job_actions.perform_resend(
            session.principal.tenant_id,
            job_id,
            validate_reasons([reason]) if reason else None,
            f"console-{request_token}" if request_token else None,
            actor=session.actor,
        )
    except BalsongError as exc:
        return _redirect(f"/console/jobs/{job_id}?" + urlencode({"refused": _refusal(exc)}))
    return _redirect(f"/console/jobs/{stored.job_id}?notice=resent")


_REFUSALS = {
    "nothing_to_resend": "재발송할 실패 수신자가 없습니다.",
    "job_not_finished": "발송이 끝난 뒤에 실패 건을 재발송할 수 있습니다.",
    "resend_in_progress": "같은 실패 건의 재발송이 아직 진행 중입니다. 끝난 뒤에 다시 재발송할 수 있습니다.",
    "job_finished": "이미 끝난 발송은 취소할 수 없습니다.",
    "insufficient_balance": "잔액이 부족합니다. 충전한 뒤 다시 재발송하세요.",
    "job_not_paused": "일시 정지된 발송이 아닙니다.",
    "sender_not_registered": "발신번호가 승인되지 않았습니다. 등록·승인된 뒤 다시 재발송하세요.",
    "no_callback_url": "이 발송에는 결과 콜백 URL이 없습니다.",
}


#: Where to fix what a refused action needs (`labels.FIX_LINKS`).
_REFUSAL_FIX = {"insufficient_balance": "money", "sender_not_registered": "sender"}


def _refusal(exc: BalsongError) -> str:
    code = getattr(exc, "code", "")
    return code if code in _REFUSALS else "refused"


_NOTICES = {
    "sent": "발송을 접수했습니다.",
    "cancelled": "발송을 취소했습니다. 이미 통신사에 전송된 메시지는 결과가 그대로 표시됩니다.",
    "resent": "실패한 수신자에게 재발송하는 새 작업을 만들었습니다.",
    "resumed": "발송을 재개했습니다.",
    "replayed": "결과 콜백을 처음부터 다시 보냅니다.",
}


def _can_resend(job: dict[str, Any], session: ConsoleSession) -> bool:
    failed = job["counts"]["failed"] + job["counts"]["expired"]
    finished = job["status"] in FINISHED_JOB_STATUSES
    return bool(failed) and finished and allowed(Action.RESEND, session.principal)


def _with_deletion(job: dict[str, Any]) -> dict[str, Any]:
    """The job with ``deletion_at``: when its results are deleted (`retention.deletion_at`)."""
    days = get_runtime().settings.retention_days
    created_at = datetime.fromisoformat(job["created_at"])
    return {**job, "deletion_at": views.kst(retention.deletion_at(created_at, days))}


def _failure_row(failure: dict[str, Any], can_resend: bool) -> dict[str, Any]:
    """A row of the job page's failure table: the count, what to do in Korean, where to do it,
    and whether a resend of just these is offered (with its own one-time token)."""
    found = advice(failure["reason_code"])
    resendable = can_resend and (found is None or found.resend)
    return {
        **failure,
        "advice": found.text if found else "",
        "fix": found.fix if found else None,
        "fix_link": labels.FIX_LINKS.get(found.fix or "") if found else None,
        "resend_token": secrets.token_urlsafe(16) if resendable else None,
    }


def _can_cancel(job: dict[str, Any], session: ConsoleSession) -> bool:
    return job["status"] in CANCELLABLE_JOB_STATUSES and allowed(Action.CANCEL, session.principal)


def _field_error(exc: ValidationError) -> str:
    return f"입력값을 확인하세요 — {exc.field}: {exc.reason}"


# -- errors ---------------------------------------------------------------------------------------


def not_found_page(request: Request) -> HTMLResponse:
    """The console's 404 page, for a path under /console that is no page."""
    return _render(request, "not_found.html", status_code=404)


def install_error_pages(app: Any) -> None:
    """Console answers for a missing session (back to sign-in) and a form without its CSRF token."""

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _: SignInRequired) -> Response:
        if request.url.path.endswith("/progress"):
            return problem(401, "unauthorised", "sign in again")
        return _redirect("/console/login")

    @app.exception_handler(ScopeMissing)
    async def scope_missing(request: Request, exc: ScopeMissing) -> Response:
        label = labels.SCOPE.get(exc.scope, exc.scope)
        if request.url.path.endswith("/progress"):
            return problem(403, "forbidden", f"this API key lacks the '{exc.scope}' scope")
        context = {"session": exc.session, "scope": exc.scope, "scope_label": label}
        return _render(request, "forbidden.html", status_code=403, **context)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _: CsrfRejected) -> Response:
        return _login_page(request, status_code=403, error="요청을 확인할 수 없습니다. 다시 로그인하세요.")
