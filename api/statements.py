"""Statement routes: the send statement (발송내역서) of a job or a month, as HTML or PDF."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from api.auth import principal
from api.scopes import Action, require_for
from engine.accounts.tenants import Principal
from engine.errors import ValidationError
from engine.reporting import statement as statements
from engine.reporting.statement_render import render_html, render_pdf
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1/statements")

_FORMAT = Query(description="html (printable page) or pdf")
_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}, "application/pdf": {}}}}


@router.get("/jobs/{job_id}", response_class=Response, responses=_RESPONSES)
def job_statement(
    job_id: int,
    who: Annotated[Principal, Depends(principal)],
    format: Annotated[str, _FORMAT] = "html",
) -> Response:
    """The statement of one job: counts by channel and result, failures by reason."""
    require_for(Action.VIEW_STATEMENT, who)
    fmt = statements.check_format(format)
    rt = get_runtime()
    with rt.pool.connection() as conn:
        statement = statements.job_statement(conn, who.tenant_id, job_id, rt.clock.now())
    return _respond(statement, fmt, f"balsong-statement-job-{job_id}")


@router.get("/monthly", response_class=Response, responses=_RESPONSES)
def monthly_statement(
    who: Annotated[Principal, Depends(principal)],
    month: Annotated[str | None, Query(description="YYYY-MM, a calendar month in KST")] = None,
    format: Annotated[str, _FORMAT] = "html",
) -> Response:
    """The statement of every job the tenant created in the month."""
    require_for(Action.VIEW_STATEMENT, who)
    if month is None:
        raise ValidationError("month", "required: the month of the statement, written YYYY-MM")
    fmt = statements.check_format(format)
    rt = get_runtime()
    with rt.pool.connection() as conn:
        statement = statements.monthly_statement(conn, who.tenant_id, month, rt.clock.now())
    return _respond(statement, fmt, f"balsong-statement-{month}")


def _respond(statement: statements.Statement, fmt: str, name: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if fmt == "html":
        return HTMLResponse(render_html(statement), headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    return Response(render_pdf(statement), media_type="application/pdf", headers=headers)
