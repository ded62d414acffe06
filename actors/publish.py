"""Publishing messages (with publisher confirms) for the API, the actors and the scheduler."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import dramatiq

from actors.broker import SEND_QUEUES
from engine.planning import BatchRef, mark_enqueued
from engine.runtime import get_runtime


def publish_plan(job_id: int) -> None:
    from actors.jobs import plan_job

    plan_job.send(job_id)


def publish_batches(batches: Sequence[BatchRef]) -> None:
    """Publish one send_batch message per batch on its channel's queue, then mark them enqueued.

    Marking comes after the broker confirmed: a crash in between leaves batches unmarked, and
    the scheduler publishes them again (harmless: the claim lets only one message send)."""
    from actors.jobs import send_batch

    if not batches:
        return
    broker = dramatiq.get_broker()
    enqueued: dict[int, list[int]] = defaultdict(list)
    for ref in batches:
        message = send_batch.message(ref.job_id, ref.seq).copy(queue_name=SEND_QUEUES[ref.channel])
        broker.enqueue(message)
        enqueued[ref.job_id].append(ref.seq)
    with get_runtime().pool.connection() as conn:
        for job_id, seqs in enqueued.items():
            mark_enqueued(conn, job_id, seqs)


def publish_reconcile(job_id: int, batch_seq: int) -> None:
    from actors.jobs import reconcile_batch

    reconcile_batch.send(job_id, batch_seq)
