"""Order routes: shops send order events; a job shows the members who ordered and exports them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api import cursors
from api.auth import principal, require
from api.inputs import json_body
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts.tenants import Principal
from engine.attribution import orders, revenue
from engine.errors import ValidationError
from engine.reporting import exports, order_exports
from engine.runtime import get_runtime

router = APIRouter(default_response_class=JSONResponse)

_LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["product_number", "price"],
    "properties": {
        "product_number": {"type": "string"},
        "product_name": {"type": "string"},
        "price": {"type": ["number", "string"]},
        "option": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1, "default": 1},
    },
    "additionalProperties": False,
}
_ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_number", "member_id", "ordered_at", "amount"],
    "properties": {
        "order_number": {"type": "string"},
        "member_id": {"type": "string"},
        "ordered_at": {"type": "string", "description": "ISO 8601; without an offset, KST"},
        "amount": {"type": ["number", "string"], "description": "at most two decimals"},
        "status": {"type": "string", "enum": list(orders.ORDER_STATUSES), "default": "placed"},
        "lines": {"type": "array", "items": _LINE_SCHEMA},
    },
    "additionalProperties": False,
}
ORDERS_REQUEST_SCHEMA: dict[str, Any] = {
    "oneOf": [
        _ORDER_SCHEMA,
        {
            "type": "object",
            "required": ["orders"],
            "properties": {"orders": {"type": "array", "minItems": 1, "items": _ORDER_SCHEMA}},
            "additionalProperties": False,
        },
    ]
}


@router.post(
    "/v1/orders",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": ORDERS_REQUEST_SCHEMA}}}
    },
)
async def post_orders(request: Request, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """Store order events (one order, or ``{"orders": [...]}``), idempotent by order number, and
    attribute them to the last message delivered to the member within the tenant's window."""
    require("send", who)
    parsed = orders.parse_orders(await json_body(request))
    stored = await run_in_threadpool(_store, who.tenant_id, parsed)
    return JSONResponse({"orders": stored})


def _store(tenant_id: int, parsed: list[orders.Order]) -> list[dict[str, Any]]:
    rt = get_runtime()
    with rt.pool.connection() as conn:
        return orders.store_orders(conn, tenant_id, parsed, rt.clock.now())


@router.get("/v1/jobs/{job_id}/orders")
def get_job_orders(
    job_id: int,
    who: Annotated[Principal, Depends(principal)],
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: int = 50,
) -> JSONResponse:
    """The members who ordered after the job's message (by member id), each with its orders."""
    require_for(Action.VIEW_ORDERS, who)
    scope = cursors.orders_scope(who.tenant_id, job_id)
    after = cursors.open_cursor(scope, cursor)
    with get_runtime().pool.connection() as conn:
        page = revenue.job_orders(conn, who.tenant_id, job_id, after=after, limit=limit)
    return JSONResponse(cursors.signed(page, scope))


@router.get(
    "/v1/jobs/{job_id}/orders/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv; charset=utf-8": {}}}},
)
def export_job_orders(
    job_id: int,
    who: Annotated[Principal, Depends(principal)],
    format: Annotated[str, Query(description="csv")] = "csv",
) -> StreamingResponse:
    """The job's orders (cancelled ones left out), one row per order line, as CSV."""
    require_for(Action.EXPORT_ORDERS, who)
    if format not in order_exports.FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(order_exports.FORMATS)}")
    with get_runtime().pool.connection() as conn:
        job = exports.find_job(conn, who.tenant_id, job_id)
    return StreamingResponse(
        _csv(job, who.tenant_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{order_exports.filename(job.id)}"',
            "Cache-Control": "no-store",
        },
    )


def _csv(job: exports.ExportJob, tenant_id: int) -> Iterator[bytes]:
    with get_runtime().pool.connection() as conn:
        yield from order_exports.csv_chunks(conn, job, tenant_id)
