"""Actors of the send pipeline: plan a job, send a batch, reconcile a batch."""

from __future__ import annotations

import logging

import dramatiq

from actors.broker import PLAN_QUEUE, RECONCILE_QUEUE, SEND_QUEUES
from actors.publish import publish_batches
from engine import planning
from engine.reconcile import reconcile_batch as reconcile
from engine.runtime import get_runtime
from engine.sending import claim_batch, release_batch

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name=PLAN_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000)
def plan_job(job_id: int) -> None:
    """Split a job into batches and publish one send_batch message per batch."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        batches = planning.plan_job(conn, job_id, rt.settings.batch_size)
        planning.initialise_counters(conn, rt.redis, rt.keys, job_id)
    publish_batches(batches)


# Registered on the SMS queue; messages for other channels are routed to their own queue by
# `publish_batches` and consumed by the same actor.
@dramatiq.actor(queue_name=SEND_QUEUES["sms"], max_retries=5, min_backoff=500, max_backoff=10_000)
def send_batch(job_id: int, batch_seq: int) -> None:
    """Claim a batch, submit it to the carrier, record every recipient's outcome."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        claimed = claim_batch(conn, job_id, batch_seq, rt.worker_id)
    if claimed is None:
        log.info(
            "batch already claimed or recorded; nothing to do", extra={"job_id": job_id, "batch": batch_seq}
        )
        return
    if not rt.batch_sender.send(claimed):
        with rt.pool.connection() as conn:
            release_batch(conn, job_id, batch_seq)


@dramatiq.actor(queue_name=RECONCILE_QUEUE, max_retries=10, min_backoff=5_000, max_backoff=120_000)
def reconcile_batch(job_id: int, batch_seq: int) -> None:
    """Resolve a batch left claimed by querying the carrier; submit only what it never saw."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        carrier = rt.carrier_for("sms")
        reconcile(
            conn,
            carrier,
            rt.batch_sender,
            job_id=job_id,
            batch_seq=batch_seq,
            older_than_seconds=rt.settings.reconcile_after_seconds,
            worker=rt.worker_id,
        )
