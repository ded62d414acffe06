"""What becomes of a claimed batch: it is sent a slice at a time, and after each slice its
recipients to try again go to retry batches (or expire past their deadline), the rest of the
batch is handed back, deferred to the retry ledger or dropped (its job cancelled), and once it is
done the job's next batches come into its window.

Nothing here publishes: each step returns the batches to publish (`ToPublish`), and the actor
publishes them (`actors.jobs`). The recipients' statuses and counters move through the
recorder (`engine.lifecycle.results`), by the lifecycle's one transition table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine.dispatch import planning
from engine.dispatch.claims import ClaimedBatch, claim_batch, hand_over_unknown, mark_sent, release_batch
from engine.dispatch.job_states import current_status
from engine.dispatch.planning import BatchRef
from engine.dispatch.reconcile import ONLY_DEAD_CLAIMS, reconcile_batch
from engine.dispatch.sending import SliceEnd, SliceResult
from engine.intake.compliance import in_quiet_hours, quiet_hours_end
from engine.lifecycle.pausing import pause_if_failing
from engine.lifecycle.pipeline_metrics import count_expired
from engine.lifecycle.retries import (
    deadline_seconds,
    defer_batch,
    past_deadline,
    retry_delay_seconds,
    retry_due_at,
    schedule_retry,
)
from engine.lifecycle.statuses import JobStatus
from engine.runtime import Runtime
from metrics import BATCH_SLICES, LEASE_TAKEOVERS, RECIPIENTS_CANCELLED, RETRIES_SCHEDULED

log = logging.getLogger(__name__)

#: Waits longer than this go to the retry ledger, not to the broker's delay queue (Dramatiq
#: holds delayed messages unacknowledged in worker memory until due).
MAX_BROKER_DELAY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ToPublish:
    """Batches the caller must publish, each after ``delay_seconds``."""

    batches: list[BatchRef] = field(default_factory=list)
    delay_seconds: float = 0.0


#: Nothing to publish.
NOTHING = ToPublish()


def send_batch(rt: Runtime, job_id: int, batch_seq: int) -> ToPublish:
    """Claim a batch, send a slice of it within the rate limits, record the outcomes; what to
    publish next."""
    lease = rt.lease.current()
    with rt.pool.connection() as conn:
        claimed = claim_batch(conn, job_id, batch_seq, lease, rt.clock.now())
    if claimed is None:
        # A redelivered message (its worker died, or the broker restarted) whose batch is held
        # under a lapsed lease continues it now rather than wait for the scheduler's sweep.
        taken = take_over(rt, job_id, batch_seq, only_dead_claims=True)
        if taken is None:
            log.info(
                "batch already claimed or recorded, or its job is paused; nothing to do",
                extra={"job_id": job_id, "batch_id": batch_seq},
            )
            return NOTHING
        return taken
    with rt.lease.holding(job_id, batch_seq):
        return _send_claimed(rt, claimed)


def _send_claimed(rt: Runtime, claimed: ClaimedBatch) -> ToPublish:
    job_id, batch_seq = claimed.job_id, claimed.seq
    if expire_if_late(rt, claimed, list(claimed.seq_of_reference.values())):
        return finish_batch(rt, claimed)
    now = rt.clock.now()
    if claimed.advertisement and claimed.seq_of_reference and in_quiet_hours(now):
        # Advertising waits out the night (21:00-08:00 KST) in the retry ledger, unsent.
        morning = quiet_hours_end(now)
        log.info("advertising batch held until the morning", extra={"job_id": job_id, "batch": batch_seq})
        return wait_in_ledger(
            rt, claimed, min(claimed.seq_of_reference.values()), (morning - now).total_seconds()
        )
    return finish_slice(rt, claimed, rt.batch_sender.send(claimed))


def take_over(
    rt: Runtime, job_id: int, batch_seq: int, *, only_dead_claims: bool = False
) -> ToPublish | None:
    """Take over a batch held under a lapsed lease (or, unless ``only_dead_claims``, let go with
    its outcomes lost): ask the carrier what it has of the batch, record that, send the rest.
    None if the batch is not stale (its holder is alive, or it is done)."""
    with rt.lease.holding(job_id, batch_seq):
        return _take_over(rt, job_id, batch_seq, only_dead_claims)


def _take_over(rt: Runtime, job_id: int, batch_seq: int, only_dead_claims: bool) -> ToPublish | None:
    with rt.pool.connection() as conn:
        row = conn.execute(
            "SELECT channel FROM batches WHERE job_id = %s AND seq = %s", (job_id, batch_seq)
        ).fetchone()
        if row is None:
            return None
        resolved = reconcile_batch(
            conn,
            rt.carrier_for(row[0]),
            rt.batch_sender,
            job_id=job_id,
            batch_seq=batch_seq,
            older_than_seconds=ONLY_DEAD_CLAIMS if only_dead_claims else rt.settings.reconcile_after_seconds,
            worker=rt.lease.current(),
        )
    if resolved is None:
        return None
    claimed, result = resolved
    # Ids in the text: how often this happens (and to which job) is what operators look for.
    log.warning(
        "reconciled job %s batch %s with the carrier (attempt %s): %s",
        job_id,
        batch_seq,
        claimed.attempt,
        result.end.value,
    )
    LEASE_TAKEOVERS.labels(claimed.channel).inc()
    return finish_slice(rt, claimed, result)


def finish_slice(rt: Runtime, claimed: ClaimedBatch, result: SliceResult) -> ToPublish:
    """After a slice: retry batches for recipients to try again, then hand the rest of the
    batch back, defer it, or publish the job's next batches (none once the job is paused)."""
    BATCH_SLICES.labels(claimed.channel, result.end.value).inc()
    log.debug(
        "batch slice ended",
        extra={"job_id": claimed.job_id, "batch_id": claimed.seq, "end": result.end.value},
    )
    if result.end is SliceEnd.ABANDONED:
        log.warning(
            "worker lease lapsed: batch left to whoever takes it over",
            extra={"job_id": claimed.job_id, "batch_id": claimed.seq},
        )
        return NOTHING
    if result.end is SliceEnd.HALTED:
        # (Cancelled is the only halted status: a paused job's batches are never claimed, see
        # engine.dispatch.claims's JOB_MAY_SUBMIT, so a pause never halts a slice under way.)
        return drop_batch(rt, claimed, list(result.unsent_seqs))
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
            return wait_in_ledger(rt, claimed, result.next_seq, result.delay_seconds, result.request_ids)
        with rt.pool.connection() as conn:
            release_batch(conn, claimed, result.next_seq, result.request_ids)
        ref = BatchRef(claimed.job_id, claimed.seq, claimed.channel, claimed.priority)
        return ToPublish([ref], delay_seconds=result.delay_seconds)
    if result.end is SliceEnd.DEFERRED:
        assert result.next_seq is not None
        rest = [seq for seq in claimed.seq_of_reference.values() if seq >= result.next_seq]
        if expire_if_late(rt, claimed, rest):
            return finish_batch(rt, claimed, result.request_ids)
        delay = retry_delay_seconds(rt.settings, claimed.retry_attempt + 1)
        return wait_in_ledger(rt, claimed, result.next_seq, delay, result.request_ids)
    if result.end is SliceEnd.FINISHED:
        return finish_batch(rt, claimed, result.request_ids)
    if result.end is SliceEnd.UNKNOWN:
        with rt.pool.connection() as conn:
            hand_over_unknown(conn, claimed, result.request_ids)
    return NOTHING


def wait_in_ledger(
    rt: Runtime, claimed: ClaimedBatch, next_seq: int, delay_seconds: float, request_ids: Sequence[str] = ()
) -> ToPublish:
    """Put the rest of the batch (from ``next_seq``) in the retry ledger, due after the delay."""
    with rt.pool.connection() as conn:
        if current_status(conn, claimed.job_id) == JobStatus.CANCELLED:
            # Cancelled while this slice was sent: hand the rest back now rather than after the
            # wait (up to the retry cap); its next claim drops it, and the job ends as soon as
            # its submissions are known.
            release_batch(conn, claimed, next_seq, request_ids)
            return ToPublish([BatchRef(claimed.job_id, claimed.seq, claimed.channel, claimed.priority)])
        defer_batch(
            conn,
            rt.retry_ledger,
            job_id=claimed.job_id,
            seq=claimed.seq,
            next_seq=next_seq,
            due_at=rt.clock.now() + timedelta(seconds=delay_seconds),
            claimed_by=claimed.claimed_by,
            request_ids=request_ids,
        )
    return NOTHING


def drop_batch(rt: Runtime, claimed: ClaimedBatch, seqs: list[int]) -> ToPublish:
    """The batch's job was cancelled: its recipients not submitted end ``cancelled``, and the
    batch is done (its job can finish)."""
    _cancel(rt, claimed, seqs, batch_done=True, at=rt.clock.now())
    return finish_batch(rt, claimed)


def _cancel(rt: Runtime, claimed: ClaimedBatch, seqs: list[int], *, batch_done: bool, at: datetime) -> None:
    """Record ``seqs`` of the batch ``cancelled``: never submitted, their job was cancelled."""
    RECIPIENTS_CANCELLED.labels(claimed.channel).inc(len(seqs))
    rt.recorder.record_cancelled(
        job_id=claimed.job_id,
        job_created_at=claimed.job_created_at,
        batch_seq=claimed.seq,
        seqs=seqs,
        batch_done=batch_done,
        at=at,
    )


def finish_batch(rt: Runtime, claimed: ClaimedBatch, request_ids: Sequence[str] = ()) -> ToPublish:
    """The worker is done with the batch: it leaves the job's window, and the next comes in."""
    with rt.pool.connection() as conn:
        mark_sent(conn, claimed, request_ids)
        return ToPublish(planning.top_up(conn, claimed.job_id, rt.settings.batch_window))


def retry_later(rt: Runtime, claimed: ClaimedBatch, seqs: list[int], attempt: int) -> None:
    """Put ``seqs`` in a new retry batch due after back-off, or expire them if too late."""
    if expire_if_late(rt, claimed, seqs, batch_done=False):
        return
    now = rt.clock.now()
    with rt.pool.connection() as conn:
        if current_status(conn, claimed.job_id) == JobStatus.CANCELLED:
            # Cancelled meanwhile: these are not tried again.
            _cancel(rt, claimed, seqs, batch_done=False, at=now)
            return
        schedule_retry(
            conn,
            rt.retry_ledger,
            job_id=claimed.job_id,
            channel=claimed.channel,
            seqs=seqs,
            first_attempt_at=claimed.first_attempt_at or now,
            attempt=attempt + 1,
            due_at=retry_due_at(rt.settings, attempt + 1, now),
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
