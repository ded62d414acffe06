"""The FastAPI application: routes, and one mapping from balsong's errors to HTTP answers."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from psycopg_pool import PoolTimeout

from api import carrier_reports, jobs
from api.auth import AuthError
from api.responses import JSONResponse, error_response
from engine.errors import IdempotencyConflict, IdempotencyInProgress, JobNotPaused, NotFound, ValidationError

log = logging.getLogger(__name__)


_error = error_response


def create_app() -> FastAPI:
    import actors  # noqa: F401  (installs the broker the API publishes through)

    app = FastAPI(title="balsong", version="0.1.0", default_response_class=JSONResponse)
    app.include_router(jobs.router)
    app.include_router(carrier_reports.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return _error(422, exc.code, exc.reason, exc.field)

    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, str(exc), headers=headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

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
