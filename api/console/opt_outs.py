"""The console's opt-out page (수신거부): the tenant's 080 opt-out list, searched by number, with a
number added or removed, a CSV/XLSX file of numbers imported and the list exported.

Numbers are masked everywhere on the page and in its CSV (the console never shows a whole
number); a search by a whole number (or its last four digits) finds it, and each row's removal
names the row, not the number. Adding and importing need the scope the API's
``POST /v1/opt-outs`` needs (``send``), removing the one of ``DELETE /v1/opt-outs/{phone}``
(``admin``). Imports read the uploaded file as a stream (`engine.accounts.opt_outs.read_file`,
the importer of ``balsong opt-out import``): the upload is spooled to disk, never held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api import cursors
from api.console import labels
from api.console.routes import _field_error, _redirect, _render
from api.console.session import ConsoleSession, check_csrf, same_origin, session_for
from api.scopes import Action, allowed
from engine.accounts import opt_outs
from engine.errors import ValidationError
from engine.intake.phone import InvalidPhone, normalize_recipient
from engine.reporting import opt_out_export
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
ListSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_OPT_OUTS))]
AddSession = Annotated[ConsoleSession, Depends(session_for(Action.ADD_OPT_OUTS))]
RemoveSession = Annotated[ConsoleSession, Depends(session_for(Action.REMOVE_OPT_OUT))]

#: Numbers per page of the list.
OPT_OUTS_PER_PAGE = 50

_NOTICES = {
    "added": "수신거부 목록에 추가했습니다.",
    "already": "이미 수신거부 목록에 있는 번호입니다.",
    "removed": "수신거부 목록에서 삭제했습니다. 이 번호로 다시 광고를 보낼 수 있습니다.",
    "missing": "목록에 없는 번호입니다. 이미 삭제되었을 수 있습니다.",
}


def _page(
    request: Request,
    session: ConsoleSession,
    *,
    phone: str | None = None,
    cursor: str | None = None,
    notice: str | None = None,
    error: str | None = None,
    imported: opt_outs.ImportResult | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rt = get_runtime()
    tenant_id = session.principal.tenant_id
    filters = {"phone": phone} if phone else {}
    with rt.pool.connection() as conn:
        by_source = opt_outs.counts(conn, tenant_id)
    context: dict[str, Any] = {
        "session": session,
        "filters": filters,
        "total": sum(by_source.values()),
        "by_source": [(opt_outs.SOURCE_LABELS[s], count) for s, count in by_source.items() if count],
        "source_labels": opt_outs.SOURCE_LABELS,
        "entries": [],
        "next_url": None,
        "notice": notice,
        "error": error,
        "imported": imported,
        "refusals": [(line, labels.phone_refusal(code, reason)) for line, code, reason in imported.refusals]
        if imported
        else [],
        "can_add": allowed(Action.ADD_OPT_OUTS, session.principal),
        "can_remove": allowed(Action.REMOVE_OPT_OUT, session.principal),
        "searched": bool(phone),
    }
    scope = cursors.opt_outs_scope(tenant_id)
    try:
        position = cursors.open_cursor(scope, cursor)
        with rt.pool.connection() as conn:
            page = opt_outs.listing(
                conn,
                tenant_id,
                phone=phone or None,
                after=None if position is None else int(position),
                limit=OPT_OUTS_PER_PAGE,
            )
    except ValidationError as exc:
        context["error"] = _field_error(exc)
        return _render(request, "opt_outs.html", status_code=422, **context)
    context["entries"] = page["opt_outs"]
    if page["next_cursor"]:
        next_cursor = rt.cursors.sign(scope, str(page["next_cursor"]))
        context["next_url"] = "/console/opt-outs?" + urlencode({**filters, "cursor": next_cursor})
    return _render(request, "opt_outs.html", status_code=status_code, **context)


@router.get("/opt-outs")
def opt_outs_page(
    request: Request,
    session: ListSession,
    phone: str | None = None,
    cursor: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    return _page(request, session, phone=phone, cursor=cursor, notice=_NOTICES.get(notice or ""))


@router.post("/opt-outs")
def add_opt_out(
    request: Request,
    session: AddSession,
    csrf_token: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
) -> Response:
    """Put one number on the list (the API's ``POST /v1/opt-outs`` with one number)."""
    check_csrf(session, csrf_token)
    try:
        normalize_recipient(phone)
    except InvalidPhone as exc:
        error = f"번호를 확인하세요 — {labels.phone_refusal(exc.code, exc.reason)}"
        return _page(request, session, error=error, status_code=422)
    with get_runtime().pool.connection() as conn:
        result = opt_outs.add(conn, session.principal.tenant_id, [phone], source="console")
    return _redirect("/console/opt-outs?notice=" + ("added" if result.added else "already"))


@router.post("/opt-outs/import")
def import_opt_outs(
    request: Request,
    session: AddSession,
    file: Annotated[UploadFile, File()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Put the numbers of a CSV or XLSX file (first column) on the list; the page shows what was
    added, what was there already and each refused line by its number."""
    check_csrf(session, csrf_token)
    try:
        with get_runtime().pool.connection() as conn:
            fmt, numbered = opt_outs.read_file(file.file)
            result = opt_outs.import_numbers(conn, session.principal.tenant_id, numbered, source=fmt)
    except ValidationError:
        error = "파일을 읽을 수 없습니다. 첫 열에 번호가 있는 CSV 또는 XLSX 파일을 올리세요."
        return _page(request, session, error=error, status_code=422)
    finally:
        file.file.close()
    return _page(request, session, imported=result)


@router.post("/opt-outs/{entry_id}/remove")
def remove_opt_out(
    entry_id: int, session: RemoveSession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Take the row's number off the list (it agreed to advertising again)."""
    check_csrf(session, csrf_token)
    with get_runtime().pool.connection() as conn:
        removed = opt_outs.remove_entry(conn, session.principal.tenant_id, entry_id)
    return _redirect("/console/opt-outs?notice=" + ("removed" if removed else "missing"))


@router.get("/opt-outs/export")
def export_opt_outs(session: ListSession) -> Response:
    """The whole list as CSV, numbers masked, streamed."""
    rt = get_runtime()
    tenant_id = session.principal.tenant_id

    def body() -> Iterator[bytes]:
        with rt.pool.connection() as conn:
            yield from opt_out_export.csv_chunks(conn, tenant_id)

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{opt_out_export.filename(rt.clock.now())}"',
            "Cache-Control": "no-store",
        },
    )
