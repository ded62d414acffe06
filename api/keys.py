"""API key routes (admin scope): list, create, rotate and revoke the tenant's own keys.

Keys are shown once, when made; PostgreSQL keeps only their SHA-256. A revoked key stops working
within `api.auth.CACHE_SECONDS` on every API process (each keeps a short cache of keys it has
checked), and at once for console sessions, which look their key up on every page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.auth import AuthError, forget_key, principal, require
from api.inputs import json_body
from api.responses import JSONResponse
from engine.accounts.tenants import (
    ALL_SCOPES,
    Principal,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    rotate_api_key,
)
from engine.errors import ValidationError
from engine.inputs import refuse_unknown
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1/keys", default_response_class=JSONResponse)
Who = Annotated[Principal, Depends(principal)]


def _shown(key: dict[str, Any]) -> dict[str, Any]:
    return {
        **key,
        "created_at": key["created_at"].isoformat(),
        "revoked_at": key["revoked_at"].isoformat() if key["revoked_at"] else None,
    }


@router.get("")
def get_keys(who: Who) -> JSONResponse:
    """The tenant's keys: id, visible prefix, scopes, when made and revoked (never the key)."""
    require("admin", who)
    with get_runtime().pool.connection() as conn:
        keys = list_api_keys(conn, who.tenant_id)
    return JSONResponse({"keys": [_shown(key) for key in keys]})


KEY_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scopes": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(ALL_SCOPES)},
            "default": ["send", "read"],
        }
    },
    "additionalProperties": False,
}


@router.post(
    "",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": False, "content": {"application/json": {"schema": KEY_REQUEST_SCHEMA}}}
    },
)
async def create_key(request: Request, who: Who) -> JSONResponse:
    """A new key with the given scopes: ``{"scopes": ["send", "read"]}``; shown this once."""
    require("admin", who)
    body = await json_body(request, empty={})
    if isinstance(body, dict):
        refuse_unknown(body, KEY_REQUEST_SCHEMA["properties"], "a key request")
    scopes = body.get("scopes", ["send", "read"]) if isinstance(body, dict) else None
    if isinstance(scopes, list) and "platform" in scopes:
        raise AuthError(
            403, "forbidden", "platform keys are made only by the operator (balsong platform-key create)"
        )
    if not isinstance(scopes, list) or not scopes or not all(s in ALL_SCOPES for s in scopes):
        raise ValidationError("scopes", f"must be a non-empty list of {', '.join(ALL_SCOPES)}")
    with get_runtime().pool.connection() as conn:
        key = create_api_key(conn, who.tenant_id, tuple(dict.fromkeys(scopes)))
    return JSONResponse({"key": key, "scopes": scopes}, status_code=201)


@router.post("/{key_id}/rotate", status_code=201)
def rotate_key(key_id: int, who: Who) -> JSONResponse:
    """Replace a key: a new one with its scopes (shown this once); the old one is revoked."""
    require("admin", who)
    with get_runtime().pool.connection() as conn:
        key = rotate_api_key(conn, who.tenant_id, key_id)
    forget_key(key_id)
    return JSONResponse({"key": key}, status_code=201)


@router.delete("/{key_id}")
def revoke_key(key_id: int, who: Who) -> JSONResponse:
    """Revoke a key (another tenant's key is not found)."""
    require("admin", who)
    with get_runtime().pool.connection() as conn:
        revoke_api_key(conn, who.tenant_id, key_id)
    forget_key(key_id)
    return JSONResponse({"revoked": key_id})
