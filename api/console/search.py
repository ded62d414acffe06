"""The console's recipient search (수신번호 검색): where one number was sent to across the tenant's
jobs of a date range, newest job first, numbers masked.

It reads what ``GET /v1/recipients`` reads (`engine.reporting.phone_search`), with the same scope
(`api.scopes`, ``Action.SEARCH_RECIPIENTS``) and the same bound: at most
`engine.reporting.phone_search.MAX_DAYS` days per search.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from api.console.routes import _field_error, _render
from api.console.session import ConsoleSession, same_origin, session_for
from api.recipients import parse_range
from api.scopes import Action
from engine.clock import KST
from engine.errors import ValidationError
from engine.reporting import phone_search
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
SearchSession = Annotated[ConsoleSession, Depends(session_for(Action.SEARCH_RECIPIENTS))]


@router.get("/recipients")
def recipients_page(
    request: Request,
    session: SearchSession,
    phone: str | None = None,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> HTMLResponse:
    rt = get_runtime()
    today = rt.clock.now().astimezone(KST).date()
    context: dict[str, Any] = {
        "session": session,
        "phone": phone or "",
        "max_days": phone_search.MAX_DAYS,
        "max_rows": phone_search.MAX_ROWS,
        "found": None,
    }
    try:
        first_day, last_day = parse_range(today, first, last)
        context["first"], context["last"] = first_day.isoformat(), last_day.isoformat()
        # Without a number: the form, with its default range (the last MAX_DAYS days).
        if phone is not None:
            wanted = phone_search.PhoneSearch(phone, first_day, last_day)
            with rt.read_pool.connection() as conn:
                context["found"] = phone_search.search(conn, session.principal.tenant_id, wanted)
    except ValidationError as exc:
        context.setdefault("first", first or "")
        context.setdefault("last", last or "")
        return _render(request, "recipients.html", status_code=422, error=_field_error(exc), **context)
    return _render(request, "recipients.html", **context)
