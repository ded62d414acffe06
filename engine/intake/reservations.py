"""Reservations: a job sent at a chosen time (``scheduled_at``), started by the scheduler.

A reserved job is stored whole at intake (job and recipients, status ``scheduled``) and is not
planned until due. The reservation pump (`start_due_reservations`, a scheduler duty) moves due
reservations to ``accepted``; planning then goes as for any job, including the outbox, which
plans an accepted job whose plan_job message was lost. A reservation found due more than
``reservation_grace_seconds`` after its time (the scheduler was down) is not fired late
silently: it becomes ``missed`` and its recipients ``cancelled``, and the operator decides.

Times: ``scheduled_at`` is ISO 8601; with an offset it means that instant, without one it is
read as Korean time (KST), which is what operators mean. It must lie in the future and at most
``reservation_horizon_days`` ahead, both by the injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection

from engine.callbacks.outbox import events_from, record_jobs_finished
from engine.errors import ValidationError
from engine.inputs import parse_instant
from engine.lifecycle import job_stats
from engine.lifecycle.statuses import JobStatus, RecipientStatus

#: What a job's ``kind`` may be: a caller asks for manual or automatic; ``scheduled`` follows
#: from giving ``scheduled_at``.
REQUESTED_KINDS = ("manual", "automatic", "scheduled")
#: Reason of the recipients of a missed reservation.
MISSED_REASON = "reservation_missed"


def requested_kind(
    request: Mapping[str, Any], now: datetime, horizon_days: int
) -> tuple[str, datetime | None]:
    """The job's kind and reservation time (UTC) from a decoded job request.

    Raises:
      ValidationError: ``kind`` or ``scheduled_at`` is not valid; names the field.
    """
    kind = request.get("kind")
    if kind is not None and kind not in REQUESTED_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(REQUESTED_KINDS)}, not {kind!r}")
    raw = request.get("scheduled_at")
    if raw is None:
        if kind == "scheduled":
            raise ValidationError("scheduled_at", "is required for kind 'scheduled'")
        return kind or "manual", None
    if kind not in (None, "scheduled"):
        raise ValidationError("kind", f"a job with scheduled_at is kind 'scheduled', not {kind!r}")
    return "scheduled", parse_scheduled_at(raw, now, horizon_days)


def parse_scheduled_at(raw: Any, now: datetime, horizon_days: int) -> datetime:
    """A reservation time: ISO 8601, naive read as KST; future, at most ``horizon_days`` ahead."""
    if not isinstance(raw, str):
        raise ValidationError(
            "scheduled_at", "must be an ISO 8601 string such as '2026-12-01T09:00:00+09:00'"
        )
    moment = parse_instant("scheduled_at", raw).astimezone(UTC)
    if moment <= now:
        raise ValidationError("scheduled_at", "must be in the future")
    if moment > now + timedelta(days=horizon_days):
        raise ValidationError("scheduled_at", f"must be at most {horizon_days} days ahead")
    return moment


@dataclass(frozen=True, slots=True)
class PumpResult:
    #: Reservations now due: moved to ``accepted``, to be planned.
    started: list[int]
    #: Reservations whose time passed more than the grace period ago: ``missed``, not sent.
    missed: list[int]


def start_due_reservations(
    conn: Connection, now: datetime, grace_seconds: float, limit: int = 500
) -> PumpResult:
    """Move due reservations to ``accepted`` and overdue ones to ``missed``; the caller publishes
    plan_job for the started ones (if it dies first, the outbox plans them: they are accepted
    and unplanned). Rows are locked with SKIP LOCKED: a cancel holding one wins, and two pumps
    never take the same job."""
    cutoff = now - timedelta(seconds=grace_seconds)
    with conn.transaction():
        missed = [
            int(r[0])
            for r in conn.execute(
                f"""
                UPDATE jobs SET status = '{JobStatus.MISSED}', completed_at = %(now)s
                WHERE id IN (SELECT id FROM jobs
                             WHERE status = '{JobStatus.SCHEDULED}' AND scheduled_at < %(cutoff)s
                             ORDER BY scheduled_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
                RETURNING id
                """,
                {"now": now, "cutoff": cutoff, "limit": limit},
            ).fetchall()
        ]
        if missed:
            cancel_queued_recipients(
                conn,
                missed,
                now,
                MISSED_REASON,
                "not sent: the reservation's time passed while the system was down",
            )
            record_jobs_finished(conn, missed)
            job_stats.add_finished_jobs(conn, missed)
        started = [
            int(r[0])
            for r in conn.execute(
                f"""
                UPDATE jobs SET status = '{JobStatus.ACCEPTED}'
                WHERE id IN (SELECT id FROM jobs
                             WHERE status = '{JobStatus.SCHEDULED}' AND scheduled_at <= %(now)s
                             ORDER BY scheduled_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
                RETURNING id
                """,
                {"now": now, "limit": limit},
            ).fetchall()
        ]
    return PumpResult(started, missed)


def cancel_queued_recipients(conn: Connection, job_ids: list[int], at: datetime, code: str, text: str) -> int:
    """Give the still-queued recipients of jobs that were never planned their final status,
    ``cancelled`` (set-based; the jobs have no counters in Redis yet, so PostgreSQL alone
    changes: counters are built from it when first read)."""
    row = conn.execute(
        f"""
        WITH changed AS (
            UPDATE recipients r SET status = '{RecipientStatus.CANCELLED}', reason_code = %(code)s,
                                    reason_text = %(text)s, completed_at = %(at)s
            FROM jobs j
            WHERE j.id = ANY(%(jobs)s) AND r.job_id = j.id AND r.job_created_at = j.created_at
              AND r.status = 'queued'
            RETURNING r.job_id, r.seq, r.attempt, r.status, r.reason_code, r.reason_text, r.completed_at AS at
        ),
        events AS ({events_from("changed")})
        SELECT count(*) FROM changed
        """,
        {"jobs": job_ids, "at": at, "code": code, "text": text},
    ).fetchone()
    return int(row[0]) if row else 0
