"""Reading balsong's error answers (RFC 9457 problems, `api.problems`) in tests."""

from __future__ import annotations

from typing import Any

import httpx

#: The media type every error answer has.
PROBLEM_TYPE = "application/problem+json"


def problem(response: httpx.Response) -> dict[str, Any]:
    """The problem ``response`` answers, after checking it is one: its media type, and
    ``status``, ``type`` and ``instance`` agreeing with the response and request."""
    assert response.headers.get("content-type") == PROBLEM_TYPE, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body, dict), response.text[:300]
    assert body["status"] == response.status_code, body
    assert body["type"] == f"urn:balsong:problem:{body['code']}", body
    assert body["instance"] == response.request.url.path, body
    assert body["request_id"] == response.headers["x-request-id"], body
    return body
