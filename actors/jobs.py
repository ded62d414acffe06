"""Actors of the send pipeline: plan a job, send a batch (bulk or transactional), reconcile."""

from __future__ import annotations

import logging

import dramatiq

from actors.broker import PLAN_QUEUE, RECONCILE_QUEUE, SEND_QUEUES, TRANSACTIONAL_QUEUES
from actors.publish import publish_batches
from engine import planning
from engine.planning import BatchRef
from engine.reconcile import reconcile_batch as reconcile
from engine.runtime import Runtime, get_runtime
from engine.sending import ClaimedBatch, SliceEnd, SliceResult, claim_batch, mark_sent, release_batch

log = logging.getLogger(__name__)

#: Dramatiq runs a worker's prefetched messages lowest priority number first: transactional
#: batches overtake bulk ones waiting in the same worker.
TRANSACTIONAL_PRIORITY, BULK_PRIORITY = 0, 100


@dramatiq.actor(queue_name=PLAN_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000)
def plan_job(job_id: int) -> None:
    """Split a job into batches and publish the first of them (its fair-share window)."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        batches = planning.plan_job(conn, job_id, rt.settings.batch_size, rt.settings.batch_window)
        planning.initialise_counters(conn, rt.redis, rt.keys, job_id)
    publish_batches(batches)


# Registered on the SMS queues; messages for other channels are routed to their own queues by
# `publish_batches` and consumed by the same actors.
@dramatiq.actor(
    queue_name=SEND_QUEUES["sms"], priority=BULK_PRIORITY, max_retries=5, min_backoff=500, max_backoff=10_000
)
def send_batch(job_id: int, batch_seq: int) -> None:
    """Claim a bulk batch, send a slice of it within the rate limits, record the outcomes."""
    _send(job_id, batch_seq)


@dramatiq.actor(
    queue_name=TRANSACTIONAL_QUEUES["sms"],
    priority=TRANSACTIONAL_PRIORITY,
    max_retries=5,
    min_backoff=200,
    max_backoff=5_000,
)
def send_transactional_batch(job_id: int, batch_seq: int) -> None:
    """The same for a transactional batch (OTP, order notices): its own queues, served first."""
    _send(job_id, batch_seq)


def _send(job_id: int, batch_seq: int) -> None:
    rt = get_runtime()
    with rt.pool.connection() as conn:
        claimed = claim_batch(conn, job_id, batch_seq, rt.worker_id)
    if claimed is None:
        log.info(
            "batch already claimed or recorded; nothing to do", extra={"job_id": job_id, "batch": batch_seq}
        )
        return
    finish_slice(rt, claimed, rt.batch_sender.send(claimed))


def finish_slice(rt: Runtime, claimed: ClaimedBatch, result: SliceResult) -> None:
    """After a slice: hand the rest of the batch back, or publish the job's next batches."""
    if result.end is SliceEnd.HANDED_BACK:
        with rt.pool.connection() as conn:
            release_batch(conn, claimed.job_id, claimed.seq, result.next_seq)
        ref = BatchRef(claimed.job_id, claimed.seq, claimed.channel, claimed.priority)
        publish_batches([ref], delay_seconds=result.delay_seconds)
    elif result.end is SliceEnd.FINISHED:
        with rt.pool.connection() as conn:
            mark_sent(conn, claimed.job_id, claimed.seq)
            publish_batches(planning.top_up(conn, claimed.job_id, rt.settings.batch_window))


@dramatiq.actor(queue_name=RECONCILE_QUEUE, max_retries=10, min_backoff=5_000, max_backoff=120_000)
def reconcile_batch(job_id: int, batch_seq: int) -> None:
    """Resolve a batch left claimed by querying the carrier; submit only what it never saw."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        carrier = rt.carrier_for("sms")
        resolved = reconcile(
            conn,
            carrier,
            rt.batch_sender,
            job_id=job_id,
            batch_seq=batch_seq,
            older_than_seconds=rt.settings.reconcile_after_seconds,
            worker=rt.worker_id,
        )
    if resolved is not None:
        finish_slice(rt, *resolved)
