"""The FastAPI application: its middleware, routes, error answers (`api.problems`) and OpenAPI
document (`api.schemas`)."""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from actors.broker import install_broker
from api import (
    account,
    carrier_reports,
    console,
    exports,
    job_actions,
    job_callbacks,
    jobs,
    keys,
    links,
    observability,
    orders,
    problems,
    recipients,
    schemas,
    statements,
    stats,
)
from api.inputs import ParameterGuard
from api.intake_body import process_budget
from api.limits import BodySizeLimit
from api.request_id import RequestId
from api.responses import JSONResponse
from api.security_headers import SecurityHeaders
from engine.config import get_settings
from engine.unknown_settings import report_unknown_settings


def create_app() -> FastAPI:
    report_unknown_settings()  # each uvicorn worker process, once its logging is set up
    get_settings().check_secrets()  # also when uvicorn is started without `balsong api`
    # The broker the API publishes through (jobs to plan, webhooks to apply, resends).
    install_broker(get_settings())
    app = FastAPI(title="balsong", version="0.1.0", default_response_class=JSONResponse)
    # Added first, so it runs inside the size limit: a form it reads is limited like any body.
    app.add_middleware(ParameterGuard)
    app.add_middleware(BodySizeLimit, intake_limit_bytes=get_settings().max_job_request_bytes)
    app.state.intake_budget = process_budget(get_settings())
    app.add_middleware(SecurityHeaders)  # outside the size limit, so 413s get the headers too
    app.add_middleware(RequestId)  # added last: outermost, so every answer and log line has the id
    app.include_router(jobs.router)
    app.include_router(job_actions.router)
    app.include_router(job_callbacks.router)
    app.include_router(carrier_reports.router)
    app.include_router(exports.router)
    app.include_router(statements.router)
    app.include_router(account.router)
    app.include_router(keys.router)
    app.include_router(orders.router)
    app.include_router(links.router)
    app.include_router(stats.router)
    app.include_router(recipients.router)
    console.install(app)

    observability.install(app)
    schemas.document(app)
    problems.install(app, html_not_found={"/console": console.not_found_page})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str | int]:
        # The pid lets whoever started the API tell its own from another on the same port
        # (`cli.stack`): a uvicorn worker's process group is the one its starter made.
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)

    return app
