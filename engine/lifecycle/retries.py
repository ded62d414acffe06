"""Retries for up to two days: retry batches in PostgreSQL, indexed by due time in Redis.

A recipient the carrier would not take now (a per-recipient "try again", or a whole request
refused by a 5xx or a dropped connection) is not failed: it goes into a *retry batch*, a batches
row in state ``waiting`` naming its recipients, with a due time from exponential back-off with
jitter. The retry ledger — a Redis sorted set of waiting batches by due time — is what the
scheduler's pump reads; PostgreSQL holds the truth, and the ledger is rebuilt from it if Redis
loses it. Nothing waits in RabbitMQ or in a worker's memory: a due batch is published only when
it is due.

Each retry batch carries the first attempt's time; once the channel's deadline (48 hours by
default) has passed since then, its recipients are expired instead of tried again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import Connection
from psycopg.errors import UniqueViolation
from redis import Redis

from engine.config import Settings
from engine.keys import Keys


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with "equal
    jitter" (half fixed, half random) so retries of many batches do not land together."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def deadline_seconds(settings: Settings, channel: str) -> float:
    return settings.channel(channel).retry_deadline_seconds


@dataclass(frozen=True, slots=True)
class DueBatch:
    job_id: int
    seq: int


class RetryLedger:
    """The Redis index of waiting retry batches by due time."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.key = keys.retry_ledger

    def add(self, job_id: int, seq: int, due_at: datetime) -> None:
        self.redis.zadd(self.key, {f"{job_id}:{seq}": due_at.timestamp()})

    def due(self, now: datetime, limit: int = 500) -> list[DueBatch]:
        members = self.redis.zrangebyscore(self.key, "-inf", now.timestamp(), start=0, num=limit)
        return [DueBatch(*map(int, m.decode().split(":"))) for m in members]  # type: ignore[union-attr]

    def remove(self, batches: Sequence[DueBatch]) -> None:
        if batches:
            self.redis.zrem(self.key, *(f"{b.job_id}:{b.seq}" for b in batches))

    def size(self) -> int:
        return int(self.redis.zcard(self.key))  # type: ignore[arg-type]

    def rebuild(self, conn: Connection) -> int:
        """Add every waiting batch PostgreSQL knows of (a no-op for those already there)."""
        count = 0
        with conn.cursor() as cur:
            cur.execute("SELECT job_id, seq, due_at FROM batches WHERE state = 'waiting'")
            while rows := cur.fetchmany(5000):
                self.redis.zadd(self.key, {f"{j}:{s}": due.timestamp() for j, s, due in rows}, nx=True)
                count += len(rows)
        return count


def schedule_retry(
    conn: Connection,
    ledger: RetryLedger,
    *,
    job_id: int,
    channel: str,
    seqs: Sequence[int],
    first_attempt_at: datetime,
    attempt: int,
    due_at: datetime,
) -> int:
    """A new waiting retry batch for ``seqs``; returns its batch seq."""
    ordered = sorted(seqs)
    while True:
        try:
            row = conn.execute(
                """
                INSERT INTO batches (job_id, seq, channel, first_seq, next_seq, last_seq, seqs, state, due_at,
                                     first_attempt_at, retry_attempt)
                SELECT %(job)s, coalesce(max(seq), -1) + 1, %(channel)s, %(first)s, %(first)s, %(last)s,
                       %(seqs)s, 'waiting', %(due)s, %(first_attempt)s, %(attempt)s
                FROM batches WHERE job_id = %(job)s
                RETURNING seq
                """,
                {
                    "job": job_id,
                    "channel": channel,
                    "first": ordered[0],
                    "last": ordered[-1],
                    "seqs": ordered,
                    "due": due_at,
                    "first_attempt": first_attempt_at,
                    "attempt": attempt,
                },
            ).fetchone()
            break
        except UniqueViolation:
            continue  # another worker took that seq at the same moment: take the next
    assert row is not None
    ledger.add(job_id, int(row[0]), due_at)
    return int(row[0])


def defer_batch(
    conn: Connection,
    ledger: RetryLedger,
    *,
    job_id: int,
    seq: int,
    next_seq: int,
    due_at: datetime,
    claimed_by: str,
    request_ids: Sequence[str] = (),
) -> None:
    """Put a batch claimed under ``claimed_by`` back to wait (from ``next_seq`` on) until
    ``due_at``, keeping the carrier requests its slice went in; nothing if it was taken over
    meanwhile."""
    deferred = conn.execute(
        """
        UPDATE batches SET state = 'waiting', next_seq = %s, due_at = %s, retry_attempt = retry_attempt + 1,
                           request_ids = request_ids || %s::text[]
        WHERE job_id = %s AND seq = %s AND state = 'claimed' AND claimed_by = %s
        """,
        (next_seq, due_at, list(request_ids), job_id, seq, claimed_by),
    ).rowcount
    if deferred:
        ledger.add(job_id, seq, due_at)


def release_due(conn: Connection, batch: DueBatch) -> tuple[str, str, datetime | None, int] | None:
    """Move a due waiting batch to ``planned`` (published next); None if it is not waiting.
    Returns (channel, priority, first attempt, retry attempt)."""
    row = conn.execute(
        """
        UPDATE batches b SET state = 'planned', due_at = NULL, enqueued_at = now() FROM jobs j
        WHERE b.job_id = %s AND b.seq = %s AND b.state = 'waiting' AND j.id = b.job_id
        RETURNING b.channel, j.priority, b.first_attempt_at, b.retry_attempt
        """,
        (batch.job_id, batch.seq),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], int(row[3]))


def retry_cutoff(settings: Settings, channel: str, now: datetime) -> datetime:
    """Recipients of ``channel`` first tried at or before this instant are past its retry
    deadline: they are expired, not tried again. The one statement of the rule: `past_deadline`
    and the flusher's SQL (for reports of a passing failure) both compare with it."""
    return now - timedelta(seconds=deadline_seconds(settings, channel))


def past_deadline(settings: Settings, channel: str, first_attempt_at: datetime | None, now: datetime) -> bool:
    return first_attempt_at is not None and first_attempt_at <= retry_cutoff(settings, channel, now)


def retry_delay_seconds(settings: Settings, attempt: int) -> float:
    """How long retry number ``attempt`` waits: back-off with jitter (`backoff_seconds`)."""
    return backoff_seconds(attempt, settings.retry_base_seconds, settings.retry_cap_seconds)


def retry_due_at(settings: Settings, attempt: int, now: datetime) -> datetime:
    """When retry number ``attempt`` is due, for a recipient told to try again at ``now``."""
    return now + timedelta(seconds=retry_delay_seconds(settings, attempt))
