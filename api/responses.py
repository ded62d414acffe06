"""JSON responses serialised with orjson (fast, and Hangul stays UTF-8); errors are `api.problems`."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
