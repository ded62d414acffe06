"""The console's money page (충전/차감 내역): balance, unit prices, the ledger and its CSV, and the
monthly statements (발송내역서).

It reads through the engine functions the API's ``GET /v1/balance``, ``GET /v1/ledger`` and
``GET /v1/statements/monthly`` use, under the same Actions (`api.scopes`). There is no top-up
form: points are minted only by the platform operator (``balsong tenant top-up`` or a platform
key), and the page says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api import cursors, statements
from api.console import labels
from api.console.routes import _field_error, _given, _render, templates
from api.console.session import ConsoleSession, same_origin, session_for
from api.scopes import Action, allowed
from engine.accounts import billing
from engine.accounts.ledger import JOB_ENTRY_TEXT, LEDGER_KIND_LABELS, LedgerFilter, ledger_page
from engine.clock import KST
from engine.errors import ValidationError
from engine.reporting import ledger_export
from engine.reporting.statement import parse_month
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
MoneySession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_MONEY))]
StatementSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_STATEMENT))]

templates.env.filters["points"] = labels.points

#: Ledger rows per page.
LEDGER_PER_PAGE = 50
#: Months the page links statements of, this one included.
STATEMENT_MONTHS = 12
#: Unit prices shown, in order, with their Korean names.
PRICE_NAMES = (
    ("sms", "SMS"),
    ("lms", "LMS"),
    ("kakao", "알림톡"),
    ("fallback_sms", "알림톡 실패 시 대체 SMS"),
    ("fallback_lms", "알림톡 실패 시 대체 LMS"),
)


def months_back(now: datetime, count: int) -> list[str]:
    """``YYYY-MM`` of the KST month of ``now`` and the ``count - 1`` before it, newest first."""
    local = now.astimezone(KST)
    year, month = local.year, local.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


def _page(
    request: Request,
    session: ConsoleSession,
    filters: dict[str, str],
    cursor: str | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rt = get_runtime()
    tenant_id = session.principal.tenant_id
    with rt.pool.connection() as conn:
        balance = billing.balance(conn, tenant_id).balance
        prices = billing.prices_for(conn, rt.settings, tenant_id)
    months = months_back(rt.clock.now(), STATEMENT_MONTHS)
    context: dict[str, Any] = {
        "session": session,
        "balance": balance,
        "prices": [(name, prices.of(channel)) for channel, name in PRICE_NAMES],
        "filters": filters,
        "kinds": list(LEDGER_KIND_LABELS.items()),
        "kind_labels": LEDGER_KIND_LABELS,
        "job_entry_text": JOB_ENTRY_TEXT,
        "entries": [],
        "next_url": None,
        "csv_url": "/console/money/ledger.csv" + ("?" + urlencode(filters) if filters else ""),
        "months": months,
        "this_month": months[0],
        "error": error,
    }
    scope = cursors.ledger_scope(tenant_id)
    try:
        narrowed = LedgerFilter.parse(**filters)
        position = cursors.open_cursor(scope, cursor)
        with rt.pool.connection() as conn:
            page = ledger_page(
                conn,
                tenant_id,
                narrowed,
                after=None if position is None else int(position),
                limit=LEDGER_PER_PAGE,
            )
    except ValidationError as exc:
        context["error"] = _field_error(exc)
        return _render(request, "money.html", status_code=422, **context)
    context["entries"] = page["entries"]
    if page["next_cursor"]:
        next_cursor = rt.cursors.sign(scope, page["next_cursor"])
        context["next_url"] = "/console/money?" + urlencode({**filters, "cursor": next_cursor}) + "#ledger"
    return _render(request, "money.html", status_code=status_code, **context)


@router.get("/money")
def money_page(
    request: Request,
    session: MoneySession,
    kind: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    filters = _given(kind=kind, created_from=created_from, created_to=created_to)
    return _page(request, session, filters, cursor)


@router.get("/money/ledger.csv")
def ledger_csv(
    session: MoneySession,
    kind: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
) -> Response:
    """The ledger rows the page's filters keep, every one of them, as CSV (streamed)."""
    filters = _given(kind=kind, created_from=created_from, created_to=created_to)
    narrowed = LedgerFilter.parse(**filters)
    rt = get_runtime()
    tenant_id = session.principal.tenant_id

    def body() -> Any:
        with rt.pool.connection() as conn:
            yield from ledger_export.csv_chunks(conn, tenant_id, narrowed)

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{ledger_export.filename(rt.clock.now())}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/statements/monthly")
def monthly_statement(
    request: Request, session: StatementSession, month: str | None = None, format: str = "html"
) -> Response:
    """The month's printable statement (발송내역서), or its PDF: the API's own response."""
    try:
        if not month:
            raise ValidationError("month", "고를 달을 YYYY-MM 형식으로 입력하세요")
        parse_month(month)
    except ValidationError as exc:
        if not allowed(Action.VIEW_MONEY, session.principal):
            raise
        return _page(request, session, {}, None, error=_field_error(exc), status_code=422)
    return statements.monthly_statement(session.principal, month=month, format=format)
