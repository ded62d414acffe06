"""Request metrics for the HTTP API, and its ``/metrics`` endpoint.

``/metrics`` is served without authentication on the API's own port, as Prometheus expects:
it carries no personal data (bounded labels only), and a deployment keeps it off the public
internet at the load balancer (route only ``/v1/`` and ``/healthz`` outside), the conventional
arrangement. It is left out of the OpenAPI schema.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metrics import API_REQUEST_SECONDS, API_REQUESTS
from metrics.exposition import process_registry
from metrics.labels import OTHER, http_status

#: Methods counted by name; anything else a client invents is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (a 404 for an unknown path).
UNMATCHED = "unmatched"


class RequestMetrics:
    """ASGI middleware counting requests by method, route template (never the raw path, which
    holds job ids) and status, and timing them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else OTHER
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            API_REQUESTS.labels(method, template, http_status(status)).inc()
            API_REQUEST_SECONDS.labels(method, template).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """Count the app's requests and serve ``GET /metrics`` (every API worker's samples)."""
    registry = process_registry()
    app.add_middleware(RequestMetrics)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
