"""Recording outcomes: into Redis first (live counters + the result stream), PostgreSQL later.

A worker records a batch's outcomes in one pipelined round trip: one stream entry for the whole
batch plus the counter increments. The flusher (`engine.lifecycle.flusher`) drains the stream into
PostgreSQL in bulk. Delivery reports, which may arrive twice or out of order, go to the stream
only: the flusher moves their counters after PostgreSQL has said which rows really changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from redis import Redis

from carriers.base import Outcome, SubmitOutcome
from engine.keys import Keys
from engine.lifecycle.statuses import RecipientStatus
from engine.lifecycle.transitions import Event, Standing, Transition, decide

#: Reason of a recipient given up because its job was cancelled.
CANCELLED_REASON = "cancelled"
#: A delivery report of a passing failure ("phone off"): the recipient is sent again.
RETRY = "retry"
#: Reason of a recipient whose retries ran past the channel's deadline.
EXPIRED_REASON = "expired"

#: The lifecycle event a carrier's answer at submission is. "Try again later" never reaches the
#: recorder: the sender moves such recipients to a retry batch.
_EVENT_OF_OUTCOME = {
    Outcome.ACCEPTED: Event.ACCEPTED,
    Outcome.DELIVERED: Event.DELIVERED,
    Outcome.FAILED: Event.FAILED,
    Outcome.RETRY: Event.FAILED,
}
_QUEUED = Standing(RecipientStatus.QUEUED)


def _from_queued(event: Event, *, falls_back: bool = False, past_deadline: bool = False) -> Transition:
    """What ``event`` does to a recipient not yet submitted (every event takes it somewhere)."""
    transition = decide(_QUEUED, event, falls_back=falls_back, past_deadline=past_deadline)
    assert transition is not None, event
    return transition


_STATUS_OF_EVENT = {event: _from_queued(event).after.status for event in set(_EVENT_OF_OUTCOME.values())}
_EXPIRY = _from_queued(Event.RETRY, past_deadline=True)
_CANCELLATION = _from_queued(Event.CANCEL)


class RecipientOutcome(NamedTuple):
    """A carrier outcome tied back to the recipient (and attempt) it belongs to (a named
    tuple: a poll makes tens of thousands a second)."""

    job_id: int
    seq: int
    outcome: SubmitOutcome
    attempt: int = 0

    @property
    def status(self) -> str:
        """The row's new status; ``retry`` for a passing failure reported after submission."""
        if self.outcome.outcome is Outcome.RETRY:
            return RETRY
        return _STATUS_OF_EVENT[_EVENT_OF_OUTCOME[self.outcome.outcome]]


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


def unflushed_age(redis: Redis, keys: Keys) -> float:
    """Seconds since the oldest outcome the flusher has not applied yet was recorded (0 when it
    has applied every one): where the flusher stands."""
    pipe = redis.pipeline(transaction=False)
    pipe.xrange(keys.results, count=1)
    pipe.time()
    first, server_time = pipe.execute()
    return entry_age(first, server_time)


def entry_age(first: list[Any], server_time: tuple[int, int]) -> float:
    """Seconds since the stream entry ``first`` (an XRANGE answer of one entry, or none) was
    added, by Redis's ``TIME`` answer ``server_time``; 0 without an entry. Entry ids start with
    Redis's own clock in ms, so the two are compared on one clock."""
    if not first:
        return 0.0
    server_seconds, server_micros = server_time
    server_ms = server_seconds * 1000 + server_micros // 1000
    return max(0.0, (server_ms - int(first[0][0].split(b"-")[0])) / 1000)


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
        events: Counter[Event] = Counter()
        reasons: dict[str, int] = {}
        texts: dict[str, str] = {}
        for seq, outcome in outcomes:
            event = _EVENT_OF_OUTCOME[outcome.outcome]
            events[event] += 1
            status, code = _STATUS_OF_EVENT[event], None
            if event is Event.FAILED:
                code = reason_code(outcome)
                if falls_back:
                    status = RecipientStatus.FALLBACK
                else:
                    reasons[code] = reasons.get(code, 0) + 1
                    texts[code] = outcome.message
            packed.append((seq, status, code, outcome.message if code else None, outcome.carrier_id))
        changes: Counter[str] = Counter()
        for event, count in events.items():
            for name, value in _from_queued(event, falls_back=falls_back).counters.items():
                changes[name] += value * count
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        counts_key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        for name, value in changes.items():
            if value:
                pipe.hincrby(counts_key, name, value)
        for code, count in reasons.items():
            pipe.hincrby(counts_key, f"reason:{code}", count)
        if texts:
            pipe.hset(counts_key, mapping={f"text:{code}": text for code, text in texts.items()})
        pipe.execute()
        failed = 0 if falls_back else events[Event.FAILED]
        fallbacks = events[Event.FAILED] - failed
        return SubmissionTally(changes["sent"], changes["delivered"], failed, fallbacks, reasons)

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
        packed = [(seq, RecipientStatus.EXPIRED, EXPIRED_REASON, reason, None) for seq in seqs]
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        for name, value in _EXPIRY.counters.items():
            pipe.hincrby(key, name, value * len(seqs))
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
        packed = [(seq, RecipientStatus.CANCELLED, CANCELLED_REASON, text, None) for seq in seqs]
        entry = _send_entry(job_id, job_created_at, batch_seq, batch_done, at, packed)
        key = self.keys.job_counts(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        if seqs:
            for name, value in _CANCELLATION.counters.items():
                pipe.hincrby(key, name, value * len(seqs))
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
                reason_code(r.outcome) if r.status in (RecipientStatus.FAILED, RETRY) else None,
                r.outcome.message if r.status in (RecipientStatus.FAILED, RETRY) else None,
                r.outcome.result_at.timestamp() if r.outcome.result_at else None,
                r.attempt,
            )
            for r in reports
        ]
        entry: dict[str, Any] = {"t": "report", "r": packed}
        if carrier is not None:
            entry["c"] = carrier
        self.redis.xadd(self.keys.results, {"d": orjson.dumps(entry)})
