"""Counting and logging messages that failed every retry (poison messages).

Dramatiq's Retries middleware marks a message failed once its retries are spent; the RabbitMQ
broker then rejects it and RabbitMQ moves it to the queue's dead-letter queue (``<queue>.XQ``),
where it stays for ``dramatiq_dead_message_ttl`` (7 days by default). Nothing is silently
dropped: each one is counted (``balsong_dead_letters_total``), logged with its actor, job and
batch, and listed, requeued or purged with ``balsong dead-letters``.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from metrics import DEAD_LETTERS

log = logging.getLogger(__name__)


def message_ids(args: tuple[Any, ...] | list[Any]) -> dict[str, int]:
    """The job id and batch of our actors' messages (``(job_id, batch_seq)``); only integer
    arguments are shown, never a body that may hold phone numbers (webhooks)."""
    ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    return dict(zip(("job_id", "batch"), ints, strict=False))


class DeadLetters(Middleware):
    """Runs after Retries (add it *before* Retries: Dramatiq calls ``after_*`` hooks in
    reverse order), so it sees the message Retries has just given up on."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.broker.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        DEAD_LETTERS.labels(message.queue_name, message.actor_name).inc()
        log.error(
            # Retries counts failed attempts (the first included) by the time it gives up.
            "message dead-lettered after %s attempts: %s: %s",
            message.options.get("retries", 0),
            type(exception).__name__,
            exception,
            extra={"queue": message.queue_name, "actor": message.actor_name, **message_ids(message.args)},
        )
