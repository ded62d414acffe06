"""Actors of the send pipeline: plan a job, send a batch (bulk or transactional), reconcile.

Thin: each calls the engine (`engine.lifecycle.batches` for a batch's course) and publishes the
batches it returns."""

from __future__ import annotations

import logging

import dramatiq

from actors.broker import PLAN_QUEUE, RECONCILE_QUEUE, SEND_QUEUES, TRANSACTIONAL_QUEUES
from actors.publish import (
    PLAN_JOB,
    RECONCILE_BATCH,
    SEND_BATCH,
    SEND_TRANSACTIONAL_BATCH,
    publish_or_keep,
)
from engine.dispatch import planning
from engine.lifecycle import batches
from engine.runtime import get_runtime

log = logging.getLogger(__name__)

#: Dramatiq runs a worker's prefetched messages lowest priority number first: transactional
#: batches overtake bulk ones waiting in the same worker.
TRANSACTIONAL_PRIORITY, BULK_PRIORITY = 0, 100


@dramatiq.actor(
    actor_name=PLAN_JOB, queue_name=PLAN_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000
)
def plan_job(job_id: int) -> None:
    """Split a job into batches and publish the first of them (its fair-share window)."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        batches = planning.plan_job(conn, job_id, rt.settings.batch_size, rt.settings.batch_window)
        planning.initialise_counters(conn, rt.redis, rt.keys, job_id)
    publish_or_keep(batches)
    with rt.pool.connection() as conn:
        planning.refresh_statistics(conn, job_id)


# Registered on the SMS queues; messages for other channels are routed to their own queues by
# `publish_batches` and consumed by the same actors.
@dramatiq.actor(
    actor_name=SEND_BATCH,
    queue_name=SEND_QUEUES["sms"],
    priority=BULK_PRIORITY,
    max_retries=5,
    min_backoff=500,
    max_backoff=10_000,
)
def send_batch(job_id: int, batch_seq: int) -> None:
    """Claim a bulk batch, send a slice of it within the rate limits, record the outcomes."""
    _send(job_id, batch_seq)


@dramatiq.actor(
    actor_name=SEND_TRANSACTIONAL_BATCH,
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
    follow_up = batches.send_batch(get_runtime(), job_id, batch_seq)
    publish_or_keep(follow_up.batches, delay_seconds=follow_up.delay_seconds)


@dramatiq.actor(
    actor_name=RECONCILE_BATCH,
    queue_name=RECONCILE_QUEUE,
    max_retries=10,
    min_backoff=5_000,
    max_backoff=120_000,
)
def reconcile_batch(job_id: int, batch_seq: int) -> None:
    """Take over a batch whose holder is gone: query the carrier, submit only what it never saw."""
    follow_up = batches.take_over(get_runtime(), job_id, batch_seq)
    if follow_up is not None:
        publish_or_keep(follow_up.batches, delay_seconds=follow_up.delay_seconds)
