"""Reconciling a batch whose outcome is unknown, by asking the carrier, never by resending.

A batch stays ``claimed`` when its worker died or froze mid-call, or when a call timed out after
the request left. As soon as the lease it was claimed under has lapsed
(`engine.dispatch.worker_leases`), the scheduler, or a redelivery of its message, hands it to
`reconcile_batch`: the carrier is asked which of the batch's still-queued recipients it knows (by
our reference); those are recorded as the carrier says; only those it has never seen are
submitted. A batch let go (``sent``) whose outcomes never reached PostgreSQL (Redis lost them) is
reconciled the same way, after an age or at once when Redis is seen to have lost its data.

A recipient whose outcome was recorded in Redis but not yet flushed to PostgreSQL still looks
queued here: the carrier knows it, so it is recorded again as the carrier says, never resent
(and PostgreSQL rows only move forward: recording twice changes nothing).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from psycopg import Connection

from carriers.base import Carrier, Outcome, SubmitOutcome
from engine.dispatch.claims import JOB_COLUMNS, ClaimedBatch, build_claimed, load_recipients
from engine.dispatch.sending import BatchSender, SliceResult
from engine.dispatch.worker_leases import DEAD_CLAIM
from engine.lifecycle import dead_entries
from engine.lifecycle.dead_entries import DeadEntry
from engine.lifecycle.entry_checks import Refused, check_code, clean_text

#: "Never" as an age: only batches claimed under a lapsed lease are stale then.
ONLY_DEAD_CLAIMS = 1e9

_STALE = f"""
    ({DEAD_CLAIM})
    OR (b.state = 'sent' AND b.sent_at < now() - make_interval(secs => %(age)s))
"""

_RECLAIM = (
    """
    UPDATE batches b
    SET state = 'claimed', claimed_at = now(), claimed_by = %(worker)s, attempts = b.attempts + 1,
        -- A batch let go but never recorded may miss outcomes of any of its slices.
        next_seq = CASE WHEN b.state = 'sent' THEN b.first_seq ELSE b.next_seq END
    FROM jobs j, (SELECT claimed_at AS previous FROM batches WHERE job_id = %(job)s AND seq = %(batch)s) p
    WHERE b.job_id = %(job)s AND b.seq = %(batch)s AND j.id = b.job_id AND ("""
    + _STALE
    + """)
    RETURNING p.previous, b.request_ids, b.channel, b.next_seq, b.last_seq, b.seqs, b.attempts,
              b.first_attempt_at, b.retry_attempt, """
    + JOB_COLUMNS
    + """
"""
)

#: How far before the old claim to look for the carrier's records (clock skew, queueing).
LOOKUP_MARGIN = timedelta(minutes=5)


#: What a recipient whose result the carrier knows but wrote malformed is shown meanwhile.
UNREADABLE_RESULT = "known to the carrier; its result was unreadable (set aside)"

#: References looked up between two renewals of the claim.
LOOKUP_CHUNK = 50


def renew_claim(conn: Connection, job_id: int, batch_seq: int, attempt: int) -> bool:
    """Refresh our claim on the batch; False if another worker took it over since (its claim
    counted a later attempt): then we must neither record nor send anything of it."""
    renewed = conn.execute(
        "UPDATE batches SET claimed_at = now()"
        " WHERE job_id = %s AND seq = %s AND state = 'claimed' AND attempts = %s",
        (job_id, batch_seq, attempt),
    ).rowcount
    return bool(renewed)


def stale_batches(conn: Connection, older_than_seconds: float, limit: int = 200) -> list[tuple[int, int]]:
    """Batches claimed under a lapsed lease, or let go ``older_than_seconds`` ago and still not
    recorded: their outcome must be asked of the carrier."""
    rows = conn.execute(
        "SELECT job_id, seq FROM batches b WHERE " + _STALE + " ORDER BY claimed_at LIMIT %(limit)s",
        {"age": older_than_seconds, "limit": limit},
    ).fetchall()
    return [(int(j), int(s)) for j, s in rows]


def reconcile_batch(
    conn: Connection,
    carrier: Carrier,
    sender: BatchSender,
    *,
    job_id: int,
    batch_seq: int,
    older_than_seconds: float,
    worker: str,
) -> tuple[ClaimedBatch, SliceResult] | None:
    """Take over a stale batch (see `stale_batches`; ``worker`` is the taker's lease; a batch
    let go counts from ``older_than_seconds``, or never with `ONLY_DEAD_CLAIMS`) and send what
    the carrier never saw; None if the batch is not stale (any more). The caller finishes the
    slice as after any send."""
    with conn.transaction():
        row = conn.execute(
            _RECLAIM, {"worker": worker, "job": job_id, "batch": batch_seq, "age": older_than_seconds}
        ).fetchone()
        if row is None:
            return None
        (
            previous,
            request_ids,
            channel,
            next_seq,
            last,
            seqs,
            attempt,
            first_attempt_at,
            retry_attempt,
            *job,
        ) = row
        recipients = load_recipients(conn, job_id, job[0], next_seq, last, seqs)
        # Recipients waiting in a retry batch are that batch's to send, not this one's.
        owned = {
            int(seq)
            for (seq,) in conn.execute(
                "SELECT unnest(seqs) FROM batches WHERE job_id = %s AND seq <> %s AND state <> 'recorded'"
                " AND seqs IS NOT NULL",
                (job_id, batch_seq),
            ).fetchall()
        }
        recipients = [r for r in recipients if r[0] not in owned]
    claimed = replace(
        build_claimed(job_id, batch_seq, attempt, channel, job, recipients),
        first_attempt_at=first_attempt_at,
        retry_attempt=retry_attempt,
        claimed_by=worker,
    )
    channel_of_batch = claimed.carrier_batch.channel
    wanted = set(claimed.seq_of_reference)
    # First the carrier requests the batch is known to have gone in (a thousand recipients a
    # query); then, one query per reference, those not found there: the slice in hand when its
    # holder was lost, whose requests were never noted.
    known = [o for o in carrier.lookup_requests(channel_of_batch, request_ids or []) if o.reference in wanted]
    found = {o.reference for o in known}
    references = [r for r in claimed.seq_of_reference if r not in found]
    # A batch let go and reconciled from its first recipient may hold requests older than its
    # last claim: look from its first attempt then (whichever is earlier).
    since = min(previous, first_attempt_at) if first_attempt_at else previous
    # The carrier is asked a few references at a time, and the claim is renewed in between: a
    # takeover by another worker meanwhile (this one frozen) stops this one.
    for start in range(0, len(references), LOOKUP_CHUNK):
        if not renew_claim(conn, job_id, batch_seq, attempt):
            return None
        chunk = references[start : start + LOOKUP_CHUNK]
        known.extend(carrier.lookup(channel_of_batch, chunk, since=since - LOOKUP_MARGIN))
    if not renew_claim(conn, job_id, batch_seq, attempt):
        return None
    checked, dead = check_known([o for o in known if o.reference in wanted], carrier.name)
    dead_entries.set_aside(conn, dead)
    return claimed, sender.send(claimed, known=checked)


def check_known(known: list[SubmitOutcome], carrier: str) -> tuple[list[SubmitOutcome], list[DeadEntry]]:
    """The carrier's answers with their texts cleaned, and those whose result is malformed set
    aside. The carrier did see such a recipient, so it must not be sent again: it is recorded
    as accepted (in flight) and ends by a later report or its report deadline."""
    checked: list[SubmitOutcome] = []
    dead: list[DeadEntry] = []
    for outcome in known:
        message = clean_text(outcome.message) if type(outcome.message) is str else ""
        carrier_id = clean_text(outcome.carrier_id, 100) if type(outcome.carrier_id) is str else None
        outcome = outcome._replace(message=message, carrier_id=carrier_id)
        if outcome.outcome is not Outcome.ACCEPTED:
            try:
                outcome = outcome._replace(code=check_code(outcome.code))
            except Refused as exc:
                dead.append(DeadEntry("reconcile", exc.reason, str(exc), outcome._asdict(), carrier))
                outcome = outcome._replace(
                    outcome=Outcome.ACCEPTED, code="0", message=UNREADABLE_RESULT, result_at=None
                )
        checked.append(outcome)
    return checked, dead
