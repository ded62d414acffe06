"""Security headers on every response of the API and the console, from one ASGI middleware.

Every response says: run no script or style but the site's own files (and the statement's own
inline ones, by hash), be framed by no one, never guess a content type, send no referrer to other
sites. A route that sets one of these headers itself keeps its own value. The interactive API
documentation (Swagger UI, ReDoc) loads its scripts from a CDN and starts them inline: its pages
get a looser policy of their own; they show the OpenAPI document and no tenant's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders

from engine.reporting.statement_render import SCRIPT_SOURCE, STYLE_SOURCE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The Content-Security-Policy of every response but the API documentation's pages.
POLICY = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' {SCRIPT_SOURCE}",
        f"style-src 'self' {STYLE_SOURCE}",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

#: Swagger UI and ReDoc as FastAPI serves them: CDN scripts and styles, an inline start script.
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})

#: The other headers, the same on every response.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """Add :data:`POLICY` (or :data:`DOCS_POLICY`) and :data:`HEADERS` to every HTTP response,
    error answers of other middleware included, unless the response has them already."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if scope["path"] in DOCS_PATHS else POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
