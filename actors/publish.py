"""Publishing messages (with publisher confirms) for the API, the actors and the scheduler."""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq

from actors.broker import send_queue
from engine.planning import BatchRef


def publish_plan(job_id: int) -> None:
    from actors.jobs import plan_job

    plan_job.send(job_id)


def publish_resend(job_id: int) -> None:
    from actors.resend import resend_failed

    resend_failed.send(job_id)


def publish_batches(batches: Sequence[BatchRef], delay_seconds: float = 0.0) -> None:
    """Publish one send message per batch on its channel's queue for its priority; the broker
    confirms each. (Callers mark batches enqueued in PostgreSQL first: see `planning.top_up`.)"""
    from actors.jobs import send_batch, send_transactional_batch

    broker = dramatiq.get_broker()
    delay = int(delay_seconds * 1000) or None
    for ref in batches:
        actor = send_transactional_batch if ref.priority == "transactional" else send_batch
        message = actor.message(ref.job_id, ref.seq).copy(queue_name=send_queue(ref.channel, ref.priority))
        broker.enqueue(message, delay=delay)


def publish_reconcile(job_id: int, batch_seq: int) -> None:
    from actors.jobs import reconcile_batch

    reconcile_batch.send(job_id, batch_seq)
