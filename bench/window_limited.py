"""Dramatiq's own rate limiting, used the usual way, for comparison with balsong's GCRA limiter:
an actor sends one batch of recipients in one carrier call inside ``with limiter.acquire():``
under a :class:`~dramatiq.rate_limits.WindowRateLimiter` (``limit`` batches per 1-second window,
in Redis), and Dramatiq's Retries middleware retries the message, with exponential backoff, when
the window is full (``RateLimitExceeded``). One queue, no priority lane.

Run by ``bench/ratelimit.py`` as ``dramatiq bench.window_limited:setup`` with the environment of
isolated settings plus :data:`LIMIT_ENV`, :data:`MIN_BACKOFF_ENV` and :data:`MAX_BACKOFF_ENV`.
"""

from __future__ import annotations

import os
import threading

import dramatiq
import httpx
import orjson
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from engine.config import Settings, get_settings

QUEUE = "window_limited"
ACTOR = "window_limited_send"
#: Environment: batches per 1-second window (the cap divided by the batch size).
LIMIT_ENV = "BENCH_WINDOW_LIMIT"
#: Environment: the actor's ``min_backoff`` and ``max_backoff``, in milliseconds.
MIN_BACKOFF_ENV = "BENCH_MIN_BACKOFF_MS"
MAX_BACKOFF_ENV = "BENCH_MAX_BACKOFF_MS"
SEND_NO = "0212345678"


def declare(
    settings: Settings, limit: int, min_backoff_ms: int, max_backoff_ms: int
) -> tuple[RabbitmqBroker, dramatiq.Actor[..., None]]:
    """A broker on ``settings``' vhost and the rate-limited send actor bound to it.

    Parameters:
      limit: batches allowed per 1-second window, shared by every worker through Redis.
      min_backoff_ms: first retry delay after ``RateLimitExceeded``, doubled at every retry.
      max_backoff_ms: longest retry delay.
    """
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)
    # The key carries the isolated settings' prefix, so runs never share a window.
    limiter = WindowRateLimiter(
        RedisBackend(url=settings.redis_url), f"{settings.redis_prefix}:window:sms", limit=limit, window=1
    )
    local = threading.local()

    def window_limited_send(references: list[str], phones: list[str], body: str) -> None:
        with limiter.acquire():
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=settings.sms_api_url, timeout=10)
            response = local.client.post(
                f"/sms/v3.0/appKeys/{settings.sms_app_key}/sender/sms",
                content=orjson.dumps(
                    {
                        "body": body,
                        "sendNo": SEND_NO,
                        "recipientList": [
                            {"recipientNo": phone, "recipientGroupingKey": reference}
                            for reference, phone in zip(references, phones, strict=True)
                        ],
                    }
                ),
                headers={
                    "X-Secret-Key": settings.sms_secret_key,
                    "Content-Type": "application/json;charset=UTF-8",
                },
            )
            response.raise_for_status()

    actor = dramatiq.actor(
        broker=broker,
        actor_name=ACTOR,
        queue_name=QUEUE,
        min_backoff=min_backoff_ms,
        max_backoff=max_backoff_ms,
    )(window_limited_send)
    return broker, actor


def setup() -> None:
    """The worker's entry point (``dramatiq bench.window_limited:setup``)."""
    broker, _ = declare(
        get_settings(),
        int(os.environ[LIMIT_ENV]),
        int(os.environ[MIN_BACKOFF_ENV]),
        int(os.environ[MAX_BACKOFF_ENV]),
    )
    dramatiq.set_broker(broker)
