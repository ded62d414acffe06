"""Reconciling a batch whose outcome is unknown, by asking the carrier, never by resending.

A batch stays ``claimed`` when its worker died mid-call, or when a call timed out after the
request left. Once it has been claimed longer than any carrier call can take, the scheduler hands
it to `reconcile_batch`: the carrier is asked which of the batch's still-queued recipients it
knows (by our reference); those are recorded as the carrier says; only those it has never seen
are submitted.

Caveat, documented on purpose: a recipient whose outcome was recorded in Redis but not yet
flushed to PostgreSQL still looks queued here. The claim age threshold (minutes) is far above
the flusher's lag (sub-second), and PostgreSQL rows only move forward, so this costs at most a
counter that a recount corrects.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg import Connection

from carriers.base import Carrier
from engine.sending import _RECIPIENTS, BatchSender, build_claimed, release_batch

_RECLAIM = """
    UPDATE batches b
    SET claimed_at = now(), claimed_by = %(worker)s, attempts = b.attempts + 1
    FROM jobs j, (SELECT claimed_at AS previous FROM batches WHERE job_id = %(job)s AND seq = %(batch)s) p
    WHERE b.job_id = %(job)s AND b.seq = %(batch)s AND b.state = 'claimed' AND j.id = b.job_id
      AND b.claimed_at < now() - make_interval(secs => %(age)s)
    RETURNING b.channel, b.first_seq, b.last_seq, b.attempts, j.created_at, j.sender, j.body, j.title,
              j.variables, p.previous
"""

#: How far before the old claim to look for the carrier's records (clock skew, queueing).
LOOKUP_MARGIN = timedelta(minutes=5)


def stale_batches(conn: Connection, older_than_seconds: float, limit: int = 200) -> list[tuple[int, int]]:
    rows = conn.execute(
        "SELECT job_id, seq FROM batches WHERE state = 'claimed'"
        " AND claimed_at < now() - make_interval(secs => %s) ORDER BY claimed_at LIMIT %s",
        (older_than_seconds, limit),
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
) -> bool:
    """Resolve a stale claimed batch; False if it is not stale (any more)."""
    with conn.transaction():
        row = conn.execute(
            _RECLAIM, {"worker": worker, "job": job_id, "batch": batch_seq, "age": older_than_seconds}
        ).fetchone()
        if row is None:
            return False
        channel, first, last, attempt, created_at, sender_no, body, title, variables, previous = row
        recipients = conn.execute(_RECIPIENTS, (job_id, created_at, first, last)).fetchall()
    claimed = build_claimed(
        job_id, created_at, batch_seq, attempt, channel, sender_no, body, title, variables, recipients
    )
    references = list(claimed.seq_of_reference)
    known = (
        carrier.lookup(claimed.carrier_batch.channel, references, since=previous - LOOKUP_MARGIN)
        if references
        else []
    )
    wanted = set(references)
    known = [o for o in known if o.reference in wanted]
    if not sender.send(claimed, known=known):
        release_batch(conn, job_id, batch_seq)
    return True
