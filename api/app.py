"""The FastAPI application: routes, and one mapping from balsong's errors to HTTP answers."""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse
from psycopg_pool import PoolTimeout

from api import jobs
from engine.errors import IdempotencyConflict, IdempotencyInProgress, NotFound, ValidationError

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, field: str | None = None) -> ORJSONResponse:
    body: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return ORJSONResponse({"error": body}, status_code=status)


def create_app() -> FastAPI:
    import actors  # noqa: F401  (installs the broker the API publishes through)

    app = FastAPI(title="balsong", version="0.1.0", default_response_class=ORJSONResponse)
    app.include_router(jobs.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, exc: ValidationError) -> ORJSONResponse:
        return _error(422, exc.code, exc.reason, exc.field)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> ORJSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(IdempotencyConflict)
    async def conflict(_: Request, exc: IdempotencyConflict) -> ORJSONResponse:
        return _error(422, "idempotency_key_reused", str(exc), "Idempotency-Key")

    @app.exception_handler(IdempotencyInProgress)
    async def in_progress(_: Request, exc: IdempotencyInProgress) -> ORJSONResponse:
        return _error(409, "idempotency_key_in_progress", str(exc), "Idempotency-Key")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> ORJSONResponse:
        log.error("database unavailable: %s", exc)
        return _error(503, "unavailable", "the database is unavailable; nothing was accepted, retry later")

    return app
