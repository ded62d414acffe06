"""What every NHN Cloud Notification adapter does the same way: one HTTP call, with transport
failures mapped to balsong's carrier errors."""

from __future__ import annotations

from typing import Any

import httpx

from engine.errors import CarrierOutcomeUnknown, CarrierRetryable


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
) -> httpx.Response:
    """The provider's answer. A request that never left is retryable; one that left and got no
    answer is, for a send (``sending``), an unknown outcome, never to be resent blindly."""
    try:
        return client.request(method, path, content=content, params=params, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise CarrierRetryable(f"{provider} unreachable: {exc!r}") from exc
    except httpx.TransportError as exc:
        if sending:
            raise CarrierOutcomeUnknown(f"{provider} answer lost: {exc!r}") from exc
        raise CarrierRetryable(f"{provider} query failed: {exc!r}") from exc
