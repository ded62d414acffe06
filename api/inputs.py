"""Hostile input refused at the door, the same way on every route (`engine.inputs` holds the rules).

- ``ParameterGuard``, an ASGI middleware: a control character in a query parameter (its name or
  value) or in the path is a 422 naming the parameter, before any route sees it. No route's
  parameter may carry one, the console's included.
- ``json_body`` / ``load_json``: the one way routes read a JSON body. Not JSON, nested deeper
  than ``engine.inputs.MAX_JSON_DEPTH``, or a control character (but tab, LF, CR) in any key or
  string is a ``ValidationError`` (422) naming the JSON path.

Job intake reads its (up to 200 MB) body its own way and checks each field as it validates it
(`engine.intake`), so a million recipients are not walked twice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from starlette.routing import Match

from api.limits import ASGIApp, Receive, Scope, Send
from api.responses import error_response
from engine.errors import ValidationError
from engine.inputs import check_json, control_character, control_error


async def json_body(request: Request, *, empty: Any = ...) -> Any:
    """The request's JSON body, checked (see `load_json`); ``empty`` (when given) stands for a
    body with nothing but white space."""
    raw = await request.body()
    if empty is not ... and not raw.strip():
        return empty
    return load_json(raw)


def load_json(raw: bytes) -> Any:
    """``raw`` decoded and checked: ValidationError naming the field if it is not JSON, too deep,
    or carries a control character. orjson itself refuses depth over 1024 (a decode error)."""
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"not valid JSON: {exc}") from None
    check_json(decoded)
    return decoded


class ParameterGuard:
    """Answer 422 (balsong's error shape, naming the parameter) to a request whose query
    parameters or path carry a control character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = _query_error(scope.get("query_string", b"")) or _path_error(scope)
            if refused is not None:
                response = error_response(422, refused.code, refused.reason, refused.field)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _query_error(query: bytes) -> ValidationError | None:
    # A control character can only arrive percent-encoded (the HTTP server refuses raw ones),
    # bar DEL; a query without either is clean and costs one scan.
    if b"%" not in query and b"\x7f" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        found = control_character(name)
        if found is not None:
            return control_error(repr(name), found)
        found = control_character(value)
        if found is not None:
            return control_error(name, found)
    return None


def _path_error(scope: Scope) -> ValidationError | None:
    found = control_character(scope["path"])
    if found is None:
        return None
    # Name the route's path parameter that carries it, if the path matches a route.
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        for name, value in child.get("path_params", {}).items():
            if isinstance(value, str) and control_character(value) is not None:
                return control_error(name, found)
        break
    return control_error("path", found)
