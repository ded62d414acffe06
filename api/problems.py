"""balsong's one error answer: an RFC 9457 problem details object, ``application/problem+json``.

Every error of the JSON API, including an unknown route (404), a wrong method (405, with
``Allow``), FastAPI's own request checks (422) and an unexpected failure (500), answers::

    {"type": "urn:balsong:problem:invalid", "title": "Unprocessable Content", "status": 422,
     "detail": "scheduled_at: must be ISO 8601 ...", "instance": "/v1/jobs",
     "code": "invalid", "field": "scheduled_at", "request_id": "4bf9..."}

``type`` is ``urn:balsong:problem:<code>``: an identifier, not a page to fetch. ``title`` is
the HTTP status phrase. ``code`` (balsong's machine-readable reason) and ``field`` (the input at
fault, or null) are extension members, as are ``request_id`` (the ``X-Request-Id`` answered,
`api.request_id`) and any details of one kind of error (``needed``/``available`` of a 402,
``limit`` of a 429, ``job_id`` of a 409 ``resend_in_progress``). A 429 or 503 carries
``Retry-After``.

The console's pages keep their HTML error pages: an unknown path under ``/console`` answers the
console's "not found" page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import psycopg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.auth import AuthError
from api.request_id import current_request
from api.responses import JSONResponse
from engine.errors import (
    IdempotencyConflict,
    IdempotencyInProgress,
    InsufficientBalance,
    IntakeLimited,
    JobNotPaused,
    NotFound,
    SignInThrottled,
    ValidationError,
)

log = logging.getLogger(__name__)

#: The media type of every error answer.
MEDIA_TYPE = "application/problem+json"
#: ``type`` of a problem is this followed by its ``code``.
TYPE_PREFIX = "urn:balsong:problem:"
#: Retry-After of a 503, in seconds: a database or Redis failing over is back within seconds.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


#: RFC 9110's names where Python's ``HTTPStatus`` (before 3.13) still has older ones, so a
#: problem's title does not change with the Python that runs balsong.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem(
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: object,
) -> ProblemResponse:
    """The problem details answer: ``status``, balsong's ``code``, a human ``detail``, the
    ``field`` at fault (if any) and ``extensions``; ``instance`` and ``request_id`` come from
    the request being answered (`api.request_id.current_request`)."""
    request_id, path = current_request()
    body: dict[str, object] = {
        "type": TYPE_PREFIX + code,
        "title": _TITLES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": path,
        "code": code,
        "field": field,
        "request_id": request_id,
        **extensions,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


def unavailable(detail: str) -> ProblemResponse:
    """503 with ``Retry-After``: nothing was accepted, the caller should try again."""
    return problem(503, "unavailable", detail, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})


#: ``code`` of a Starlette HTTPException (unknown route, wrong method ...), by status.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def install(app: FastAPI, html_not_found: dict[str, Callable[[Request], Response]]) -> None:
    """Answer every error ``app`` raises as a problem (the one mapping from errors to HTTP);
    an unknown path under a prefix of ``html_not_found`` (the console's) gets that page instead."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            for prefix, page in html_not_found.items():
                if request.url.path.startswith(prefix):
                    return page(request)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
        if exc.status_code == 404 and detail is None:
            detail = f"no route {request.url.path}"
        elif exc.status_code == 405 and detail is None:
            detail = f"{request.method} is not allowed on {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, code, str(detail or exc.detail), headers=headers or None)

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, exc: ValidationError) -> Response:
        return problem(422, exc.code, exc.reason, exc.field)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(_: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own checks (a path id that is not a number, a missing form field), naming
        # the first field at fault.
        first = exc.errors()[0] if exc.errors() else {}
        location = [
            str(part) for part in first.get("loc", ()) if part not in ("path", "query", "body", "header")
        ]
        return problem(422, "invalid", str(first.get("msg", "invalid request")), ".".join(location) or None)

    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.code, str(exc), headers=headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> Response:
        return problem(404, "not_found", str(exc))

    @app.exception_handler(InsufficientBalance)
    async def insufficient(_: Request, exc: InsufficientBalance) -> Response:
        # Amounts as decimal strings: points may have fractions, and JSON floats would round them.
        return problem(402, exc.code, str(exc), needed=str(exc.needed), available=str(exc.available))

    @app.exception_handler(IntakeLimited)
    async def limited(_: Request, exc: IntakeLimited) -> Response:
        details = {"limit": exc.limit} if exc.limit else {}
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        return problem(429, exc.code, str(exc), headers=headers, **details)

    @app.exception_handler(SignInThrottled)
    async def throttled(_: Request, exc: SignInThrottled) -> Response:
        return problem(429, exc.code, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)})

    @app.exception_handler(JobNotPaused)
    async def not_paused(_: Request, exc: JobNotPaused) -> Response:
        return problem(409, exc.code, str(exc), "status")

    @app.exception_handler(IdempotencyConflict)
    async def conflict(_: Request, exc: IdempotencyConflict) -> Response:
        return problem(422, "idempotency_key_reused", str(exc), "Idempotency-Key")

    @app.exception_handler(IdempotencyInProgress)
    async def in_progress(_: Request, exc: IdempotencyInProgress) -> Response:
        return problem(409, "idempotency_key_in_progress", str(exc), "Idempotency-Key")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> Response:
        log.error("database unavailable: %s", exc)
        return unavailable("the database is unavailable; nothing was accepted, retry later")

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def redis_down(_: Request, exc: Exception) -> Response:
        log.error("redis unavailable: %s", exc)
        return unavailable("redis is unavailable; nothing was accepted, retry later")

    @app.exception_handler(Exception)
    async def failed(_: Request, exc: Exception) -> Response:
        # Starlette logs the exception and re-raises it after this answer, outside the request
        # id middleware: the header is set here.
        request_id, _path = current_request()
        headers = {"X-Request-Id": request_id} if request_id else None
        return problem(500, "internal", "balsong failed to answer; the failure is logged", headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path (Starlette's ``Allow`` names only
    the first route's)."""
    methods: set[str] = set()
    routes = list(request.app.routes)
    while routes:
        route = routes.pop()
        # FastAPI includes routers lazily: one entry whose ``effective_candidates`` are its routes.
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            routes.extend(candidates())
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of a problem, for the OpenAPI document."""
    nullable_string = {"type": ["string", "null"]}
    return {
        "type": "object",
        "description": "RFC 9457 problem details; code, field and request_id are balsong's extensions",
        "required": ["type", "title", "status", "detail", "instance", "code", "field", "request_id"],
        "properties": {
            "type": {"type": "string", "description": f"{TYPE_PREFIX}<code>"},
            "title": {"type": "string", "description": "the HTTP status phrase"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "the path of the request"},
            "code": {"type": "string", "description": "why, for machines (e.g. invalid, unknown_field)"},
            "field": {**nullable_string, "description": "the input at fault, e.g. recipients[3].phone"},
            "request_id": {**nullable_string, "description": "the X-Request-Id of the answer"},
            "needed": {"type": "string", "description": "402: points the job costs"},
            "available": {"type": "string", "description": "402: the balance"},
            "limit": {"type": "string", "description": "429: the setting exceeded"},
            "job_id": {"type": "integer", "description": "409 resend_in_progress: the running resend"},
        },
    }
