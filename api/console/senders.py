"""The console's sender numbers page (발신번호): the tenant's numbers with their review states, a
form to request a new one (the API's ``POST /v1/senders``: it lands pending), and how to get it
approved.

A number sends only once the platform operator has approved it (``balsong sender approve``),
after seeing proof that the tenant owns it: pre-registration of sender numbers is the law
(전기통신사업법 제84조의2, against caller-number spoofing).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from api import account
from api.console import labels
from api.console.routes import _redirect, _render
from api.console.session import ConsoleSession, check_csrf, same_origin, session_for
from api.scopes import Action, allowed
from engine.accounts.tenants import senders
from engine.intake.phone import InvalidPhone
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
SendersSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_SENDERS))]
RequestSession = Annotated[ConsoleSession, Depends(session_for(Action.REQUEST_SENDER))]

#: Korean names of the sender states.
SENDER_STATE_LABELS = {"pending": "승인 대기", "approved": "승인", "blocked": "차단"}

_NOTICES = {
    "pending": "발신번호 등록을 요청했습니다. 승인되기 전까지는 이 번호로 발송할 수 없습니다.",
    "approved": "이미 승인된 발신번호입니다.",
    "blocked": "차단된 발신번호입니다. 플랫폼 운영 담당자에게 문의하세요.",
}


def _page(
    request: Request,
    session: ConsoleSession,
    *,
    notice: str | None = None,
    error: str | None = None,
    number: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    with get_runtime().pool.connection() as conn:
        numbers = senders(conn, session.principal.tenant_id)
    context: dict[str, Any] = {
        "session": session,
        "senders": numbers,
        "state_labels": SENDER_STATE_LABELS,
        "can_request": allowed(Action.REQUEST_SENDER, session.principal),
        "notice": notice,
        "error": error,
        "number": number,
    }
    return _render(request, "senders.html", status_code=status_code, **context)


@router.get("/senders")
def senders_page(request: Request, session: SendersSession, requested: str | None = None) -> HTMLResponse:
    return _page(request, session, notice=_NOTICES.get(requested or ""))


@router.post("/senders")
def request_sender_number(
    request: Request,
    session: RequestSession,
    csrf_token: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
) -> Response:
    """Ask to send from a number: pending until the platform operator approves it."""
    check_csrf(session, csrf_token)
    try:
        _, state = account.perform_sender_request(session.principal.tenant_id, number, actor=session.actor)
    except InvalidPhone as exc:
        error = f"발신번호를 확인하세요 — {labels.phone_refusal(exc.code, exc.reason)}"
        return _page(request, session, error=error, number=number, status_code=422)
    return _redirect(f"/console/senders?requested={state}")
