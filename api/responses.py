"""JSON responses serialised with orjson (fast, and Hangul stays UTF-8)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **details: object,
) -> JSONResponse:
    """balsong's one error shape: ``{"error": {"code", "message", "field"?, ...details}}``."""
    body: dict[str, object] = {"code": code, "message": message, **details}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)
