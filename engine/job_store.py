"""Storing an accepted job: the job row and all its recipients in one transaction.

"Accepted means durable": the caller answers 202 only after `store_job` returns, i.e. after the
job and every recipient are committed. Recipients go in with COPY, the bulk path (a 100,000-
recipient job stores in a fraction of a second).

Idempotency: with an ``Idempotency-Key``, a transaction-scoped advisory lock on (tenant, key)
tells a concurrent duplicate (409, still being stored) from a finished one (same job, or 422 if
the body differs). The lock dies with the transaction, so a crash leaves nothing to clean up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from psycopg import Connection

from engine.errors import IdempotencyConflict, IdempotencyInProgress
from engine.intake import PreparedJob
from engine.tenants import require_sender

_COPY_RECIPIENTS = """
    COPY recipients (job_created_at, job_id, seq, phone, member_id, "values", channel, status,
                     reason_code, reason_text, completed_at)
    FROM STDIN
"""


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: int
    #: False when an idempotent retry found the job a first request stored.
    created: bool


class PartitionCache:
    """Months whose recipients partition is known to exist, so intake asks PostgreSQL once a month."""

    def __init__(self) -> None:
        self._months: set[date] = set()

    def ensure(self, conn: Connection, when: datetime) -> None:
        month = date(when.year, when.month, 1)
        if month in self._months:
            return
        conn.execute("SELECT ensure_recipients_partition(%s)", (month,))
        conn.commit()
        self._months.add(month)


def store_job(
    conn: Connection,
    *,
    tenant_id: int,
    job: PreparedJob,
    now: datetime,
    idempotency_key: str | None,
    partitions: PartitionCache,
) -> StoredJob:
    """Commit the job and its recipients; return its id.

    Raises:
      SenderNotRegistered: the sender is not an approved number of the tenant.
      IdempotencyInProgress: another request with this key is being stored right now.
      IdempotencyConflict: this key was used for a different request body.
    """
    partitions.ensure(conn, now)
    with conn.transaction():
        if idempotency_key is not None:
            existing = _claim_idempotency_key(conn, tenant_id, idempotency_key, job.request_hash)
            if existing is not None:
                return StoredJob(existing, created=False)
        require_sender(conn, tenant_id, job.sender)
        job_id = _insert_job(conn, tenant_id, job, now, idempotency_key)
        _copy_recipients(conn, job_id, job, now)
    return StoredJob(job_id, created=True)


def _claim_idempotency_key(conn: Connection, tenant_id: int, key: str, fingerprint: bytes) -> int | None:
    locked = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, %s))", (key, tenant_id)
    ).fetchone()
    if not (locked and locked[0]):
        raise IdempotencyInProgress()
    row = conn.execute(
        "SELECT id, request_hash FROM jobs WHERE tenant_id = %s AND idempotency_key = %s",
        (tenant_id, key),
    ).fetchone()
    if row is None:
        return None
    if bytes(row[1]) != fingerprint:
        raise IdempotencyConflict()
    return int(row[0])


def _insert_job(conn: Connection, tenant_id: int, job: PreparedJob, now: datetime, key: str | None) -> int:
    row = conn.execute(
        """
        INSERT INTO jobs (tenant_id, created_at, status, requested_channel, priority, sender, title, body,
                          variables, idempotency_key, request_hash, total, sms_count, lms_count,
                          invalid_count, duplicates_removed)
        VALUES (%s, %s, 'accepted', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING id
        """,
        (
            tenant_id, now, job.requested_channel, job.priority, job.sender, job.title, job.body,
            list(job.variables), key, job.request_hash, job.total, len(job.sms), len(job.lms),
            len(job.invalid), job.duplicates_removed,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _copy_recipients(conn: Connection, job_id: int, job: PreparedJob, now: datetime) -> None:
    with conn.cursor() as cur, cur.copy(_COPY_RECIPIENTS) as copy:
        seq = 0
        for row in job.sms + job.lms:
            copy.write_row((now, job_id, seq, row.phone, row.member_id, _array(row.values), row.channel,
                            "queued", None, None, None))
            seq += 1
        for row in job.invalid:
            copy.write_row((now, job_id, seq, row.phone, row.member_id, _array(row.values), None,
                            "failed", row.reason_code, row.reason_text, now))
            seq += 1


def _array(values: tuple[str, ...] | None) -> list[str] | None:
    # psycopg sends a list as an array (a tuple would be a record).
    return list(values) if values else None
