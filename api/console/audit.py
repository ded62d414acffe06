"""The console's audit log page (``/console/audit``, admins only): who did what to the tenant's
account, newest first, filtered by KST days, actor and action, and its CSV download.

Reads `engine.reporting.audit_log`; needs what `api.scopes` says for ``Action.VIEW_AUDIT``
(``admin``: an operator with the admin role, or a key with the admin scope).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api import cursors
from api.console.labels import sender_number
from api.console.routes import _field_error, _given, _render
from api.console.session import ConsoleSession, same_origin, session_for
from api.scopes import Action
from engine.accounts.audit import ACTION_LABELS
from engine.errors import ValidationError
from engine.reporting import audit_log, history
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
AuditSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_AUDIT))]

#: Entries per page.
ENTRIES_PER_PAGE = 50


def audit_scope(tenant_id: int) -> str:
    """The scope of the audit page's cursors (`api.cursors`)."""
    return f"audit:{tenant_id}"


def _filter(
    created_from: str | None, created_to: str | None, actor: str | None, action: str | None
) -> audit_log.AuditFilter:
    return audit_log.AuditFilter(
        created_from=history.parse_day("created_from", created_from),
        created_to=history.parse_day("created_to", created_to),
        actor=actor,
        action=action,
    )


@router.get("/audit")
def audit_page(
    request: Request,
    session: AuditSession,
    created_from: str | None = None,
    created_to: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    filters = _given(created_from=created_from, created_to=created_to, actor=actor, action=action)
    context: dict[str, Any] = {
        "session": session,
        "filters": filters,
        "entries": [],
        "next_url": None,
        "actions": [(code.value, label) for code, label in ACTION_LABELS.items()],
        "export_url": "/console/audit/export" + ("?" + urlencode(filters) if filters else ""),
    }
    rt = get_runtime()
    tenant_id = session.principal.tenant_id
    scope = audit_scope(tenant_id)
    try:
        position = cursors.open_cursor(scope, cursor)
        where = _filter(*(filters.get(name) for name in ("created_from", "created_to", "actor", "action")))
        with rt.pool.connection() as conn:
            page = audit_log.list_entries(
                conn,
                tenant_id,
                where,
                before_id=None if position is None else int(position),
                limit=ENTRIES_PER_PAGE,
            )
    except ValidationError as exc:
        return _render(request, "audit.html", status_code=422, error=_field_error(exc), **context)
    context["entries"] = [
        {**entry, "target": _target(entry["subject"]), "details_text": _details(entry["details"])}
        for entry in page["entries"]
    ]
    if page["next_cursor"]:
        next_cursor = rt.cursors.sign(scope, page["next_cursor"])
        context["next_url"] = "/console/audit?" + urlencode({**filters, "cursor": next_cursor})
    return _render(request, "audit.html", **context)


@router.get("/audit/export")
def audit_export(
    session: AuditSession,
    created_from: str | None = None,
    created_to: str | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> StreamingResponse:
    """Every entry the filters select, newest first, as CSV (UTF-8 with BOM, for Excel)."""
    where = _filter(created_from or None, created_to or None, actor or None, action or None)
    tenant_id = session.principal.tenant_id
    return StreamingResponse(
        _csv(tenant_id, where),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{audit_log.filename(where)}"',
            "Cache-Control": "no-store",
        },
    )


def _csv(tenant_id: int, where: audit_log.AuditFilter) -> Iterator[bytes]:
    with get_runtime().pool.connection() as conn:
        yield from audit_log.csv_chunks(conn, tenant_id, where)


def _target(subject: str | None) -> dict[str, str | None]:
    """How the page shows an entry's subject: Korean words, and a link for a job."""
    if not subject:
        return {"text": "", "href": None}
    kind, _, name = subject.partition(":")
    if kind == "job" and name.isdigit():
        return {"text": f"작업 #{name}", "href": f"/console/jobs/{name}"}
    if kind == "sender":
        return {"text": f"발신번호 {sender_number(name)}", "href": None}
    if kind == "operator":
        return {"text": f"운영자 {name}", "href": None}
    return {"text": subject, "href": None}


def _details(details: Any) -> str:
    """``role: viewer → sender``-like text of an entry's details (JSON for anything nested)."""
    if not isinstance(details, dict):
        return "" if details is None else str(details)
    if set(details) == {"from", "to"}:
        return f"{details['from']} → {details['to']}"
    parts = []
    for name, value in details.items():
        if value is None:
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{name}: {shown}")
    return " · ".join(parts)
