"""What every NHN Cloud Notification adapter does the same way: one HTTP call, with transport
failures mapped to balsong's carrier errors, timed and counted by status."""

from __future__ import annotations

import time
from typing import Any

import httpx

from engine.errors import CarrierOutcomeUnknown, CarrierRetryable
from metrics import CARRIER_REQUEST_SECONDS, CARRIER_RESPONSES
from metrics.labels import http_status

#: What a ``call`` answered when no HTTP status came back.
TRANSPORT_ERROR = "transport_error"


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
