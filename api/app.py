"""The FastAPI application: routes, and one mapping from balsong's errors to HTTP answers."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout

from actors.broker import install_broker
from api import (
    account,
    carrier_reports,
    console,
    exports,
    job_actions,
    jobs,
    keys,
    links,
    observability,
    orders,
    schemas,
    statements,
)
from api.auth import AuthError
from api.inputs import ParameterGuard
from api.intake_body import process_budget
from api.limits import BodySizeLimit
from api.responses import JSONResponse, error_response
from api.security_headers import SecurityHeaders
from engine.config import get_settings
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


_error = error_response


def create_app() -> FastAPI:
    get_settings().check_secrets()  # also when uvicorn is started without `balsong api`
    # The broker the API publishes through (jobs to plan, webhooks to apply, resends).
    install_broker(get_settings())
    app = FastAPI(title="balsong", version="0.1.0", default_response_class=JSONResponse)
    # Added first, so it runs inside the size limit: a form it reads is limited like any body.
    app.add_middleware(ParameterGuard)
    app.add_middleware(BodySizeLimit, intake_limit_bytes=get_settings().max_job_request_bytes)
    app.state.intake_budget = process_budget(get_settings())
    app.add_middleware(SecurityHeaders)  # added last: outermost, so 413s get the headers too
    app.include_router(jobs.router)
    app.include_router(job_actions.router)
    app.include_router(carrier_reports.router)
    app.include_router(exports.router)
    app.include_router(statements.router)
    app.include_router(account.router)
    app.include_router(keys.router)
    app.include_router(orders.router)
    app.include_router(links.router)
    console.install(app)

    observability.install(app)
    schemas.document(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return _error(422, exc.code, exc.reason, exc.field)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own checks (a path id that is not a number, a missing form field) answer in
        # balsong's one error shape too, naming the first field at fault.
        first = exc.errors()[0] if exc.errors() else {}
        location = [
            str(part) for part in first.get("loc", ()) if part not in ("path", "query", "body", "header")
        ]
        return _error(422, "invalid", str(first.get("msg", "invalid request")), ".".join(location) or None)

    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, str(exc), headers=headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(InsufficientBalance)
    async def insufficient(_: Request, exc: InsufficientBalance) -> JSONResponse:
        # Amounts as decimal strings: points may have fractions, and JSON floats would round them.
        return _error(
            402, "insufficient_balance", str(exc), needed=str(exc.needed), available=str(exc.available)
        )

    @app.exception_handler(IntakeLimited)
    async def limited(_: Request, exc: IntakeLimited) -> JSONResponse:
        details = {"limit": exc.limit} if exc.limit else {}
        return _error(
            429, exc.code, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)}, **details
        )

    @app.exception_handler(SignInThrottled)
    async def throttled(_: Request, exc: SignInThrottled) -> JSONResponse:
        return _error(429, exc.code, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)})

    @app.exception_handler(JobNotPaused)
    async def not_paused(_: Request, exc: JobNotPaused) -> JSONResponse:
        return _error(409, "job_not_paused", str(exc), "status")

    @app.exception_handler(IdempotencyConflict)
    async def conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return _error(422, "idempotency_key_reused", str(exc), "Idempotency-Key")

    @app.exception_handler(IdempotencyInProgress)
    async def in_progress(_: Request, exc: IdempotencyInProgress) -> JSONResponse:
        return _error(409, "idempotency_key_in_progress", str(exc), "Idempotency-Key")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", exc)
        return _error(503, "unavailable", "the database is unavailable; nothing was accepted, retry later")

    return app
