"""Claims: a batch moves from ``planned`` to ``claimed`` before any carrier call, and is let go
(sent, handed back, handed over) only by the claim that holds it.

The claim is the guard against double submission: the broker delivers at least once, but only
the worker whose UPDATE moved the batch from ``planned`` to ``claimed`` calls the carrier. A
redelivered message finds the batch claimed (or recorded) and does nothing; a batch left claimed
by a worker that died (its lease lapsed, see `engine.dispatch.worker_leases`) is taken over at
once and reconciled by querying the carrier by reference (`engine.dispatch.reconcile`), never
blindly resent. Every statement that lets go of a claim requires it to be still ours
(``claimed_by``): a batch taken over is its taker's.

Imports: psycopg; engine.dispatch (job states, references), engine.intake.template; carriers/
for the batch types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg import Connection

from carriers.base import Batch, Channel, Recipient
from engine.dispatch.job_states import JOB_MAY_SUBMIT
from engine.dispatch.references import make_reference
from engine.intake.template import Template

#: What a batch needs of its job (see `build_claimed`), returned after the batch's own columns.
JOB_COLUMNS = """j.created_at, j.tenant_id, j.priority, j.sender, j.requested_channel, j.body, j.title,
              j.variables, j.template_code, j.fallback_channel, j.fallback_body, j.fallback_title,
              j.advertisement, j.status"""

_CLAIM = (
    """
    UPDATE batches b
    SET state = 'claimed', claimed_at = now(), claimed_by = %(worker)s, attempts = b.attempts + 1,
        first_attempt_at = coalesce(b.first_attempt_at, %(now)s)
    FROM jobs j
    WHERE b.job_id = %(job)s AND b.seq = %(batch)s AND b.state = 'planned' AND j.id = b.job_id
      AND """
    + JOB_MAY_SUBMIT
    + """
    RETURNING b.channel, b.next_seq, b.last_seq, b.seqs, b.attempts, b.first_attempt_at, b.retry_attempt,
              """
    + JOB_COLUMNS
    + """
"""
)

# A batch's recipients still to send: from next_seq to the end of its range or, for a retry
# batch, of its list (the range bounds the scan either way).
RECIPIENTS_FROM = """
    SELECT seq, phone, "values", attempt FROM recipients
    WHERE job_id = %(job)s AND job_created_at = %(created_at)s AND seq BETWEEN %(next)s AND %(last)s
      AND (%(seqs)s::int[] IS NULL OR seq = ANY(%(seqs)s::int[])) AND status = 'queued'
    ORDER BY seq
"""


def load_recipients(
    conn: Connection, job_id: int, created_at: datetime, next_seq: int, last_seq: int, seqs: list[int] | None
) -> list[tuple[int, str, list[str] | None, int]]:
    params = {"job": job_id, "created_at": created_at, "next": next_seq, "last": last_seq, "seqs": seqs}
    return conn.execute(RECIPIENTS_FROM, params).fetchall()


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    job_id: int
    job_created_at: datetime
    tenant_id: int
    priority: str
    seq: int
    attempt: int
    carrier_batch: Batch
    #: recipient seq of each of ``carrier_batch.recipients``' references
    seq_of_reference: dict[str, int]
    #: When the batch's recipients were first tried (their retry deadline runs from here).
    first_attempt_at: datetime | None = None
    #: How many times this batch has been put back to wait for a retry.
    retry_attempt: int = 0
    #: KakaoTalk with a fallback: a final failure hands the recipient to SMS/LMS.
    falls_back: bool = False
    #: An advertising job: it may not send during the night (see `engine.intake.compliance`).
    advertisement: bool = False
    #: The job's status when the batch was claimed: a halted (cancelled) job submits nothing.
    job_status: str = "sending"
    #: The lease the batch was claimed under (``batches.claimed_by``).
    claimed_by: str = ""

    @property
    def channel(self) -> str:
        return self.carrier_batch.channel.value


def claim_batch(
    conn: Connection, job_id: int, batch_seq: int, worker: str, now: datetime
) -> ClaimedBatch | None:
    """Claim a planned batch and load its recipients still to send; None if someone else has it
    (or its job may not submit now: see `engine.lifecycle.pausing`)."""
    with conn.transaction():
        row = conn.execute(
            _CLAIM, {"worker": worker, "job": job_id, "batch": batch_seq, "now": now}
        ).fetchone()
        if row is None:
            return None
        channel, next_seq, last, seqs, attempt, first_attempt_at, retry_attempt, *job = row
        recipients = load_recipients(conn, job_id, job[0], next_seq, last, seqs)
    claimed = build_claimed(job_id, batch_seq, attempt, channel, job, recipients)
    return replace(claimed, first_attempt_at=first_attempt_at, retry_attempt=retry_attempt, claimed_by=worker)


def build_claimed(
    job_id: int,
    batch_seq: int,
    attempt: int,
    channel: str,
    job: Sequence[Any],
    recipients: Sequence[tuple[int, str, Sequence[str] | None, int]],
) -> ClaimedBatch:
    """A claimed batch from its recipients and its job's columns (`JOB_COLUMNS`, in order)."""
    (
        created_at,
        tenant_id,
        priority,
        sender,
        requested_channel,
        body,
        title,
        variables,
        template_code,
        fallback_channel,
        fallback_body,
        fallback_title,
        advertisement,
        job_status,
    ) = job
    if requested_channel == "kakao" and channel != "kakao":
        # A KakaoTalk job's SMS/LMS batches carry its fallback text.
        body, title = fallback_body, fallback_title
        variables = Template.parse(fallback_body).variables
        template_code = None
    seq_of_reference = {}
    carrier_recipients = []
    for seq, phone, values, recipient_attempt in recipients:
        reference = make_reference(job_id, seq, recipient_attempt)
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
        template_code=template_code,
    )
    return ClaimedBatch(
        job_id,
        created_at,
        tenant_id,
        priority,
        batch_seq,
        attempt,
        batch,
        seq_of_reference,
        falls_back=channel == "kakao" and fallback_channel is not None,
        advertisement=bool(advertisement),
        job_status=job_status,
    )


# Every statement letting go of a claim also keeps the carrier requests its slice went in
# (``request_ids``), for a takeover to ask the carrier about (`engine.dispatch.reconcile`).


def mark_sent(conn: Connection, claimed: ClaimedBatch, request_ids: Sequence[str] = ()) -> None:
    """The worker is done with the batch (every outcome recorded in Redis): it leaves its job's
    window at once, without waiting for the flusher to make it ``recorded``. (Only while the
    claim is still ours: a batch taken over is its taker's to finish.)"""
    conn.execute(
        "UPDATE batches SET state = 'sent', sent_at = now(), request_ids = request_ids || %s::text[]"
        " WHERE job_id = %s AND seq = %s AND state = 'claimed' AND claimed_by = %s",
        (list(request_ids), claimed.job_id, claimed.seq, claimed.claimed_by),
    )


def hand_over_unknown(conn: Connection, claimed: ClaimedBatch, request_ids: Sequence[str] = ()) -> None:
    """A call's outcome is unknown (it timed out after the request left): the holder lets go
    of its claim, so the batch is taken over within a second and reconciled with the carrier
    (`engine.dispatch.reconcile`). The request had the whole call timeout to reach the carrier."""
    conn.execute(
        "UPDATE batches SET claimed_by = NULL, request_ids = request_ids || %s::text[]"
        " WHERE job_id = %s AND seq = %s AND state = 'claimed' AND claimed_by = %s",
        (list(request_ids), claimed.job_id, claimed.seq, claimed.claimed_by),
    )


def release_batch(
    conn: Connection, claimed: ClaimedBatch, next_seq: int | None = None, request_ids: Sequence[str] = ()
) -> None:
    """Hand a claimed batch back to ``planned``, noting how far it got; the caller publishes it."""
    conn.execute(
        "UPDATE batches SET state = 'planned', next_seq = coalesce(%s, next_seq), enqueued_at = now(),"
        " request_ids = request_ids || %s::text[]"
        " WHERE job_id = %s AND seq = %s AND state = 'claimed' AND claimed_by = %s",
        (next_seq, list(request_ids), claimed.job_id, claimed.seq, claimed.claimed_by),
    )
