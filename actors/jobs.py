"""Actors of the send pipeline: plan a job, send a batch (bulk or transactional), reconcile."""

from __future__ import annotations

import logging
from datetime import timedelta

import dramatiq

from actors.broker import PLAN_QUEUE, RECONCILE_QUEUE, SEND_QUEUES, TRANSACTIONAL_QUEUES
from actors.publish import (
    PLAN_JOB,
    RECONCILE_BATCH,
    SEND_BATCH,
    SEND_TRANSACTIONAL_BATCH,
    publish_batches,
)
from engine import planning
from engine.compliance import in_quiet_hours, quiet_hours_end
from engine.job_states import current_status
from engine.lifecycle.statuses import JobStatus
from engine.pausing import pause_if_failing
from engine.pipeline_metrics import count_expired
from engine.planning import BatchRef
from engine.reconcile import reconcile_batch as reconcile
from engine.retries import backoff_seconds, deadline_seconds, defer_batch, past_deadline, schedule_retry
from engine.runtime import Runtime, get_runtime
from engine.sending import ClaimedBatch, SliceEnd, SliceResult, claim_batch, mark_sent, release_batch
from metrics import BATCH_SLICES, RECIPIENTS_CANCELLED, RETRIES_SCHEDULED

log = logging.getLogger(__name__)

#: Waits longer than this go to the retry ledger, not to the broker's delay queue (Dramatiq
#: holds delayed messages unacknowledged in worker memory until due).
MAX_BROKER_DELAY_SECONDS = 30.0

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
    publish_batches(batches)
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
    rt = get_runtime()
    with rt.pool.connection() as conn:
        claimed = claim_batch(conn, job_id, batch_seq, rt.worker_id, rt.clock.now())
    if claimed is None:
        log.info(
            "batch already claimed or recorded, or its job is paused; nothing to do",
            extra={"job_id": job_id, "batch_id": batch_seq},
        )
        return
    if expire_if_late(rt, claimed, list(claimed.seq_of_reference.values())):
        finish_batch(rt, claimed)
        return
    now = rt.clock.now()
    if claimed.advertisement and claimed.seq_of_reference and in_quiet_hours(now):
        # Advertising waits out the night (21:00-08:00 KST) in the retry ledger, unsent.
        morning = quiet_hours_end(now)
        log.info("advertising batch held until the morning", extra={"job_id": job_id, "batch": batch_seq})
        wait_in_ledger(rt, claimed, min(claimed.seq_of_reference.values()), (morning - now).total_seconds())
        return
    finish_slice(rt, claimed, rt.batch_sender.send(claimed))


def finish_slice(rt: Runtime, claimed: ClaimedBatch, result: SliceResult) -> None:
    """After a slice: retry batches for recipients to try again, then hand the rest of the
    batch back, defer it, or publish the job's next batches (none once the job is paused)."""
    BATCH_SLICES.labels(claimed.channel, result.end.value).inc()
    log.debug(
        "batch slice ended",
        extra={"job_id": claimed.job_id, "batch_id": claimed.seq, "end": result.end.value},
    )
    if result.end is SliceEnd.HALTED:
        # (Cancelled is the only halted status: a paused job's batches are never claimed, see
        # engine.sending's JOB_MAY_SUBMIT, so a pause never halts a slice under way.)
        drop_batch(rt, claimed, list(result.unsent_seqs))
        return
    try:
        pause_if_failing(rt.pool, rt.redis, rt.keys, rt.settings, claimed.job_id)
    except Exception:
        # The check is advisory: failing it must not leave this slice's batch unfinished.
        log.exception("could not check the job's failure ratio", extra={"job_id": claimed.job_id})
    if result.retry_seqs and result.end is not SliceEnd.UNKNOWN:
        # (With an unknown outcome they stay queued in this batch: its reconciliation sends them.)
        retry_later(rt, claimed, list(result.retry_seqs), claimed.retry_attempt)
        RETRIES_SCHEDULED.labels(claimed.channel).inc(len(result.retry_seqs))
        if result.end is SliceEnd.FINISHED:
            rt.recorder.record_submission(
                job_id=claimed.job_id,
                job_created_at=claimed.job_created_at,
                batch_seq=claimed.seq,
                outcomes=[],
                batch_done=True,
                at=rt.clock.now(),
            )
    if result.end is SliceEnd.HANDED_BACK:
        assert result.next_seq is not None
        if result.delay_seconds > MAX_BROKER_DELAY_SECONDS:
            # Long waits never live in the broker: the batch waits in the retry ledger instead.
            wait_in_ledger(rt, claimed, result.next_seq, result.delay_seconds)
            return
        with rt.pool.connection() as conn:
            release_batch(conn, claimed.job_id, claimed.seq, result.next_seq)
        ref = BatchRef(claimed.job_id, claimed.seq, claimed.channel, claimed.priority)
        publish_batches([ref], delay_seconds=result.delay_seconds)
    elif result.end is SliceEnd.DEFERRED:
        assert result.next_seq is not None
        rest = [seq for seq in claimed.seq_of_reference.values() if seq >= result.next_seq]
        if expire_if_late(rt, claimed, rest):
            finish_batch(rt, claimed)
            return
        wait_in_ledger(rt, claimed, result.next_seq, retry_delay(rt, claimed.retry_attempt + 1))
    elif result.end is SliceEnd.FINISHED:
        finish_batch(rt, claimed)


def wait_in_ledger(rt: Runtime, claimed: ClaimedBatch, next_seq: int, delay_seconds: float) -> None:
    """Put the rest of the batch (from ``next_seq``) in the retry ledger, due after the delay."""
    with rt.pool.connection() as conn:
        if current_status(conn, claimed.job_id) == JobStatus.CANCELLED:
            # Cancelled while this slice was sent: hand the rest back now rather than after the
            # wait (up to the retry cap); its next claim drops it, and the job ends as soon as
            # its submissions are known.
            release_batch(conn, claimed.job_id, claimed.seq, next_seq)
            publish_batches([BatchRef(claimed.job_id, claimed.seq, claimed.channel, claimed.priority)])
            return
        defer_batch(
            conn,
            rt.retry_ledger,
            job_id=claimed.job_id,
            seq=claimed.seq,
            next_seq=next_seq,
            due_at=rt.clock.now() + timedelta(seconds=delay_seconds),
        )


def drop_batch(rt: Runtime, claimed: ClaimedBatch, seqs: list[int]) -> None:
    """The batch's job was cancelled: its recipients not submitted end ``cancelled``, and the
    batch is done (its job can finish)."""
    RECIPIENTS_CANCELLED.labels(claimed.channel).inc(len(seqs))
    rt.recorder.record_cancelled(
        job_id=claimed.job_id,
        job_created_at=claimed.job_created_at,
        batch_seq=claimed.seq,
        seqs=seqs,
        batch_done=True,
        at=rt.clock.now(),
    )
    finish_batch(rt, claimed)


def finish_batch(rt: Runtime, claimed: ClaimedBatch) -> None:
    """The worker is done with the batch: it leaves the job's window, and the next comes in."""
    with rt.pool.connection() as conn:
        mark_sent(conn, claimed.job_id, claimed.seq)
        publish_batches(planning.top_up(conn, claimed.job_id, rt.settings.batch_window))


def retry_later(rt: Runtime, claimed: ClaimedBatch, seqs: list[int], attempt: int) -> None:
    """Put ``seqs`` in a new retry batch due after back-off, or expire them if too late."""
    if expire_if_late(rt, claimed, seqs, batch_done=False):
        return
    now = rt.clock.now()
    with rt.pool.connection() as conn:
        if current_status(conn, claimed.job_id) == JobStatus.CANCELLED:
            # Cancelled meanwhile: these are not tried again.
            RECIPIENTS_CANCELLED.labels(claimed.channel).inc(len(seqs))
            rt.recorder.record_cancelled(
                job_id=claimed.job_id,
                job_created_at=claimed.job_created_at,
                batch_seq=claimed.seq,
                seqs=seqs,
                batch_done=False,
                at=now,
            )
            return
        schedule_retry(
            conn,
            rt.retry_ledger,
            job_id=claimed.job_id,
            channel=claimed.channel,
            seqs=seqs,
            first_attempt_at=claimed.first_attempt_at or now,
            attempt=attempt + 1,
            due_at=now + timedelta(seconds=retry_delay(rt, attempt + 1)),
        )


def expire_if_late(rt: Runtime, claimed: ClaimedBatch, seqs: list[int], *, batch_done: bool = True) -> bool:
    """Expire ``seqs`` if the channel's retry deadline has passed since the first attempt."""
    now = rt.clock.now()
    if not past_deadline(rt.settings, claimed.channel, claimed.first_attempt_at, now):
        return False
    count_expired(claimed.channel, len(seqs))
    hours = deadline_seconds(rt.settings, claimed.channel) / 3600
    rt.recorder.record_expired(
        job_id=claimed.job_id,
        job_created_at=claimed.job_created_at,
        batch_seq=claimed.seq,
        seqs=seqs,
        reason=f"not accepted by the carrier within {hours:g} hours of the first attempt",
        batch_done=batch_done,
        at=now,
    )
    return True


def retry_delay(rt: Runtime, attempt: int) -> float:
    return backoff_seconds(attempt, rt.settings.retry_base_seconds, rt.settings.retry_cap_seconds)


@dramatiq.actor(
    actor_name=RECONCILE_BATCH,
    queue_name=RECONCILE_QUEUE,
    max_retries=10,
    min_backoff=5_000,
    max_backoff=120_000,
)
def reconcile_batch(job_id: int, batch_seq: int) -> None:
    """Resolve a batch left claimed by querying the carrier; submit only what it never saw."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        channel = conn.execute(
            "SELECT channel FROM batches WHERE job_id = %s AND seq = %s", (job_id, batch_seq)
        ).fetchone()
        carrier = rt.carrier_for(channel[0] if channel else "sms")
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
        # Ids in the text: how often this happens (and to which job) is what operators look for.
        claimed, result = resolved
        log.warning(
            "reconciled job %s batch %s with the carrier (attempt %s): %s",
            job_id,
            batch_seq,
            claimed.attempt,
            result.end.value,
        )
        finish_slice(rt, claimed, result)
