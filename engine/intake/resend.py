"""Resending a finished job's failures as a new job, linked to it by ``resent_from``.

Two steps, so the caller gets the new job's id at once however many recipients there are:

1. `create_resend` (API or CLI, one transaction): checks the original job, that it has
   something to resend, and the sender, then stores the new job, status ``preparing``, with the
   original's content (channel, sender, title, body, template, fallback, priority) and
   ``reference``, and the reason codes asked for (``resend_reasons``). With an idempotency key,
   a second call returns the same job.
2. `fill_resend` (the ``resend_failed`` actor): in one transaction, copies the failed
   recipients with one INSERT ... SELECT (phone, member id, reference, per-recipient values,
   channel), sets the counts and moves the job to ``accepted``; planning follows as for any job.

One at a time: while a resend of a job's failures has not finished, another resend of any of
the same failures (the same job, and a reason filter that overlaps: either takes every failure,
or they share a code) is refused (`ResendInProgress`, naming it): the first one's outcome is not
known, so a second would hand the same recipients to the carrier again. Disjoint filters (3015
now, 3016 beside it) do not wait for each other. The check runs with the
original job's row locked (``FOR NO KEY UPDATE``), so concurrent requests queue there and each
sees the resend the one before it committed; a check-then-insert without the lock would let
them all through. With an idempotency key, the same key still returns the same job.

Crash safety: the copy and the status change commit together, and the copy runs only while
the job is ``preparing`` (the row is locked), so a redelivered message copies nothing twice.
A job left ``preparing`` (its message lost, a worker killed) is found by the scheduler's
outbox (`unfilled_resends`) and filled then.

What counts as failed: recipients whose final status is ``failed`` or ``expired`` and that a
carrier was asked to take (``channel`` set). Recipients refused at intake (a bad number, a
missing variable) are not resent: the same request would be refused again. A KakaoTalk
recipient handed to SMS/LMS counts as failed if its fallback message failed too; it is resent
as a KakaoTalk recipient, with the same fallback. ``reasons`` keeps only recipients whose
(last) failure has one of those reason codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from psycopg import Connection
from psycopg.types.json import Jsonb

from engine.accounts import audit, billing
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import require_sender
from engine.config import Settings
from engine.errors import JobStateConflict, NotFound, ResendInProgress, ValidationError
from engine.inputs import check_line
from engine.intake.compliance import check_send_time
from engine.intake.job_store import PartitionCache, StoredJob, claim_idempotency_key
from engine.lifecycle.statuses import FINISHED_JOB_STATUSES, JobStatus

#: At most this many reason codes in one resend request.
MAX_REASONS = 50
#: Longest reason code accepted (codes are short identifiers such as ``carrier_3015``).
MAX_REASON_LENGTH = 100

# The original job's recipients to resend. ``f`` is a KakaoTalk recipient's fallback row
# (``seq = total + its seq``), which holds its last outcome.
_FAILED_RECIPIENTS = """
    FROM recipients r
    LEFT JOIN recipients f ON r.status = 'fallback' AND f.job_id = r.job_id
                          AND f.job_created_at = r.job_created_at AND f.seq = %(total)s + r.seq
    WHERE r.job_id = %(source)s AND r.job_created_at = %(source_created)s AND r.seq < %(total)s
      AND r.channel IS NOT NULL
      AND (r.status IN ('failed', 'expired') OR f.status IN ('failed', 'expired'))
      AND (%(reasons)s::text[] IS NULL OR coalesce(f.reason_code, r.reason_code) = ANY(%(reasons)s::text[]))
"""

# Send order as intake stores it (SMS, LMS, KakaoTalk), so each channel is one seq range.
_COPY_FAILED = (
    """
    INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, reference, "values", channel,
                            status)
    SELECT %(created)s, %(job)s,
           (row_number() OVER (ORDER BY CASE r.channel WHEN 'sms' THEN 0 WHEN 'lms' THEN 1 ELSE 2 END, r.seq)
            - 1)::int,
           r.phone, r.member_id, r.reference, r."values", r.channel, 'queued'
    """
    + _FAILED_RECIPIENTS
)


def resend_fingerprint(source_job_id: int, reasons: Sequence[str] | None) -> bytes:
    """What identifies a resend request, to tell an idempotent retry from a different request."""
    key = f"resend:{source_job_id}:{','.join(sorted(set(reasons))) if reasons is not None else '*'}"
    return hashlib.sha256(key.encode()).digest()


def validate_reasons(raw: object) -> list[str] | None:
    """The ``reasons`` of a resend request: None (all failures) or a non-empty list of codes."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) and c for c in raw):
        raise ValidationError("reasons", "must be a non-empty list of reason codes such as 'carrier_3015'")
    if len(raw) > MAX_REASONS:
        raise ValidationError("reasons", f"at most {MAX_REASONS} reason codes")
    for index, code in enumerate(raw):
        check_line(code, f"reasons[{index}]")
        if len(code) > MAX_REASON_LENGTH:
            raise ValidationError(f"reasons[{index}]", f"longer than {MAX_REASON_LENGTH} characters")
    return sorted(set(raw))


def create_resend(
    conn: Connection,
    *,
    tenant_id: int,
    source_job_id: int,
    reasons: Sequence[str] | None,
    now: datetime,
    idempotency_key: str | None,
    partitions: PartitionCache,
    settings: Settings,
    actor: str | None = None,
) -> StoredJob:
    """Store the resend job (``preparing``) and reserve its cost, as intake does for a new job;
    the caller then publishes resend_failed for it. With ``actor`` (who asked), the audit log
    records the resend, on the original job, in the same transaction.

    Raises:
      NotFound: no such job for this tenant.
      JobStateConflict: the job has not finished (``job_not_finished``): its failures are not
        all known yet.
      ValidationError: nothing to resend (``nothing_to_resend``); the sender is no longer
        registered; an advertising job's resend in the quiet hours (``advertising_quiet_hours``).
      InsufficientBalance: the balance does not cover the resend (nothing is stored).
      ResendInProgress: a resend of some of the same failures has not finished
        (``resend_in_progress``).
      IdempotencyInProgress, IdempotencyConflict: as for job intake.
    """
    fingerprint = resend_fingerprint(source_job_id, reasons)
    partitions.ensure(conn, now)
    with conn.transaction():
        if idempotency_key is not None:
            existing = claim_idempotency_key(conn, tenant_id, idempotency_key, fingerprint)
            if existing is not None:
                return StoredJob(existing, created=False)
        # The lock serialises resends of this job until commit (see the module's docstring).
        source = conn.execute(
            "SELECT status, completed_at, created_at, total, sender, advertisement FROM jobs"
            " WHERE id = %s AND tenant_id = %s FOR NO KEY UPDATE",
            (source_job_id, tenant_id),
        ).fetchone()
        if source is None:
            raise NotFound(f"job {source_job_id} not found")
        running = conn.execute(
            """
            SELECT id FROM jobs
            WHERE resent_from = %(source)s AND status <> ALL(%(finished)s)
              AND (resend_reasons IS NULL OR %(reasons)s::text[] IS NULL
                   OR resend_reasons && %(reasons)s::text[])
            ORDER BY id LIMIT 1
            """,
            {"source": source_job_id, "reasons": reasons, "finished": list(FINISHED_JOB_STATUSES)},
        ).fetchone()
        if running is not None:
            raise ResendInProgress(source_job_id, int(running[0]))
        status, completed_at, source_created, total, sender, advertisement = source
        if advertisement:
            # A resend goes out now: the quiet hours apply to it as to any new advertising job.
            check_send_time(now, "advertisement")
        if status not in FINISHED_JOB_STATUSES or completed_at is None:
            raise JobStateConflict(
                "job_not_finished",
                f"job {source_job_id} is {status}; its failures can be resent once it has finished",
            )
        params = {
            "source": source_job_id,
            "source_created": source_created,
            "total": total,
            "reasons": reasons,
        }
        if conn.execute("SELECT EXISTS (SELECT 1 " + _FAILED_RECIPIENTS + ")", params).fetchone() != (True,):
            raise ValidationError(
                "reasons" if reasons is not None else "job_id",
                f"job {source_job_id} has no failed recipients"
                + (f" with reason {', '.join(reasons)}" if reasons is not None else "")
                + " to resend",
                code="nothing_to_resend",
            )
        require_sender(conn, tenant_id, sender)
        prices = billing.prices_for(conn, settings, tenant_id)
        row = conn.execute(
            """
            INSERT INTO jobs (tenant_id, created_at, status, kind, resent_from, resend_reasons,
                              requested_channel, priority, sender, title, body, variables, template_code,
                              fallback_channel, fallback_body, fallback_title, idempotency_key, request_hash,
                              total, sms_count, lms_count, kakao_count, invalid_count, advertisement, prices,
                              reference, callback_url)
            SELECT tenant_id, %(now)s, %(preparing)s, 'manual', id, %(reasons)s,
                   requested_channel, priority, sender, title, body, variables, template_code,
                   fallback_channel, fallback_body, fallback_title, %(key)s, %(fingerprint)s, 0, 0, 0, 0, 0,
                   advertisement, %(prices)s, reference, callback_url
            FROM jobs WHERE id = %(source)s
            RETURNING id, fallback_channel
            """,
            {
                "now": now,
                "preparing": JobStatus.PREPARING,
                "reasons": reasons,
                "key": idempotency_key,
                "fingerprint": fingerprint,
                "source": source_job_id,
                "prices": Jsonb(prices.as_json()),
            },
        ).fetchone()
        assert row is not None
        # Reserved now, from the recipients the actor will copy: the caller hears of a short
        # balance at once (402), and the copy never meets one.
        counts: dict[str, int] = dict(
            conn.execute("SELECT r.channel, count(*) " + _FAILED_RECIPIENTS + " GROUP BY r.channel", params)
        )
        billing.reserve_job(conn, tenant_id, int(row[0]), billing.job_cost(prices, counts, row[1]))
        if actor is not None:
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=actor,
                action=AuditAction.JOB_RESEND,
                subject=audit.job_subject(source_job_id),
                details={
                    "resend_job_id": int(row[0]),
                    "recipients": sum(counts.values()),
                    "reasons": reasons,
                },
            )
    return StoredJob(int(row[0]), created=True)


def fill_resend(conn: Connection, job_id: int) -> bool:
    """Copy the original job's failed recipients into resend job ``job_id`` and make it
    ``accepted``; False (nothing done) if it is not ``preparing`` any more. The caller then
    publishes plan_job."""
    with conn.transaction():
        row = conn.execute(
            "SELECT created_at, resent_from, resend_reasons FROM jobs"
            " WHERE id = %s AND status = %s FOR UPDATE",
            (job_id, JobStatus.PREPARING),
        ).fetchone()
        if row is None:
            return False
        created_at, source_job_id, reasons = row
        source = None
        if source_job_id is not None:
            source = conn.execute(
                "SELECT created_at, total FROM jobs WHERE id = %s", (source_job_id,)
            ).fetchone()
        if source is not None:
            conn.execute(
                _COPY_FAILED,
                {
                    "created": created_at,
                    "job": job_id,
                    "source": source_job_id,
                    "source_created": source[0],
                    "total": source[1],
                    "reasons": reasons,
                },
            )
        # (An original deleted meanwhile, by retention, leaves an empty job that completes at once.)
        conn.execute(
            """
            UPDATE jobs j SET status = %(accepted)s, total = c.total, sms_count = c.sms, lms_count = c.lms,
                              kakao_count = c.kakao
            FROM (SELECT count(*) AS total, count(*) FILTER (WHERE channel = 'sms') AS sms,
                         count(*) FILTER (WHERE channel = 'lms') AS lms,
                         count(*) FILTER (WHERE channel = 'kakao') AS kakao
                  FROM recipients WHERE job_id = %(job)s AND job_created_at = %(created)s) c
            WHERE j.id = %(job)s
            """,
            {"accepted": JobStatus.ACCEPTED, "job": job_id, "created": created_at},
        )
    return True


def unfilled_resends(
    conn: Connection, now: datetime, older_than_seconds: float, limit: int = 100
) -> list[int]:
    """Resend jobs still ``preparing`` ``older_than_seconds`` after their creation, by the
    injected clock that stamped it (their resend_failed message was lost)."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE status = %s AND created_at < %s - make_interval(secs => %s)"
        " ORDER BY created_at LIMIT %s",
        (JobStatus.PREPARING, now, older_than_seconds, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]
