"""Request body size limits, enforced while the body arrives rather than after.

A job of a million recipients is tens of megabytes of JSON, so intake must accept large bodies;
every other route takes small ones. An ASGI middleware refuses a body over its route's limit
with 413 as soon as its ``Content-Length`` says so, or — for a chunked body — as soon as the
bytes received pass the limit, so no oversized body is ever held in memory whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Body limit of every route but job intake, in bytes.
DEFAULT_LIMIT_BYTES = 1024 * 1024
#: Job intake: the API's, and the console's recipient upload (발송하기), which is spooled to disk
#: and read row by row (`api.console.send`).
INTAKE_PATHS = frozenset({"/v1/jobs", "/console/send"})


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over ``intake_limit_bytes`` on `INTAKE_PATHS` and over
    ``DEFAULT_LIMIT_BYTES`` elsewhere, with a 413 problem (`api.problems`)."""

    def __init__(self, app: ASGIApp, intake_limit_bytes: int) -> None:
        self.app = app
        self.intake_limit_bytes = intake_limit_bytes

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"].rstrip("/") in INTAKE_PATHS:
            return self.intake_limit_bytes
        return DEFAULT_LIMIT_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, receive, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem(
        413,
        "request_too_large",
        f"the request body is over {limit} bytes; split the job into smaller ones",
        "body",
    )
    await response(scope, receive, send)
