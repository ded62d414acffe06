"""What every NHN Cloud Notification adapter does the same way: one HTTP call, with transport
failures mapped to balsong's carrier errors, timed and counted by status."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import httpx
import orjson

from carriers.errors import CarrierOutcomeUnknown, CarrierRejected, CarrierRetryable
from metrics import CARRIER_REQUEST_SECONDS, CARRIER_RESPONSES
from metrics.labels import http_status

#: What a ``call`` answered when no HTTP status came back.
TRANSPORT_ERROR = "transport_error"
#: HTTP statuses that mean "not now": timeout, throttled, unavailable.
RETRYABLE_STATUSES = frozenset({408, 429, 503})

#: A provider's own handling of a refusal in the body's ``header`` (code, message, body):
#: returns the body to use it after all, raises, or returns None for the common handling.
Refusal = Callable[[int, str, dict[str, Any]], dict[str, Any] | None]


def call(
    client: httpx.Client,
    provider: str,
    method: str,
    path: str,
    *,
    content: bytes | None = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    sending: bool,
    carrier: str,
) -> httpx.Response:
    """The provider's answer. A request that never left is retryable; one that left and got no
    answer is, for a send (``sending``), an unknown outcome, never to be resent blindly.

    ``carrier`` (the adapter's ``name``) labels the request's latency and status metrics.
    """
    operation = "send" if sending else "query"
    status = TRANSPORT_ERROR
    started = time.perf_counter()
    try:
        response = client.request(method, path, content=content, params=params, headers=headers)
        status = http_status(response.status_code)
        return response
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise CarrierRetryable(f"{provider} unreachable: {exc!r}") from exc
    except httpx.TransportError as exc:
        if sending:
            raise CarrierOutcomeUnknown(f"{provider} answer lost: {exc!r}") from exc
        raise CarrierRetryable(f"{provider} query failed: {exc!r}") from exc
    finally:
        CARRIER_REQUEST_SECONDS.labels(carrier, operation).observe(time.perf_counter() - started)
        CARRIER_RESPONSES.labels(carrier, operation, status).inc()


def answer(
    response: httpx.Response,
    provider: str,
    *,
    sending: bool,
    api_message: Callable[[int], str],
    transient_codes: Collection[int],
    on_refusal: Refusal | None = None,
) -> dict[str, Any]:
    """The decoded body of a successful answer, or the matching ``engine.errors`` exception.

    Parameters:
      api_message: the provider's text for a result code, when the header carries none.
      transient_codes: result codes that mean "try again later".
      on_refusal: the provider's special refusals, looked at before the common handling.
    """
    status = response.status_code
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    header = body.get("header") if isinstance(body, dict) else None
    refused = isinstance(header, dict) and header.get("isSuccessful") is False
    if status in RETRYABLE_STATUSES:
        raise CarrierRetryable(f"{provider} refused the request: HTTP {status}", throttled=status == 429)
    if refused and isinstance(header, dict) and isinstance(body, dict):
        code = as_int(header.get("resultCode"))
        message = str(header.get("resultMessage") or api_message(code))
        if on_refusal is not None:
            kept = on_refusal(code, message, body)
            if kept is not None:
                return kept
        if code in transient_codes:
            raise CarrierRetryable(f"{provider} failed: {code} {message}")
        raise CarrierRejected(str(code), message)
    if status >= 500 or (status < 300 and not isinstance(header, dict)):
        if sending:
            raise CarrierOutcomeUnknown(f"{provider} answered HTTP {status} without a readable result")
        raise CarrierRetryable(f"{provider} answered HTTP {status} without a readable result")
    if status >= 300:
        raise CarrierRejected(f"http-{status}", response.text[:200])
    assert isinstance(body, dict)
    return body


def as_int(value: Any) -> int:
    """A provider's number field as an int; -9999 when it is missing or not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -9999
