"""Storing an accepted job: the job row and all its recipients in one transaction.

"Accepted means durable": the caller answers 202 only after `store_job` returns, i.e. after the
job and every recipient are committed. Recipients go in with COPY, the bulk path (a 100,000-
recipient job stores in a fraction of a second).

Idempotency: with an ``Idempotency-Key``, a transaction-scoped advisory lock on (tenant, key)
tells a concurrent duplicate (409, still being stored) from a finished one (same job, or 422 if
the body differs). The lock dies with the transaction, so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from psycopg import Connection
from psycopg.types.json import Jsonb

from engine.accounts import audit, billing
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import require_sender
from engine.config import Settings
from engine.errors import IdempotencyConflict, IdempotencyInProgress
from engine.intake import intake_limits, link_codes
from engine.intake.compliance import OPTED_OUT, OPTED_OUT_TEXT
from engine.intake.intake import PreparedJob
from engine.lifecycle.statuses import JobStatus

_COPY_RECIPIENTS = """
    COPY recipients (job_created_at, job_id, seq, phone, member_id, reference, "values", channel, status,
                     reason_code, reason_text, completed_at)
    FROM STDIN
"""


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: int
    #: False when an idempotent retry found the job a first request stored.
    created: bool
    #: A reservation: stored ``scheduled``, planned by the reservation pump when due.
    scheduled: bool = False


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
    settings: Settings,
    actor: str | None = None,
) -> StoredJob:
    """Commit the job and its recipients, and reserve its cost from the tenant's balance; return
    its id. An advertising job's recipients on the tenant's opt-out list fail with ``opted_out``.
    With ``actor`` (who submitted it), the audit log records the submission in the same
    transaction (`engine.accounts.audit`); a job found by its Idempotency-Key is not recorded again.

    Raises:
      SenderNotRegistered: the sender is not an approved number of the tenant.
      InsufficientBalance: the balance does not cover the job (nothing is stored).
      IntakeLimited: the job takes the tenant over its recipients per day (nothing is stored).
      IdempotencyInProgress: another request with this key is being stored right now.
      IdempotencyConflict: this key was used for a different request body.
    """
    partitions.ensure(conn, now)
    with conn.transaction():
        if idempotency_key is not None:
            existing = claim_idempotency_key(conn, tenant_id, idempotency_key, job.request_hash)
            if existing is not None:
                return StoredJob(existing, created=False)
        quote = quote_job(conn, tenant_id=tenant_id, job=job, settings=settings)
        job_id = _insert_job(conn, tenant_id, job, now, idempotency_key, quote.prices)
        billing.reserve_job(conn, tenant_id, job_id, quote.cost)
        limits = intake_limits.limits_for(conn, settings, tenant_id)
        intake_limits.check_daily_recipients(conn, tenant_id, job_id, job.total, limits, now)
        if job.tracked_urls:
            link_codes.store_codes(conn, job_id, now, job)
        _copy_recipients(conn, job_id, job, now)
        if actor is not None:
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=actor,
                action=AuditAction.JOB_SUBMIT,
                subject=audit.job_subject(job_id),
                details={
                    "channel": job.requested_channel,
                    "recipients": job.total,
                    "origin": job.origin,
                    "kind": job.kind,
                    "advertisement": job.advertisement or None,
                    "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None,
                },
            )
    return StoredJob(job_id, created=True, scheduled=job.scheduled_at is not None)


@dataclass(frozen=True, slots=True)
class Quote:
    """What storing a prepared job would do to the tenant: numbers suppressed, the cost
    reserved, at which prices."""

    #: Recipients moved to the failed ones because their number opted out (advertising only).
    opted_out: int
    prices: billing.Prices
    #: What intake reserves (`engine.accounts.billing.job_cost`).
    cost: Decimal


def quote_job(conn: Connection, *, tenant_id: int, job: PreparedJob, settings: Settings) -> Quote:
    """Check the sender, move an advertising job's opted-out recipients to its failed ones
    (``opted_out``), and price what is left: the steps `store_job` takes before it stores, for
    it and for anyone showing an operator what a job would cost before it is sent (the console's
    send page). Mutates ``job`` (opt-outs).

    Raises:
      SenderNotRegistered: the sender is not an approved number of the tenant.
    """
    require_sender(conn, tenant_id, job.sender)
    opted_out = _exclude_opted_out(conn, tenant_id, job) if job.advertisement else 0
    prices = billing.prices_for(conn, settings, tenant_id)
    counts = {"sms": len(job.sms), "lms": len(job.lms), "kakao": len(job.kakao)}
    cost = billing.job_cost(prices, counts, job.fallback.channel if job.fallback else None)
    return Quote(opted_out, prices, cost)


def claim_idempotency_key(conn: Connection, tenant_id: int, key: str, fingerprint: bytes) -> int | None:
    """Inside a transaction: the job already stored under (tenant, key), if any; raises if a
    concurrent request holds the key or the stored job was made from a different request."""
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


def _exclude_opted_out(conn: Connection, tenant_id: int, job: PreparedJob) -> int:
    phones = [row.phone for row in job.valid_rows()]
    rows = conn.execute(
        "SELECT phone FROM opt_outs WHERE tenant_id = %s AND phone = ANY(%s)", (tenant_id, phones)
    ).fetchall()
    if not rows:
        return 0
    return job.exclude({row[0] for row in rows}, OPTED_OUT, OPTED_OUT_TEXT)


def _insert_job(
    conn: Connection, tenant_id: int, job: PreparedJob, now: datetime, key: str | None, prices: billing.Prices
) -> int:
    fallback = job.fallback
    row = conn.execute(
        """
        INSERT INTO jobs (tenant_id, created_at, status, requested_channel, priority, sender, title, body,
                          variables, idempotency_key, request_hash, total, sms_count, lms_count, kakao_count,
                          invalid_count, duplicates_removed, template_code, fallback_channel, fallback_body,
                          fallback_title, kind, scheduled_at, advertisement, prices, reference,
                          origin, callback_url)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                %s, %s, %s, %s,
                -- Fixed now: the job's own URL, else the tenant's default at this moment.
                coalesce(%s, (SELECT callback_url FROM tenants WHERE id = %s)))
        RETURNING id
        """,
        (
            tenant_id,
            now,
            JobStatus.SCHEDULED if job.scheduled_at is not None else JobStatus.ACCEPTED,
            job.requested_channel,
            job.priority,
            job.sender,
            job.title,
            job.body,
            list(job.variables),
            key,
            job.request_hash,
            job.total,
            len(job.sms),
            len(job.lms),
            len(job.kakao),
            len(job.invalid),
            job.duplicates_removed,
            job.template_code,
            fallback.channel if fallback else None,
            fallback.body if fallback else None,
            fallback.title if fallback else None,
            job.kind,
            job.scheduled_at,
            job.advertisement,
            Jsonb(prices.as_json()),
            job.reference,
            job.origin,
            job.callback_url,
            tenant_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _copy_recipients(conn: Connection, job_id: int, job: PreparedJob, now: datetime) -> None:
    # COPY's text format is written by hand: psycopg's per-row adaptation (arrays above all)
    # cost more than everything else at intake. Sent in chunks to bound memory.
    created = now.isoformat()
    prefix = f"{created}\t{job_id}\t"
    lines: list[str] = []
    with conn.cursor() as cur, cur.copy(_COPY_RECIPIENTS) as copy:
        seq = 0
        for row in job.valid_rows():
            lines.append(
                f"{prefix}{seq}\t{_text(row.phone)}\t{_text(row.member_id)}\t{_text(row.reference)}"
                f"\t{_array(row.values)}"
                f"\t{row.channel}\tqueued\t\\N\t\\N\t\\N\n"
            )
            seq += 1
            if len(lines) >= _COPY_CHUNK:
                copy.write("".join(lines))
                lines.clear()
        for row in job.invalid:
            lines.append(
                f"{prefix}{seq}\t{_text(row.phone)}\t{_text(row.member_id)}\t{_text(row.reference)}"
                f"\t{_array(row.values)}"
                f"\t\\N\tfailed\t{_text(row.reason_code)}\t{_text(row.reason_text)}\t{created}\n"
            )
            seq += 1
        if lines:
            copy.write("".join(lines))


#: Rows per write to the COPY stream.
_COPY_CHUNK = 10_000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    """A text value in COPY's text format (``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    return (
        value.translate(_COPY_ESCAPES)
        if ("\\" in value or "\t" in value or "\n" in value or "\r" in value)
        else value
    )


def _array(values: tuple[str, ...] | None) -> str:
    """A text[] value in COPY's text format: an array literal of quoted elements, escaped."""
    if not values:
        return "\\N"
    joined = '","'.join(values)
    if _SPECIAL.search(joined) is None:
        # The usual case: nothing to escape at either level.
        return '{"' + joined + '"}'
    quoted = ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return _text("{" + quoted + "}")


#: Characters that need escaping inside a quoted array element or in COPY's text format.
_SPECIAL = re.compile(r'[\\"\t\n\r]')
