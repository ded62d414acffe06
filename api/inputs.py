"""Hostile input refused at the door, the same way on every route (`engine.inputs` holds the rules).

- ``ParameterGuard``, an ASGI middleware: a control character in a query parameter (its name or
  value), in the path or in a form field (``application/x-www-form-urlencoded``, the console's
  forms) is a 422 naming the parameter, before any route sees it. No route's parameter may carry
  one, the console's included. It sits inside ``api.limits.BodySizeLimit``, so a form it reads
  is size-limited like any body.
- ``json_body`` / ``load_json``: the one way routes read a JSON body. Not JSON, nested deeper
  than ``engine.inputs.MAX_JSON_DEPTH``, or a control character (but tab, LF, CR) in any key or
  string is a ``ValidationError`` (422) naming the JSON path.

Job intake reads its (up to 200 MB) body its own way and checks each field as it validates it
(`engine.intake.intake`), so a million recipients are not walked twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from starlette.routing import Match

from api.limits import ASGIApp, Message, Receive, Scope, Send
from api.problems import problem
from engine.errors import ValidationError
from engine.inputs import check_json, control_character, control_error


async def json_body(request: Request, *, empty: Any = ...) -> Any:
    """The request's JSON body, checked (see `load_json`); ``empty`` (when given) stands for a
    body with nothing but white space."""
    raw = await request.body()
    if empty is not ... and not raw.strip():
        return empty
    return load_json(raw)


def load_json(raw: bytes, *, texts: bool = True) -> Any:
    """``raw`` decoded and checked: ValidationError naming the field if it is not JSON, too deep,
    or (with ``texts``) carries a control character. orjson itself refuses depth over 1024 (a
    decode error)."""
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("body", f"not valid JSON: {exc}") from None
    check_json(decoded, texts=texts)
    return decoded


class ParameterGuard:
    """Answer 422 (a problem, `api.problems`, naming the parameter) to a request whose query
    parameters or path carry a control character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _query_error(scope.get("query_string", b"")) or _path_error(scope)
        if refused is None and _is_form(scope):
            received = await _whole_body(receive)
            body = b"".join(m.get("body", b"") for m in received if m["type"] == "http.request")
            refused = _query_error(body)
            receive = _replaying(received, receive)
        if refused is not None:
            response = problem(422, refused.code, refused.reason, refused.field)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_form(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.lower().startswith(b"application/x-www-form-urlencoded"))
    return False


async def _whole_body(receive: Receive) -> list[Message]:
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then what ``receive`` brings."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _query_error(query: bytes) -> ValidationError | None:
    # Nearly every query is printable ASCII without an escape: two C scans and done.
    if query.isascii() and b"%" not in query and query.decode("ascii").isprintable():
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
    return control_error(_path_parameter(scope, getattr(scope.get("app"), "routes", ())) or "path", found)


def _path_parameter(scope: Scope, routes: Iterable[Any]) -> str | None:
    """The name of the path parameter with a control character, in the first route matching."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        for name, value in child.get("path_params", {}).items():
            if isinstance(value, str) and control_character(value) is not None:
                return str(name)
        # FastAPI includes routers lazily: one entry, matching any path under its prefix, whose
        # ``effective_candidates`` are its routes.
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            name = _path_parameter(scope, candidates())
            if name is not None:
                return name
            continue
        return None
    return None
