"""Sending one batch: claim it, call the carrier, record every recipient's outcome.

The claim comes before the carrier call and is the guard against double submission: the broker
delivers at least once, but only the worker whose UPDATE moved the batch from ``planned`` to
``claimed`` calls the carrier. A redelivered message finds the batch claimed (or recorded) and
does nothing; a batch left claimed by a worker that died is reconciled by querying the carrier by
reference (`engine.reconcile`), never blindly resent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from psycopg import Connection

from carriers.base import Batch, Carrier, Channel, Outcome, Recipient, SubmitOutcome
from engine.clock import Clock
from engine.errors import CarrierOutcomeUnknown, CarrierRejected, CarrierRetryable
from engine.references import make_reference, parse_reference
from engine.results import ResultRecorder

log = logging.getLogger(__name__)

_CLAIM = """
    UPDATE batches b
    SET state = 'claimed', claimed_at = now(), claimed_by = %(worker)s, attempts = b.attempts + 1
    FROM jobs j
    WHERE b.job_id = %(job)s AND b.seq = %(batch)s AND b.state = 'planned' AND j.id = b.job_id
    RETURNING b.channel, b.first_seq, b.last_seq, b.attempts, j.created_at, j.sender, j.body, j.title,
              j.variables
"""

_RECIPIENTS = """
    SELECT seq, phone, "values" FROM recipients
    WHERE job_id = %s AND job_created_at = %s AND seq BETWEEN %s AND %s AND status = 'queued'
    ORDER BY seq
"""


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    job_id: int
    job_created_at: datetime
    seq: int
    attempt: int
    carrier_batch: Batch
    #: recipient seq of each of ``carrier_batch.recipients``' references
    seq_of_reference: dict[str, int]


def claim_batch(conn: Connection, job_id: int, batch_seq: int, worker: str) -> ClaimedBatch | None:
    """Claim a planned batch and load its queued recipients; None if someone else has it."""
    with conn.transaction():
        row = conn.execute(_CLAIM, {"worker": worker, "job": job_id, "batch": batch_seq}).fetchone()
        if row is None:
            return None
        channel, first, last, attempt, created_at, sender, body, title, variables = row
        recipients = conn.execute(_RECIPIENTS, (job_id, created_at, first, last)).fetchall()
    return build_claimed(
        job_id, created_at, batch_seq, attempt, channel, sender, body, title, variables, recipients
    )


def build_claimed(
    job_id: int,
    created_at: datetime,
    batch_seq: int,
    attempt: int,
    channel: str,
    sender: str,
    body: str,
    title: str | None,
    variables: Sequence[str],
    recipients: Sequence[tuple[int, str, Sequence[str] | None]],
) -> ClaimedBatch:
    seq_of_reference = {}
    carrier_recipients = []
    for seq, phone, values in recipients:
        reference = make_reference(job_id, seq)
        seq_of_reference[reference] = seq
        carrier_recipients.append(Recipient(reference, phone, tuple(values) if values else ()))
    batch = Batch(
        channel=Channel(channel),
        sender=sender,
        body=body,
        recipients=carrier_recipients,
        title=title if channel == Channel.LMS else None,
        variables=tuple(variables),
        idempotency_key=f"{job_id}-{batch_seq}-{attempt}",
    )
    return ClaimedBatch(job_id, created_at, batch_seq, attempt, batch, seq_of_reference)


def release_batch(conn: Connection, job_id: int, batch_seq: int) -> None:
    """Hand a claimed batch back (nothing of it was accepted); the scheduler publishes it again."""
    conn.execute(
        "UPDATE batches SET state = 'planned', enqueued_at = NULL WHERE job_id = %s AND seq = %s"
        " AND state = 'claimed'",
        (job_id, batch_seq),
    )


class BatchSender:
    """Calls the carrier for a claimed batch and records what it said."""

    def __init__(self, carrier: Carrier, recorder: ResultRecorder, clock: Clock) -> None:
        self.carrier = carrier
        self.recorder = recorder
        self.clock = clock

    def send(self, claimed: ClaimedBatch, known: Sequence[SubmitOutcome] = ()) -> bool:
        """Submit the batch's recipients, except those whose outcome is ``known`` already (from a
        reconciliation), and record every outcome. Returns False if the carrier took nothing
        and the batch must be released for a later attempt."""
        batch = claimed.carrier_batch
        if known:
            answered = {o.reference for o in known}
            batch = replace(batch, recipients=[r for r in batch.recipients if r.reference not in answered])
        if not batch.recipients:
            self._record(claimed, known, done=True)
            return True
        try:
            outcomes = list(known) + self.carrier.submit(batch)
            done = True
        except CarrierRetryable as exc:
            if exc.partial or known:
                # Part of the batch went through: record it; the rest is reconciled later.
                self._record(claimed, [*known, *exc.partial], done=False)
                return True
            log.warning("carrier refused batch for now; releasing it", extra=self._log_extra(claimed, exc))
            return False
        except CarrierOutcomeUnknown as exc:
            log.warning(
                "carrier outcome unknown; batch left for reconciliation", extra=self._log_extra(claimed, exc)
            )
            outcomes, done = [*known, *exc.partial], False
        except CarrierRejected as exc:
            log.error("carrier rejected batch", extra=self._log_extra(claimed, exc))
            answered = {o.reference for o in [*known, *exc.partial]}
            outcomes = [*known, *exc.partial] + [
                SubmitOutcome(r.reference, Outcome.FAILED, exc.code, str(exc))
                for r in batch.recipients
                if r.reference not in answered
            ]
            done = True
        self._record(claimed, outcomes, done=done)
        return True

    def _record(self, claimed: ClaimedBatch, outcomes: Sequence[SubmitOutcome], *, done: bool) -> None:
        pairs = []
        for outcome in outcomes:
            seq = claimed.seq_of_reference.get(outcome.reference)
            if seq is None:
                parsed = parse_reference(outcome.reference)
                log.error(
                    "carrier answered for a reference not in the batch",
                    extra={"job_id": claimed.job_id, "batch": claimed.seq, "parsed": parsed},
                )
                continue
            pairs.append((seq, outcome))
        if done and len(pairs) != len(claimed.seq_of_reference):
            # Some recipients got no answer: leave the batch claimed for reconciliation.
            done = False
        self.recorder.record_submission(
            job_id=claimed.job_id,
            job_created_at=claimed.job_created_at,
            batch_seq=claimed.seq,
            outcomes=pairs,
            batch_done=done,
            at=self.clock.now(),
        )

    @staticmethod
    def _log_extra(claimed: ClaimedBatch, exc: Exception) -> dict[str, object]:
        return {"job_id": claimed.job_id, "batch": claimed.seq, "error": str(exc)}
