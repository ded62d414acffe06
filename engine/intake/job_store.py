"""Storing an accepted job: the job row and all its recipients in one transaction.

"Accepted means durable": the caller answers 202 only after `store_job` returns, i.e. after the
job and every recipient are committed. Recipients go in with COPY, the bulk path, before the job's
row (its id is drawn first): a job whose recipients are still being classified
(`engine.intake.intake.PreparedJob.unclassified`) has its SMS recipients copied chunk by chunk as
they are classified, so PostgreSQL stores them on another CPU meanwhile (200,000 recipients: COPY
~0.65 s of PostgreSQL's time, classification ~0.7 s of Python's), and the rest once every
recipient is known and the job quoted.

Idempotency: with an ``Idempotency-Key``, a transaction-scoped advisory lock on (tenant, key)
tells a concurrent duplicate (409, still being stored) from a finished one (same job, or 422 if
the body differs). The lock dies with the transaction, so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
from engine.intake.intake import PreparedJob, RecipientRow
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
        job_id = _next_job_id(conn)
        lines = _RecipientLines(job_id, now)
        if job.unclassified is not None:
            # Recipients still to classify: each chunk's SMS recipients go to PostgreSQL as the
            # chunk is classified, so PostgreSQL stores them while Python classifies the next.
            with conn.cursor() as cur, cur.copy(_COPY_RECIPIENTS) as copy:
                for _ in job.unclassified:
                    copy.write(lines.new_sms(job.sms))
            job.unclassified = None
        quote = quote_job(conn, tenant_id=tenant_id, job=job, settings=settings)
        _insert_job(conn, job_id, tenant_id, job, now, idempotency_key, quote.prices)
        billing.reserve_job(conn, tenant_id, job_id, quote.cost)
        limits = intake_limits.limits_for(conn, settings, tenant_id)
        intake_limits.check_daily_recipients(conn, tenant_id, job_id, job.total, limits, now)
        if job.tracked_urls:
            link_codes.store_codes(conn, job_id, now, job)
        # The rest, now that their rows are final: an advertising job's quote moves its opted-out
        # numbers, tracked links' codes may be drawn again on a collision (neither kind of job is
        # classified in steps).
        with conn.cursor() as cur, cur.copy(_COPY_RECIPIENTS) as copy:
            for chunk in lines.rest(job):
                copy.write(chunk)
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


def _next_job_id(conn: Connection) -> int:
    """An id for a job about to be stored (its recipients are copied before its row)."""
    row = conn.execute("SELECT nextval(pg_get_serial_sequence('jobs', 'id'))").fetchone()
    assert row is not None
    return int(row[0])


def _insert_job(
    conn: Connection,
    job_id: int,
    tenant_id: int,
    job: PreparedJob,
    now: datetime,
    key: str | None,
    prices: billing.Prices,
) -> None:
    fallback = job.fallback
    conn.execute(
        """
        INSERT INTO jobs (id, tenant_id, created_at, status, requested_channel, priority, sender, title, body,
                          variables, idempotency_key, request_hash, total, sms_count, lms_count, kakao_count,
                          invalid_count, duplicates_removed, template_code, fallback_channel, fallback_body,
                          fallback_title, kind, scheduled_at, advertisement, prices, reference,
                          origin, callback_url)
        OVERRIDING SYSTEM VALUE
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                %s, %s, %s, %s, %s,
                -- Fixed now: the job's own URL, else the tenant's default at this moment.
                coalesce(%s, (SELECT callback_url FROM tenants WHERE id = %s)))
        """,
        (
            job_id,
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
    )


class _RecipientLines:
    """A job's recipient rows as lines of COPY's text format, numbered (``seq``) in send order:
    SMS, LMS, KakaoTalk, then those refused at intake. COPY's text is written by hand: psycopg's
    per-row adaptation (arrays above all) cost more than everything else at intake."""

    def __init__(self, job_id: int, now: datetime) -> None:
        self.created = now.isoformat()
        self.prefix = f"{self.created}\t{job_id}\t"
        self.seq = 0
        #: SMS rows already written (by `new_sms` while the job was being classified).
        self.sms_written = 0

    def new_sms(self, sms: list[RecipientRow]) -> str:
        """The lines of the SMS rows not written yet (the first rows of the job)."""
        text = self._queued(sms[self.sms_written :])
        self.sms_written = len(sms)
        return text

    def rest(self, job: PreparedJob) -> Iterator[str]:
        """The lines of every row not written yet, in chunks of `_COPY_CHUNK` rows (memory)."""
        unwritten = [job.sms[self.sms_written :], job.lms, job.kakao]
        self.sms_written = len(job.sms)
        for rows in unwritten:
            for start in range(0, len(rows), _COPY_CHUNK):
                yield self._queued(rows[start : start + _COPY_CHUNK])
        for start in range(0, len(job.invalid), _COPY_CHUNK):
            yield self._refused(job.invalid[start : start + _COPY_CHUNK])

    def _queued(self, rows: list[RecipientRow]) -> str:
        prefix, first = self.prefix, self.seq
        self.seq += len(rows)
        return "".join(
            [
                f"{prefix}{seq}\t{_text(row.phone)}\t{_text(row.member_id)}\t{_text(row.reference)}"
                f"\t{_array(row.values)}\t{row.channel}\tqueued\t\\N\t\\N\t\\N\n"
                for seq, row in enumerate(rows, first)
            ]
        )

    def _refused(self, rows: list[RecipientRow]) -> str:
        prefix, created, first = self.prefix, self.created, self.seq
        self.seq += len(rows)
        return "".join(
            [
                f"{prefix}{seq}\t{_text(row.phone)}\t{_text(row.member_id)}\t{_text(row.reference)}"
                f"\t{_array(row.values)}\t\\N\tfailed\t{_text(row.reason_code)}\t{_text(row.reason_text)}"
                f"\t{created}\n"
                for seq, row in enumerate(rows, first)
            ]
        )


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
