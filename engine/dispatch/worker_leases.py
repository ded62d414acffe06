"""Worker leases: knowing that the holder of a batch is gone, instead of waiting a fixed time.

Each worker process holds one lease, a row of ``worker_leases`` whose ``alive_until`` a thread
of the process pushes ``ttl`` ahead every fifth of it. A batch is claimed under the claimer's
lease id (``batches.claimed_by``), and while a thread works on it (`WorkerLease.holding`) each
renewal also renews the claim (``claimed_at``). A claim is dead, and taken over at once
(`dead_claims`, then `engine.dispatch.reconcile`), when its lease has lapsed in PostgreSQL's
clock, or when the lease lives but the claim was not renewed for a ``ttl``: the thread holding it
failed (Redis or PostgreSQL away mid-slice) and let go of it without handing it back.

Fencing, so that a taken-over batch is never sent by its old holder too: the holder believes
its lease only until ``ttl`` minus a margin after it *started* its last successful renewal, by
its own monotonic clock, which runs on while a process is frozen (SIGSTOP, a long GC pause, a
VM migration). Past that, `WorkerLease.holds` is False for the old id for good: the process
takes a new id, and a thread holding a batch under the old one stops before its next carrier
call, records nothing more and leaves the batch to its taker. PostgreSQL declares the lease dead
only after the full ``ttl`` since the renewal committed, which is later than the holder gave
up, whatever the clocks: both measure from the same renewal, the holder from before it.
A renewal that finds its row already lapsed does not revive it (its batches may be taken over
already): the process starts a new lease instead.

Imports: psycopg only.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from psycopg import Connection

log = logging.getLogger(__name__)

#: The holder gives its lease up this long before PostgreSQL would declare it dead.
SAFETY_MARGIN_FRACTION = 0.2

_RENEW = """
    INSERT INTO worker_leases (id, alive_until, renewed_at)
    VALUES (%(id)s, now() + make_interval(secs => %(ttl)s), now())
    ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until, renewed_at = excluded.renewed_at
    WHERE worker_leases.alive_until > now()
"""
_RENEW_CLAIMS = """
    UPDATE batches SET claimed_at = now()
    WHERE state = 'claimed' AND claimed_by = %(id)s
      AND (job_id, seq) IN (SELECT * FROM unnest(%(jobs)s::bigint[], %(seqs)s::int[]))
"""

#: A claim is dead when no live lease holds it (this also takes over claims made before leases
#: existed, whose ``claimed_by`` names no lease), or when its live lease was renewed a ``ttl``
#: (``alive_until - renewed_at``) after the claim last was: nobody works on it any more.
DEAD_CLAIM = """
    b.state = 'claimed' AND NOT EXISTS (
        SELECT 1 FROM worker_leases l
        WHERE l.id = b.claimed_by AND l.alive_until > now()
          AND b.claimed_at >= l.renewed_at - (l.alive_until - l.renewed_at))
"""


def new_lease_id() -> str:
    """host:pid:random — unique per lease, readable in logs and in ``batches.claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class WorkerLease:
    """This process's lease. `current` gives the id to claim under (renewing first if need be);
    `holds` tells a thread whether the id it claimed under is still good."""

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Connection[Any]]],
        ttl_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._id = new_lease_id()
        self._valid_until = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: (job, batch) the process's threads are working on: their claims are renewed too.
        self._held: set[tuple[int, int]] = set()

    @contextmanager
    def holding(self, job_id: int, batch_seq: int) -> Iterator[None]:
        """Renew the claim on this batch with the lease while the block runs; however the block
        ends, the claim is renewed no more (a claim left behind by a failure is taken over)."""
        with self._lock:
            self._held.add((job_id, batch_seq))
        try:
            yield
        finally:
            with self._lock:
                self._held.discard((job_id, batch_seq))

    def current(self) -> str:
        """The lease id to claim a batch under, renewed now if it is not fresh; starts the
        renewing thread on first use. Raises if PostgreSQL cannot be reached."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._renew_forever, name="worker-lease", daemon=True
                    )
                    self._thread.start()
        if not self._fresh():
            self.renew()
        return self._id

    def holds(self, lease_id: str) -> bool:
        """True while ``lease_id`` is this process's lease and was renewed recently enough that
        nobody can have taken its batches over. A False answer is final for that id."""
        with self._lock:
            if lease_id != self._id:
                return False
            if self._monotonic() < self._valid_until:
                return True
            self._give_up("not renewed in time")
            return False

    def renew(self) -> bool:
        """Push the lease's end ``ttl`` ahead; True on success. A lapsed lease is not revived:
        a new one is started (and renewed) in its place."""
        with self._lock:
            lease_id = self._id
            held = list(self._held)
        started = self._monotonic()
        with self._connect() as conn, conn.transaction():
            renewed = conn.execute(_RENEW, {"id": lease_id, "ttl": self.ttl}).rowcount == 1
            if renewed and held:
                jobs, seqs = [job for job, _ in held], [seq for _, seq in held]
                conn.execute(_RENEW_CLAIMS, {"id": lease_id, "jobs": jobs, "seqs": seqs})
        with self._lock:
            if lease_id != self._id:
                return False  # given up meanwhile: the next renewal starts the new one
            if not renewed:
                self._give_up("lapsed in PostgreSQL before it was renewed")
                return False
            self._valid_until = started + self.ttl * (1 - SAFETY_MARGIN_FRACTION)
            return True

    def stop(self) -> None:
        """Stop renewing and end the lease now, so its batches (if any) are taken over at once."""
        self._stop.set()
        with self._lock:
            lease_id, self._id = self._id, new_lease_id()
            self._valid_until = 0.0
        try:
            with self._connect() as conn:
                conn.execute("DELETE FROM worker_leases WHERE id = %s", (lease_id,))
        except Exception:
            log.warning("could not end the worker lease; it lapses by itself", exc_info=True)

    def _fresh(self) -> bool:
        """Good for at least half its life more (as the renewing thread keeps it)."""
        with self._lock:
            return self._monotonic() < self._valid_until - self.ttl / 2

    def _give_up(self, why: str) -> None:
        """(Lock held.) Stop believing the current id; claims from now on use a new one."""
        old, self._id = self._id, new_lease_id()
        self._valid_until = 0.0
        log.warning("worker lease lost (%s): its batches are taken over", why, extra={"lease": old})

    def _renew_forever(self) -> None:
        while not self._stop.wait(self.ttl / 5):
            try:
                self.renew()
            except Exception:
                # PostgreSQL away: `holds` turns False by itself once the lease runs out.
                log.warning("could not renew the worker lease", exc_info=True)


def dead_claims(conn: Connection[Any], limit: int = 500) -> list[tuple[int, int]]:
    """(job, batch) claimed under a lease that has lapsed: to take over now."""
    rows = conn.execute(
        "SELECT b.job_id, b.seq FROM batches b WHERE " + DEAD_CLAIM + " ORDER BY b.claimed_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [(int(job), int(seq)) for job, seq in rows]


def forget_lapsed(conn: Connection[Any], older_than_seconds: float = 3600.0) -> int:
    """Delete leases lapsed long ago (their batches were taken over); the count deleted."""
    return conn.execute(
        "DELETE FROM worker_leases WHERE alive_until < now() - make_interval(secs => %s)"
        " AND NOT EXISTS (SELECT 1 FROM batches b"
        "                 WHERE b.state = 'claimed' AND b.claimed_by = worker_leases.id)",
        (older_than_seconds,),
    ).rowcount
