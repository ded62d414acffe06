"""Recording outcomes: into Redis first (live counters + the result stream), PostgreSQL later.

A worker records a batch's outcomes in one pipelined round trip: one stream entry for the whole
batch plus the counter increments. The flusher (`engine.flusher`) drains the stream into
PostgreSQL in bulk. Delivery reports, which may arrive twice or out of order, go to the stream
only: the flusher moves their counters after PostgreSQL has said which rows really changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from redis import Redis

from carriers.base import Outcome, SubmitOutcome
from engine.keys import Keys

#: Recipient statuses, in the only order they may move: queued -> submitted -> a final one.
QUEUED, SUBMITTED, DELIVERED, FAILED, EXPIRED = "queued", "submitted", "delivered", "failed", "expired"
#: A KakaoTalk recipient whose message failed and who was handed to SMS/LMS (a second row).
FALLBACK = "fallback"
#: A recipient never submitted because its job was cancelled (or its reservation missed).
CANCELLED = "cancelled"
#: Reason of a recipient given up because its job was cancelled.
CANCELLED_REASON = "cancelled"
#: A delivery report of a passing failure ("phone off"): the recipient is sent again.
RETRY = "retry"
FINAL_STATUSES = (DELIVERED, FAILED, EXPIRED, CANCELLED)
#: Reason of a recipient whose retries ran past the channel's deadline.
EXPIRED_REASON = "expired"

_STATUS_OF_OUTCOME = {
    Outcome.ACCEPTED: SUBMITTED,
    Outcome.DELIVERED: DELIVERED,
    Outcome.FAILED: FAILED,
    # "Try again later" is never recorded: the sender moves such recipients to a retry batch.
    # Should one reach here, failing it with the carrier's reason beats losing it.
    Outcome.RETRY: FAILED,
}


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """A carrier outcome tied back to the recipient (and attempt) it belongs to."""

    job_id: int
    seq: int
    outcome: SubmitOutcome
    attempt: int = 0

    @property
    def status(self) -> str:
        """The row's new status; ``retry`` for a passing failure reported after submission."""
        return RETRY if self.outcome.outcome is Outcome.RETRY else _STATUS_OF_OUTCOME[self.outcome.outcome]


def _send_entry(
    job_id: int, job_created_at: datetime, batch_seq: int, batch_done: bool, at: datetime, packed: list[Any]
) -> dict[str, Any]:
    """A result-stream entry for outcomes of one batch: ``o`` holds (seq, status, reason code,
    reason text, carrier id) per recipient; ``done`` says the batch has nothing left to record."""
    return {
        "t": "send",
        "job": job_id,
        "ca": job_created_at.timestamp(),
        "batch": batch_seq,
        "done": batch_done,
        "at": at.timestamp(),
        "o": packed,
    }


@dataclass(frozen=True, slots=True)
class SubmissionTally:
    """What one recorded submission did to the counters (metrics count the same)."""

    #: Accepted by the carrier (in flight or delivered at once).
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    fallbacks: int = 0
    #: Failures by reason code.
    reasons: dict[str, int] | None = None


def reason_code(outcome: SubmitOutcome) -> str:
    """Our reason code for a carrier failure: the carrier's own code, namespaced."""
    return f"carrier_{outcome.code}"


class ResultRecorder:
    """Writes outcomes to the result stream and moves the live counters."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        # The stream is never trimmed by length: an entry leaves it only once the flusher has
        # committed it to PostgreSQL.
        self.redis = redis
        self.keys = keys

    def record_submission(
        self,
        *,
        job_id: int,
        job_created_at: datetime,
        batch_seq: int,
        outcomes: Sequence[tuple[int, SubmitOutcome]],
        batch_done: bool,
        at: datetime,
        falls_back: bool = False,
    ) -> SubmissionTally:
        """Record what the carrier said at submission of (part of) a batch; returns the tally.

        ``batch_done`` is False when some of the batch's recipients have no outcome yet (the
        call's outcome is unknown); the batch then stays claimed until it is reconciled. With
        ``falls_back`` (KakaoTalk with a fallback), a failure hands the recipient to SMS/LMS.
        """
        packed = []
        sent = in_flight = delivered = failed = fallbacks = 0
        reasons: dict[str, int] = {}
        texts: dict[str, str] = {}
        for seq, outcome in outcomes:
            status = _STATUS_OF_OUTCOME[outcome.outcome]
            code = None
            if status == SUBMITTED:
                sent += 1
                in_flight += 1
            elif status == DELIVERED:
                sent += 1
                delivered += 1
            elif falls_back:
                status = FALLBACK
                fallbacks += 1
                code = reason_code(outcome)
            else:
                failed += 1
                code = reason_code(outcome)
                reasons[code] = reasons.get(code, 0) + 1
                texts[code] = outcome.message
            packed.append((seq, status, code, outcome.message if code else None, outcome.carrier_id))
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        counts_key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        pipe.hincrby(counts_key, "queued", -len(outcomes))
        for name, value in (
            ("sent", sent),
            ("in_flight", in_flight),
            ("delivered", delivered),
            ("failed", failed),
            ("fallbacks", fallbacks),
        ):
            if value:
                pipe.hincrby(counts_key, name, value)
        for code, count in reasons.items():
            pipe.hincrby(counts_key, f"reason:{code}", count)
        if texts:
            pipe.hset(counts_key, mapping={f"text:{code}": text for code, text in texts.items()})
        pipe.execute()
        return SubmissionTally(sent, delivered, failed, fallbacks, reasons)

    def record_expired(
        self,
        *,
        job_id: int,
        job_created_at: datetime,
        batch_seq: int,
        seqs: Sequence[int],
        reason: str,
        batch_done: bool,
        at: datetime,
    ) -> None:
        """Record recipients whose retries ran out of time: final, status ``expired``."""
        packed = [(seq, EXPIRED, EXPIRED_REASON, reason, None) for seq in seqs]
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        pipe.hincrby(key, "queued", -len(seqs))
        pipe.hincrby(key, "expired", len(seqs))
        pipe.hincrby(key, f"reason:{EXPIRED_REASON}", len(seqs))
        pipe.hset(key, f"text:{EXPIRED_REASON}", reason)
        pipe.execute()

    def record_cancelled(
        self,
        *,
        job_id: int,
        job_created_at: datetime,
        batch_seq: int,
        seqs: Sequence[int],
        batch_done: bool,
        at: datetime,
    ) -> None:
        """Record recipients of a cancelled job that were never submitted: final, ``cancelled``.
        Through the result stream like any outcome, so counters and rows move together."""
        text = "not sent: the job was cancelled"
        packed = [(seq, CANCELLED, CANCELLED_REASON, text, None) for seq in seqs]
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        if seqs:
            pipe.hincrby(key, "queued", -len(seqs))
            pipe.hincrby(key, "cancelled", len(seqs))
        pipe.execute()

    def record_reports(self, reports: Sequence[RecipientOutcome], *, carrier: str | None = None) -> None:
        """Queue final results from delivery reports for the flusher to apply (idempotently).
        With ``carrier``, the flusher applies them only to recipients that carrier sent."""
        if not reports:
            return
        packed = [
            (
                r.job_id,
                r.seq,
                r.status,
                reason_code(r.outcome) if r.status in (FAILED, RETRY) else None,
                r.outcome.message if r.status in (FAILED, RETRY) else None,
                r.outcome.result_at.timestamp() if r.outcome.result_at else None,
                r.attempt,
            )
            for r in reports
        ]
        entry: dict[str, Any] = {"t": "report", "r": packed}
        if carrier is not None:
            entry["c"] = carrier
        self.redis.xadd(self.keys.results, {"d": orjson.dumps(entry)})
