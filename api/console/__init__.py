"""The operator console: sign-in, send history, job pages and their actions (see `routes`); the
send page (`send`), the money page (`money`), sender numbers (`senders`), the opt-out list
(`opt_outs`), statistics (`stats`), the audit log (`audit`) and the recipient search (`search`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import audit, money, opt_outs, search, send, senders, stats
from api.console.routes import HERE, install_error_pages, not_found_page, router

__all__ = ["install", "not_found_page"]


def install(app: FastAPI) -> None:
    """Serve the console's pages, static files and error pages from ``app``."""
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console_static")
    app.include_router(router)
    app.include_router(send.router)
    app.include_router(money.router)
    app.include_router(senders.router)
    app.include_router(opt_outs.router)
    app.include_router(stats.router)
    app.include_router(audit.router)
    app.include_router(search.router)
    install_error_pages(app)
