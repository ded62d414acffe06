"""A request id on every request: ``X-Request-Id`` read (or made), answered and logged.

An ASGI middleware, outermost but for nothing: a caller's ``X-Request-Id`` is kept if it is a
sane token (`TOKEN`: 1 to 128 of ``A-Z a-z 0-9 . _ -``), else a new one (uuid4, hex) is made.
The id is answered in the response's ``X-Request-Id``, put on every log line written while the
request runs (`engine.logs.REQUEST_ID`) and into every problem answered (`api.problems`).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.logs import REQUEST_ID

#: A request id accepted from a caller.
TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,128}")
HEADER = "X-Request-Id"

#: The path of the request being answered (a problem's ``instance``).
_PATH: ContextVar[str | None] = ContextVar("balsong_request_path", default=None)


def current_request() -> tuple[str | None, str | None]:
    """(request id, path) of the request this task is answering, or (None, None)."""
    return REQUEST_ID.get(), _PATH.get()


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if it is a sane token, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if TOKEN.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return uuid.uuid4().hex


class RequestId:
    """Give each HTTP request its id (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # Each request runs in its own task, with its own copy of the context: set, not reset,
        # so the id is still there for the 500 answer Starlette makes outside this middleware.
        REQUEST_ID.set(request_id)
        _PATH.set(scope["path"])

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
