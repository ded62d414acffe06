"""Account routes: the caller's balance and ledger, sender numbers, advertising opt-outs and the
default callback URL."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api import cursors
from api.auth import platform_principal, principal, require
from api.inputs import json_body
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts import audit, billing, opt_outs
from engine.accounts.audit import AuditAction
from engine.accounts.ledger import MAX_LEDGER_PAGE, LedgerFilter, ledger_page
from engine.accounts.platform_keys import PlatformPrincipal
from engine.accounts.tenants import Principal, list_senders, request_sender, tenant_id_by_name
from engine.callbacks.settings import callback_url, set_callback_url
from engine.callbacks.urls import check_setting
from engine.errors import ValidationError
from engine.inputs import refuse_unknown
from engine.intake.phone import InvalidPhone
from engine.runtime import get_runtime

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]
Platform = Annotated[PlatformPrincipal, Depends(platform_principal)]

TOP_UP_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tenant", "amount"],
    "properties": {
        "tenant": {"type": "string", "description": "The tenant's name (as `balsong tenant create` made it)"},
        "amount": {
            "type": "string",
            "pattern": r"^[0-9]+(\.[0-9]{1,2})?$",
            "description": f"Points to add: ASCII digits, at most two decimals, at most {billing.MAX_AMOUNT}",
        },
        "memo": {"type": "string"},
    },
    "additionalProperties": False,
}
SENDER_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["number"],
    "properties": {"number": {"type": "string", "description": "The sender number, e.g. 02-1234-5678"}},
    "additionalProperties": False,
}
OPT_OUTS_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["phones"],
    "properties": {"phones": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
    "additionalProperties": False,
}
#: Most numbers in one opt-out request.
MAX_OPT_OUTS_PER_REQUEST = 100_000


async def _json_object(request: Request) -> dict[str, Any]:
    decoded = await json_body(request)
    if not isinstance(decoded, dict):
        raise ValidationError("body", "the request body must be a JSON object")
    return decoded


# -- balance --------------------------------------------------------------------------------------


@router.get("/balance")
def get_balance(who: Who) -> JSONResponse:
    """The tenant's balance in points, and its unit prices."""
    require_for(Action.VIEW_MONEY, who)
    rt = get_runtime()
    with rt.pool.connection() as conn:
        check = billing.balance(conn, who.tenant_id)
        prices = billing.prices_for(conn, rt.settings, who.tenant_id)
    return JSONResponse({"balance": str(check.balance), "prices": prices.as_json()})


@router.post(
    "/balance/top-ups",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": TOP_UP_REQUEST_SCHEMA}}}
    },
)
async def top_up(request: Request, who: Platform) -> JSONResponse:
    """Add points to a tenant's balance: the platform operator's action, with a platform key
    (``balsong platform-key create``); a tenant's own keys, ``admin`` included, get 403.
    ``{"tenant": "acme", "amount": "10000", "memo"?}``."""
    body = await _json_object(request)
    refuse_unknown(body, TOP_UP_REQUEST_SCHEMA["properties"], "a top-up")
    amount = _amount(body.get("amount"))
    tenant = body.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise ValidationError("tenant", "is required: the name of the tenant whose balance grows")
    memo = body.get("memo")
    if memo is not None and not isinstance(memo, str):
        raise ValidationError("memo", "must be a string")
    with get_runtime().pool.connection() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, tenant)
        after = billing.top_up(conn, tenant_id, amount, memo=memo)
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=audit.platform_actor(who.name, who.prefix),
            action=AuditAction.BALANCE_TOP_UP,
            details={"amount": str(amount), "memo": memo, "balance_after": str(after)},
        )
    log.info(
        "top-up by platform key",
        extra={"platform_key_id": who.key_id, "tenant_id": tenant_id, "amount": str(amount)},
    )
    return JSONResponse({"balance": str(after), "added": str(amount)}, status_code=201)


def _amount(value: Any) -> Decimal:
    try:
        return billing.parse_amount(value)
    except ValueError as exc:
        raise ValidationError("amount", str(exc)) from None


@router.get("/ledger")
def get_ledger(
    who: Who,
    kind: Annotated[str | None, Query(description="charge, refund, top_up or adjustment")] = None,
    created_from: Annotated[str | None, Query(description="first day, YYYY-MM-DD (KST)")] = None,
    created_to: Annotated[str | None, Query(description="last day, YYYY-MM-DD (KST), included")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LEDGER_PAGE)] = 100,
) -> JSONResponse:
    """The tenant's ledger rows, newest first, narrowed by kind and KST days, a page at a time."""
    require_for(Action.VIEW_MONEY, who)
    narrowed = LedgerFilter.parse(kind, created_from, created_to)
    scope = cursors.ledger_scope(who.tenant_id)
    position = cursors.open_cursor(scope, cursor)
    with get_runtime().pool.connection() as conn:
        page = ledger_page(
            conn, who.tenant_id, narrowed, after=None if position is None else int(position), limit=limit
        )
    page["entries"] = [
        {
            **row,
            "amount": str(row["amount"]),
            "balance_after": str(row["balance_after"]),
            "created_at": row["created_at"].isoformat(),
        }
        for row in page["entries"]
    ]
    return JSONResponse(cursors.signed(page, scope))


# -- sender numbers -------------------------------------------------------------------------------


@router.get("/senders")
def get_senders(who: Who) -> JSONResponse:
    """The tenant's sender numbers and their states (only ``approved`` ones may send)."""
    require_for(Action.VIEW_SENDERS, who)
    with get_runtime().pool.connection() as conn:
        senders = list_senders(conn, who.tenant_id)
    return JSONResponse({"senders": [{"number": number, "state": state} for number, state in senders]})


@router.post(
    "/senders",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": SENDER_REQUEST_SCHEMA}}}
    },
)
async def register_sender(request: Request, who: Who) -> JSONResponse:
    """Ask to send from a number (admin scope): it is ``pending`` until an operator approves it
    (``balsong sender approve``)."""
    require_for(Action.REQUEST_SENDER, who)
    body = await _json_object(request)
    refuse_unknown(body, SENDER_REQUEST_SCHEMA["properties"], "a sender request")
    number = body.get("number")
    if not isinstance(number, str):
        raise ValidationError("number", "is required: the sender number, e.g. '02-1234-5678'")
    try:
        stored, state = perform_sender_request(who.tenant_id, number, actor=who.actor)
    except InvalidPhone as exc:
        raise ValidationError("number", exc.reason, code=exc.code) from None
    return JSONResponse({"number": stored, "state": state}, status_code=201)


def perform_sender_request(tenant_id: int, number: str, *, actor: str) -> tuple[str, str]:
    """Register ``number`` as the tenant's pending sender (the API's and the console's request),
    audited in the same transaction; (stored number, its state). InvalidPhone if it is none."""
    with get_runtime().pool.connection() as conn, conn.transaction():
        stored, state = request_sender(conn, tenant_id, number)
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action=AuditAction.SENDER_REQUEST,
            subject=audit.sender_subject(stored),
            details={"state": state},
        )
    return stored, state


# -- advertising opt-outs -------------------------------------------------------------------------


@router.get("/opt-outs")
def get_opt_outs(
    who: Who,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """The numbers that opted out of the tenant's advertising (masked), newest first."""
    require_for(Action.VIEW_OPT_OUTS, who)
    scope = cursors.opt_outs_scope(who.tenant_id)
    position = cursors.open_cursor(scope, cursor)
    with get_runtime().pool.connection() as conn:
        page = opt_outs.listing(
            conn, who.tenant_id, after=None if position is None else int(position), limit=limit
        )
    return JSONResponse(cursors.signed(page, scope))


@router.post(
    "/opt-outs",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OPT_OUTS_REQUEST_SCHEMA}},
        }
    },
)
async def add_opt_outs(request: Request, who: Who) -> JSONResponse:
    """Put numbers on the opt-out list: ``{"phones": [...]}``; a bad number is refused alone."""
    require_for(Action.ADD_OPT_OUTS, who)
    body = await _json_object(request)
    refuse_unknown(body, OPT_OUTS_REQUEST_SCHEMA["properties"], "an opt-out request")
    phones = body.get("phones")
    if not isinstance(phones, list) or not phones or not all(isinstance(p, str) for p in phones):
        raise ValidationError("phones", "must be a non-empty list of phone numbers")
    if len(phones) > MAX_OPT_OUTS_PER_REQUEST:
        raise ValidationError("phones", f"at most {MAX_OPT_OUTS_PER_REQUEST} numbers per request")
    with get_runtime().pool.connection() as conn:
        result = opt_outs.add(conn, who.tenant_id, phones, source="api")
    return JSONResponse(
        {
            "added": result.added,
            "invalid": [{"index": index, "reason": reason} for index, reason in result.invalid],
        }
    )


@router.delete("/opt-outs/{phone}")
def remove_opt_out(phone: str, who: Who) -> JSONResponse:
    """Take a number off the list, once it has agreed to advertising again (admin scope)."""
    require_for(Action.REMOVE_OPT_OUT, who)
    try:
        with get_runtime().pool.connection() as conn:
            removed = opt_outs.remove(conn, who.tenant_id, phone)
    except InvalidPhone as exc:
        raise ValidationError("phone", exc.reason, code=exc.code) from None
    return JSONResponse({"removed": removed})


# -- status callbacks -----------------------------------------------------------------------------

CALLBACK_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {
            "type": ["string", "null"],
            "maxLength": 2000,
            "description": "https URL the tenant's status callbacks go to by default; null: none",
        }
    },
    "additionalProperties": False,
}


@router.get("/callback")
def get_callback(who: Who) -> JSONResponse:
    """The tenant's default callback URL (null if none)."""
    require("read", who)
    with get_runtime().pool.connection() as conn:
        url = callback_url(conn, who.tenant_id)
    return JSONResponse({"url": url})


@router.put(
    "/callback",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CALLBACK_REQUEST_SCHEMA}},
        }
    },
)
async def put_callback(request: Request, who: Who) -> JSONResponse:
    """Set the tenant's default callback URL (admin scope): https, public, never balsong itself
    (see engine.callbacks.urls); ``null`` clears it. The signing secret is an operator's
    (``balsong tenant callback-secret``)."""
    require("admin", who)
    body = await _json_object(request)
    refuse_unknown(body, CALLBACK_REQUEST_SCHEMA["properties"], "a callback request")
    if "url" not in body:
        raise ValidationError("url", "is required: an https URL, or null for none")
    url = body["url"]
    if url is not None:
        url = check_setting(url, "url", get_runtime().settings)
    with get_runtime().pool.connection() as conn:
        set_callback_url(conn, who.tenant_id, url)
    return JSONResponse({"url": url})
