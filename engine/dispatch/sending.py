"""Sending one claimed batch (`engine.dispatch.claims`): submit it to the carrier within the rate
limits, record every recipient's outcome.

The holder checks its lease before every carrier call and every record: a batch taken from it
(its lease lapsed, see `engine.dispatch.worker_leases`) is left alone (`SliceEnd.ABANDONED`).

A batch is sent in *slices*: under a rate limit its recipients go out a few at a time (see
`engine.dispatch.ratelimit`), and after ``send_slice_seconds`` the worker records what it sent,
notes the batch's progress (``next_seq``) and hands the rest back to the queue. Worker threads
are thus never held for long by one bulk batch: a transactional batch, or another job's, gets the
next free thread.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from carriers.base import Carrier, Outcome, Recipient, SubmitOutcome, request_id_of
from carriers.errors import CarrierOutcomeUnknown, CarrierRejected, CarrierRetryable
from engine.clock import Clock
from engine.dispatch.claims import ClaimedBatch
from engine.dispatch.job_states import may_submit
from engine.dispatch.rate_policy import RatePolicy
from engine.dispatch.ratelimit import chunk_size
from engine.lifecycle.pipeline_metrics import count_submission
from engine.lifecycle.results import ResultRecorder
from metrics import RATE_LIMIT_WAIT_SECONDS

log = logging.getLogger(__name__)


class SliceEnd(enum.Enum):
    #: Every recipient has an outcome (or a place in a retry batch): the batch is done.
    FINISHED = "finished"
    #: Part is sent; the rest goes back to the queue (``next_seq``, after ``delay_seconds``).
    HANDED_BACK = "handed_back"
    #: The carrier refused the request for now (5xx, connection): the rest of the batch, from
    #: ``next_seq``, waits for a retry with back-off.
    DEFERRED = "deferred"
    #: A call's outcome is unknown: the holder lets go of the claim, and the batch is taken
    #: over and reconciled with the carrier (`hand_over_unknown`).
    UNKNOWN = "unknown"
    #: The job may not submit (it was cancelled): nothing was sent; the recipients in
    #: ``unsent_seqs`` are given up (cancelled) and the batch is done.
    HALTED = "halted"
    #: The worker's lease lapsed (the process was frozen or cut off from PostgreSQL): the batch
    #: may have been taken over, so the holder neither sends nor records any more of it.
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class SliceResult:
    end: SliceEnd
    next_seq: int | None = None
    delay_seconds: float = 0.0
    #: Recipients the carrier asked to try again later (they go into a retry batch).
    retry_seqs: tuple[int, ...] = ()
    #: HALTED: the batch's recipients that were not submitted.
    unsent_seqs: tuple[int, ...] = ()
    #: The carrier requests this slice's recipients went in (kept on the batch for a takeover).
    request_ids: tuple[str, ...] = ()


#: The slice of a batch whose lease lapsed: nothing more is done with it here.
ABANDONED = SliceResult(SliceEnd.ABANDONED)


def _note_requests(requests: list[str], outcomes: Sequence[SubmitOutcome]) -> None:
    """Add the carrier requests ``outcomes`` went in to ``requests``."""
    for outcome in outcomes:
        request_id = request_id_of(outcome.carrier_id)
        if request_id is not None and (not requests or requests[-1] != request_id):
            requests.append(request_id)


class BatchSender:
    """Submits a claimed batch's recipients within the rate limits and records what the carrier
    said, one request at a time."""

    def __init__(
        self,
        carrier_for: Callable[[str], Carrier],
        recorder: ResultRecorder,
        clock: Clock,
        policy: RatePolicy,
        *,
        on_throttled: Callable[[str], None] = lambda channel: None,
        holds_lease: Callable[[str], bool] = lambda lease: True,
    ) -> None:
        self.carrier_for = carrier_for
        self.holds_lease = holds_lease
        self.recorder = recorder
        self.clock = clock
        self.policy = policy
        self.on_throttled = on_throttled
        settings = policy.settings
        self.slice_seconds = settings.send_slice_seconds
        self.handback_seconds = settings.rate_wait_handback_seconds
        self.smoothing = settings.rate_smoothing

    def send(self, claimed: ClaimedBatch, known: Sequence[SubmitOutcome] = ()) -> SliceResult:
        """Send one slice of the batch: every recipient not in ``known`` (outcomes a
        reconciliation found at the carrier), until done or the slice's time is up. The result
        names the carrier requests the slice's recipients went in."""
        requests: list[str] = []
        result = self._send(claimed, known, requests)
        if requests and result.end is not SliceEnd.ABANDONED:
            result = replace(result, request_ids=tuple(dict.fromkeys(requests)))
        return result

    def _send(
        self, claimed: ClaimedBatch, known: Sequence[SubmitOutcome], requests: list[str]
    ) -> SliceResult:
        batch = claimed.carrier_batch
        channel = claimed.channel
        retry: list[int] = []
        if not self.holds_lease(claimed.claimed_by):
            return ABANDONED
        if known:
            self._record(claimed, known, retry, done=False)
            answered = {o.reference for o in known}
            batch = replace(batch, recipients=[r for r in batch.recipients if r.reference not in answered])
        pending = list(batch.recipients)
        if not may_submit(claimed.job_status):
            # Checked here, on the claimed row's job status, so that a batch published or
            # released before its job was cancelled (retry ledger, queue, reconciliation)
            # is dropped when it comes up, at the cost of one comparison.
            # (Recipients a reconciliation found the carrier asked to retry are not retried.)
            unsent = (*retry, *(claimed.seq_of_reference[r.reference] for r in pending))
            return SliceResult(SliceEnd.HALTED, unsent_seqs=unsent)
        carrier = self.carrier_for(channel)
        limits = self.policy.limits(channel, claimed.tenant_id, batch.sender)
        size = chunk_size(self.policy.effective_rate(channel, limits), self.smoothing)
        waited = RATE_LIMIT_WAIT_SECONDS.labels(channel)
        slice_ends = time.monotonic() + self.slice_seconds
        position = 0
        while position < len(pending):
            if position and time.monotonic() >= slice_ends:
                return self._stop(SliceEnd.HANDED_BACK, claimed, pending[position], retry)
            part = pending[position : position + size]
            while True:
                booking = self.policy.limiter.reserve(channel, len(part), limits, self.handback_seconds)
                waited.observe(min(booking.wait, self.handback_seconds))
                if booking.wait > self.handback_seconds:
                    return self._stop(SliceEnd.HANDED_BACK, claimed, part[0], retry, booking.wait)
                if booking.wait > 0:
                    time.sleep(booking.wait)
                if booking.reserved:
                    break
            if not self.holds_lease(claimed.claimed_by):
                return ABANDONED
            try:
                outcomes = carrier.submit(replace(batch, recipients=part))
            except CarrierRetryable as exc:
                _note_requests(requests, exc.partial)
                if exc.partial:
                    # Part of the request went through: record it; the rest is reconciled later.
                    self._record(claimed, exc.partial, retry, done=False)
                    return SliceResult(SliceEnd.UNKNOWN, retry_seqs=tuple(retry))
                if exc.throttled:
                    # Too fast for the carrier: slow the channel down and try again shortly.
                    self.on_throttled(channel)
                    self.policy.limiter.penalise(channel)
                    return self._stop(SliceEnd.HANDED_BACK, claimed, part[0], retry, 1.0)
                log.warning(
                    "carrier refused a request for now; the rest of the batch waits for a retry",
                    extra=self._log_extra(claimed, exc),
                )
                return self._stop(SliceEnd.DEFERRED, claimed, part[0], retry)
            except CarrierOutcomeUnknown as exc:
                _note_requests(requests, exc.partial)
                log.warning(
                    "carrier outcome unknown; batch left for reconciliation",
                    extra=self._log_extra(claimed, exc),
                )
                self._record(claimed, exc.partial, retry, done=False)
                return SliceResult(SliceEnd.UNKNOWN, retry_seqs=tuple(retry))
            except CarrierRejected as exc:
                # Refused for good (bad credentials, unregistered sender): so is the rest.
                log.error("carrier rejected the request", extra=self._log_extra(claimed, exc))
                answered = {o.reference for o in exc.partial}
                rest = [
                    SubmitOutcome(r.reference, Outcome.FAILED, exc.code, str(exc))
                    for r in pending[position:]
                    if r.reference not in answered
                ]
                self._record(claimed, [*exc.partial, *rest], retry, done=True)
                return SliceResult(SliceEnd.FINISHED, retry_seqs=tuple(retry))
            _note_requests(requests, outcomes)
            if not self.holds_lease(claimed.claimed_by):
                # Frozen during the call: the batch may be its taker's now, who asks the carrier
                # what it has (these included) and records that.
                return ABANDONED
            position += len(part)
            last = position >= len(pending)
            if not self._record(claimed, outcomes, retry, done=last, expected=part):
                return SliceResult(SliceEnd.UNKNOWN, retry_seqs=tuple(retry))
        if not pending:
            self._record(claimed, [], retry, done=True)
        return SliceResult(SliceEnd.FINISHED, retry_seqs=tuple(retry))

    @staticmethod
    def _stop(
        end: SliceEnd, claimed: ClaimedBatch, first_unsent: Recipient, retry: list[int], delay: float = 0.0
    ) -> SliceResult:
        next_seq = claimed.seq_of_reference[first_unsent.reference]
        return SliceResult(end, next_seq, delay, tuple(retry))

    def _record(
        self,
        claimed: ClaimedBatch,
        outcomes: Sequence[SubmitOutcome],
        retry: list[int],
        *,
        done: bool,
        expected: Sequence[Recipient] = (),
    ) -> bool:
        """Record outcomes, collecting in ``retry`` the recipients the carrier asked to try
        again later; False (and the batch not done) if some of ``expected`` got no answer."""
        pairs = []
        for outcome in outcomes:
            seq = claimed.seq_of_reference.get(outcome.reference)
            if seq is None:
                log.error(
                    "carrier answered for a reference not in the batch",
                    extra={"job_id": claimed.job_id, "batch_id": claimed.seq},
                )
            elif outcome.outcome is Outcome.RETRY:
                retry.append(seq)
            else:
                pairs.append((seq, outcome))
        answered = {o.reference for o in outcomes}
        complete = all(r.reference in answered for r in expected)
        now = self.clock.now()
        tally = self.recorder.record_submission(
            job_id=claimed.job_id,
            job_created_at=claimed.job_created_at,
            batch_seq=claimed.seq,
            outcomes=pairs,
            # With recipients moved to a retry batch, the batch is done only once that batch
            # exists (the caller records it): a crash in between leaves this one to reconcile.
            batch_done=done and complete and not retry,
            at=now,
            falls_back=claimed.falls_back,
        )
        count_submission(
            claimed.channel,
            self.carrier_for(claimed.channel).name,
            sent=tally.sent,
            delivered=tally.delivered,
            fallbacks=tally.fallbacks,
            reasons=tally.reasons,
            intake_to_submission_seconds=(now - claimed.job_created_at).total_seconds(),
        )
        return complete

    @staticmethod
    def _log_extra(claimed: ClaimedBatch, exc: Exception) -> dict[str, object]:
        return {"job_id": claimed.job_id, "batch_id": claimed.seq, "error": str(exc)}
