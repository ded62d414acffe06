"""Send statistics (통계): a finished job's recipients added, once, to its tenant's counters.

Statistics are read from pre-aggregated counters (``send_stats_hourly`` per tenant, KST hour and
channel; ``send_stats_reasons`` per tenant, KST day, channel and reason code; migration 0023),
never from recipient rows, so a year of them reads in milliseconds.

When: off the hot send path, in the transaction that finishes the job — `add_finished_jobs` is
called by every place that sets a job's final state (`engine.lifecycle.completion`, a cancel
before planning, a missed reservation), next to its ``job.finished`` event. Then every recipient
is final, so one GROUP BY over the job's rows gives its whole contribution, and nothing changes
afterwards.

Exactly once: the job's ``stats_counted_at`` is set by the same statement that picks the job
(``... WHERE stats_counted_at IS NULL``), under the row lock of the transaction, so a second finish
attempt, a retry of the transaction, or two replicas add the job once; a transaction that fails
adds nothing (it rolls back with the marker).

Where a message counts (the rule, here only):

- its **hour** is the KST hour it was first handed to a carrier (``first_attempt_at``, kept across
  retries); a recipient never handed over — refused at intake, cancelled — counts in the hour its
  job was created. A job's messages may so spread over several hours and days.
- its **channel** is the channel it went by (a KakaoTalk recipient handed to SMS/LMS is a
  ``fallbacks`` of ``kakao`` and one message of ``sms`` or ``lms`` with its own result, as carriers
  bill them); a recipient refused at intake is ``rejected`` under the channel ``intake``.
- ``failed`` and ``expired`` are kept apart (``failed`` in the API includes ``expired``);
  ``unknown`` is accepted with no result by the report deadline (charged, not a failure).
- ``charged``: points the delivered and unknown messages cost at their job's reserved prices (what
  settlement keeps, `engine.lifecycle.settlement`); 0 for jobs from before balances existed.
- failures by reason: failed, expired and rejected recipients by reason code, per KST day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection

from engine.accounts import billing
from engine.lifecycle.settlement import CHARGED_RECIPIENT_STATUSES
from engine.lifecycle.statuses import RecipientStatus

#: The channel of recipients refused at intake (they never went on one).
INTAKE = "intake"
#: Channels the counters are kept for, in display order.
CHANNELS = ("sms", "lms", "kakao", INTAKE)

#: Counter columns of ``send_stats_hourly`` each final recipient status adds one to. Cancelled
#: recipients were never sent; a fallback is a failed KakaoTalk message whose SMS/LMS row counts
#: on its own.
COLUMN_OF_STATUS: dict[str, str] = {
    RecipientStatus.DELIVERED: "delivered",
    RecipientStatus.FAILED: "failed",
    RecipientStatus.EXPIRED: "expired",
    RecipientStatus.UNKNOWN: "unknown",
    RecipientStatus.FALLBACK: "fallbacks",
    RecipientStatus.CANCELLED: "cancelled",
}
#: Count columns, in table order.
COUNT_COLUMNS = ("delivered", "failed", "expired", "unknown", "fallbacks", "cancelled", "rejected")
#: Statuses whose recipients are failures by reason.
REASON_STATUSES = frozenset({RecipientStatus.FAILED, RecipientStatus.EXPIRED})
#: The reason code of a failure stored without one (as the live counters name it).
NO_REASON_CODE = "unknown"

# Fixed +09:00: Korea has kept no daylight saving time since 1988 (as engine.reporting.exports).
_AGGREGATE = """
    SELECT date_trunc('hour', coalesce(first_attempt_at, job_created_at) AT TIME ZONE INTERVAL '+09:00'),
           channel, status, fallback_of IS NOT NULL, reason_code, max(reason_text), count(*)
    FROM recipients
    WHERE job_id = %s AND job_created_at = %s
    GROUP BY 1, 2, 3, 4, 5
"""

# Rows are added in key order, so two jobs of one tenant finishing at once lock the rows they
# share in the same order (no deadlock).
_ADD_HOURLY = f"""
    INSERT INTO send_stats_hourly AS s (tenant_id, kst_hour, channel, {", ".join(COUNT_COLUMNS)}, charged)
    SELECT %(tenant)s, t.* FROM unnest(%(hours)s::timestamp[], %(channels)s::text[],
        {", ".join(f"%({c})s::bigint[]" for c in COUNT_COLUMNS)}, %(charged)s::numeric[])
        AS t (kst_hour, channel, {", ".join(COUNT_COLUMNS)}, charged)
    ORDER BY t.kst_hour, t.channel
    ON CONFLICT (tenant_id, kst_hour, channel) DO UPDATE SET
        {", ".join(f"{c} = s.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)},
        charged = s.charged + EXCLUDED.charged
"""
_ADD_REASONS = """
    INSERT INTO send_stats_reasons AS s (tenant_id, kst_day, channel, reason_code, failures, reason_text)
    SELECT %(tenant)s, t.* FROM unnest(%(days)s::date[], %(channels)s::text[], %(codes)s::text[],
                                       %(counts)s::bigint[], %(texts)s::text[])
        AS t (kst_day, channel, reason_code, failures, reason_text)
    ORDER BY t.kst_day, t.channel, t.reason_code
    ON CONFLICT (tenant_id, kst_day, channel, reason_code) DO UPDATE SET
        failures = s.failures + EXCLUDED.failures,
        reason_text = coalesce(EXCLUDED.reason_text, s.reason_text)
"""


@dataclass(slots=True)
class JobContribution:
    """What one job adds to its tenant's counters."""

    #: (KST hour, channel) -> count column -> count.
    hourly: dict[tuple[datetime, str], dict[str, int]] = field(default_factory=dict)
    #: (KST hour, channel) -> points charged.
    charged: dict[tuple[datetime, str], Decimal] = field(default_factory=dict)
    #: (KST day, channel, reason code) -> failures.
    reasons: dict[tuple[date, str, str], int] = field(default_factory=dict)
    #: reason code -> a text it came with.
    texts: dict[str, str] = field(default_factory=dict)

    def merge(self, other: JobContribution) -> None:
        """Add ``other`` (another job of the same tenant) to this one."""
        for key, counts in other.hourly.items():
            mine = self.hourly.setdefault(key, dict.fromkeys(COUNT_COLUMNS, 0))
            for name, count in counts.items():
                mine[name] += count
        for key, points in other.charged.items():
            self.charged[key] = self.charged.get(key, billing.ZERO) + points
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.texts.update(other.texts)


def add_finished_jobs(conn: Connection[Any], job_ids: Sequence[int]) -> list[int]:
    """Add the recipients of those finished ``job_ids`` not counted yet to their tenants'
    counters; the ids added now. Call it in the transaction that finishes the jobs, after their
    recipients' last changes."""
    if not job_ids:
        return []
    jobs = conn.execute(
        """
        UPDATE jobs SET stats_counted_at = now()
        WHERE id = ANY(%s) AND completed_at IS NOT NULL AND stats_counted_at IS NULL
        RETURNING id, tenant_id, created_at, prices
        """,
        (sorted(job_ids),),
    ).fetchall()
    # One contribution per tenant, added tenant by tenant in key order: every transaction locks
    # the counter rows it shares with another in the same order, so no two deadlock over them.
    by_tenant: dict[int, JobContribution] = {}
    for job_id, tenant_id, created_at, prices in sorted(jobs):
        contribution = job_contribution(
            conn.execute(_AGGREGATE, (job_id, created_at)).fetchall(),
            billing.Prices.from_json(prices) if prices is not None else None,
        )
        by_tenant.setdefault(int(tenant_id), JobContribution()).merge(contribution)
    for tenant_id in sorted(by_tenant):
        add(conn, tenant_id, by_tenant[tenant_id])
    return sorted(int(job[0]) for job in jobs)


def add_uncounted_jobs(conn: Connection[Any], page: int = 500) -> int:
    """Add every finished job not counted yet (jobs that finished before the counters existed),
    a page of jobs per transaction; the number added. Safe beside running finishes: a job being
    finished now is locked by its finish, which counts it, and is then skipped here."""
    added = 0
    after = 0
    while True:
        ids = [
            int(row[0])
            for row in conn.execute(
                "SELECT id FROM jobs WHERE completed_at IS NOT NULL AND stats_counted_at IS NULL AND id > %s"
                " ORDER BY id LIMIT %s",
                (after, page),
            )
        ]
        if not ids:
            return added
        with conn.transaction():
            added += len(add_finished_jobs(conn, ids))
        after = ids[-1]


def job_contribution(rows: Sequence[tuple[Any, ...]], prices: billing.Prices | None) -> JobContribution:
    """A job's contribution from its recipients grouped by (KST hour, channel, status, fallback
    row, reason code) with a reason text and a count each."""
    found = JobContribution()
    for hour, channel, status, fallback_row, reason_code, reason_text, count in rows:
        if channel is None:
            column, where = "rejected", INTAKE
        elif status in COLUMN_OF_STATUS:
            column, where = COLUMN_OF_STATUS[status], channel
        else:
            continue  # queued or submitted: not final, so not the job's contribution (never here)
        key = (hour, where)
        counts = found.hourly.setdefault(key, dict.fromkeys(COUNT_COLUMNS, 0))
        counts[column] += count
        if prices is not None and channel is not None and status in CHARGED_RECIPIENT_STATUSES:
            price = prices.of(f"fallback_{channel}" if fallback_row else channel)
            found.charged[key] = found.charged.get(key, billing.ZERO) + price * count
        if channel is None or status in REASON_STATUSES:
            code = reason_code or NO_REASON_CODE
            reason_key = (hour.date(), where, code)
            found.reasons[reason_key] = found.reasons.get(reason_key, 0) + count
            if reason_text:
                found.texts[code] = reason_text
    return found


def add(conn: Connection[Any], tenant_id: int, contribution: JobContribution) -> None:
    """Upsert-add ``contribution`` into the tenant's counters."""
    if contribution.hourly:
        keys = sorted(contribution.hourly)
        columns: dict[str, list[int]] = defaultdict(list)
        for key in keys:
            for name in COUNT_COLUMNS:
                columns[name].append(contribution.hourly[key][name])
        conn.execute(
            _ADD_HOURLY,
            {
                "tenant": tenant_id,
                "hours": [hour for hour, _ in keys],
                "channels": [channel for _, channel in keys],
                **columns,
                "charged": [contribution.charged.get(key, billing.ZERO) for key in keys],
            },
        )
    if contribution.reasons:
        keys3 = sorted(contribution.reasons)
        conn.execute(
            _ADD_REASONS,
            {
                "tenant": tenant_id,
                "days": [day for day, _, _ in keys3],
                "channels": [channel for _, channel, _ in keys3],
                "codes": [code for _, _, code in keys3],
                "counts": [contribution.reasons[key] for key in keys3],
                "texts": [contribution.texts.get(code) for _, _, code in keys3],
            },
        )
