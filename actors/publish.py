"""Publishing messages (with publisher confirms) for the API, the actors and the scheduler.

Messages are built from the actors' names and queues, not from the actor objects: this module
imports no actor module (they import it), and a process that only publishes (the API, the
scheduler) never has to declare actors. `ACTOR_NAMES` is what each actor is declared with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dramatiq

from actors.broker import PLAN_QUEUE, RECONCILE_QUEUE, REPORTS_QUEUE, send_queue
from engine.dispatch.planning import BatchRef, mark_unpublished
from engine.runtime import get_runtime

log = logging.getLogger(__name__)

#: Names the actors are declared with (``@dramatiq.actor(actor_name=...)``).
PLAN_JOB = "plan_job"
RESEND_FAILED = "resend_failed"
SEND_BATCH = "send_batch"
SEND_TRANSACTIONAL_BATCH = "send_transactional_batch"
RECONCILE_BATCH = "reconcile_batch"
APPLY_WEBHOOK = "apply_webhook"


def _message(actor_name: str, queue_name: str, *args: Any) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={})


def publish_plan(job_id: int) -> None:
    dramatiq.get_broker().enqueue(_message(PLAN_JOB, PLAN_QUEUE, job_id))


def publish_resend(job_id: int) -> None:
    dramatiq.get_broker().enqueue(_message(RESEND_FAILED, PLAN_QUEUE, job_id))


def publish_or_keep(batches: Sequence[BatchRef], delay_seconds: float = 0.0) -> None:
    """Publish the batches; if the broker is down, leave them to the outbox, which publishes
    them again as soon as it can (within seconds of the broker's return). The caller's own
    message then ends normally: what it must hand on is safe in PostgreSQL, not in a publish
    that failed."""
    try:
        publish_batches(batches, delay_seconds)
    except Exception:
        log.warning(
            "could not publish batches (broker down?); the outbox publishes them again",
            extra={"batches": len(batches)},
            exc_info=True,
        )
        with get_runtime().pool.connection() as conn:
            mark_unpublished(conn, batches)


def publish_batches(batches: Sequence[BatchRef], delay_seconds: float = 0.0) -> None:
    """Publish one send message per batch on its channel's queue for its priority; the broker
    confirms each. (Callers mark batches enqueued in PostgreSQL first: see `planning.top_up`.)"""
    broker = dramatiq.get_broker()
    delay = int(delay_seconds * 1000) or None
    for ref in batches:
        actor_name = SEND_TRANSACTIONAL_BATCH if ref.priority == "transactional" else SEND_BATCH
        broker.enqueue(
            _message(actor_name, send_queue(ref.channel, ref.priority), ref.job_id, ref.seq), delay=delay
        )


def publish_reconcile(job_id: int, batch_seq: int) -> None:
    dramatiq.get_broker().enqueue(_message(RECONCILE_BATCH, RECONCILE_QUEUE, job_id, batch_seq))


def publish_webhook(carrier: str, body: str) -> None:
    dramatiq.get_broker().enqueue(_message(APPLY_WEBHOOK, REPORTS_QUEUE, carrier, body))
