"""The send statement (발송내역서): what a tenant sent in one job or one month, counted.

A statement has the tenant, the period, messages counted by channel and result, and failures by
reason. It counts *messages*, the way carriers bill them: a KakaoTalk recipient handed to
SMS/LMS is one failed AlimTalk message (result 대체발송) and one SMS/LMS message with its own
result. Recipients refused at intake were never sent; they have their own line (접수 거부).

Charges and refunds come from the ledger (`engine.accounts.billing`): what the jobs reserved at intake and
what their settlement refunded; their difference is what the tenant pays.

A month is a calendar month in KST (operators' time), over the jobs created in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from psycopg import Connection, sql

from engine.clock import KST
from engine.errors import NotFound, ValidationError
from engine.inputs import MAX_YEAR, MIN_YEAR

#: Statement formats.
FORMATS = ("html", "pdf")

#: Results a statement counts, in column order; the recipient statuses each one covers.
RESULTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("delivered", ("delivered",)),
    ("failed", ("failed",)),
    ("expired", ("expired",)),
    ("fallback", ("fallback",)),
    ("unknown", ("unknown",)),
    ("cancelled", ("cancelled",)),
    ("in_progress", ("queued", "submitted")),
)

#: Channel lines, in order; None is "refused at intake" (never sent).
CHANNELS: tuple[str | None, ...] = ("sms", "lms", "kakao", None)

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """Messages of one channel by result."""

    channel: str | None
    delivered: int = 0
    failed: int = 0
    expired: int = 0
    fallback: int = 0
    #: Accepted, but no result by the report deadline (charged, as the provider charges it).
    unknown: int = 0
    cancelled: int = 0
    in_progress: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name, _ in RESULTS)


@dataclass(frozen=True, slots=True)
class ReasonCount:
    channel: str | None
    reason_code: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """One line of charges or refunds (an amount below zero is a refund), in points (KRW)."""

    description: str
    quantity: int | None
    unit_price: Decimal | int | None
    amount: Decimal | int


@dataclass(frozen=True, slots=True)
class JobSummary:
    id: int
    kind: str
    status: str
    channel: str
    sender: str
    title: str | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Statement:
    tenant: str
    #: ``job`` or ``month``.
    scope: str
    #: What the period is called: ``작업 #12`` or ``2026년 11월``.
    subject: str
    period_start: datetime
    #: None while the job is still running.
    period_end: datetime | None
    #: Jobs covered, and how many recipients they had.
    jobs: int
    recipients: int
    channels: tuple[ChannelCounts, ...]
    reasons: tuple[ReasonCount, ...]
    charges: tuple[ChargeRow, ...]
    issued_at: datetime
    job: JobSummary | None = None

    @property
    def totals(self) -> ChannelCounts:
        return ChannelCounts(
            None,
            **{name: sum(getattr(c, name) for c in self.channels) for name, _ in RESULTS},
        )


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    return value


def parse_month(value: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the [start, end) of that month in KST."""
    match = _MONTH.fullmatch(value)
    if match is None or not 1 <= int(match[2]) <= 12 or not MIN_YEAR <= int(match[1]) <= MAX_YEAR:
        raise ValidationError("month", "must be a month written YYYY-MM, such as 2026-11")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=KST)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=KST)
    return start, end


def job_statement(conn: Connection, tenant_id: int, job_id: int, now: datetime) -> Statement:
    """The statement of one of the tenant's jobs; NotFound if the tenant has no such job."""
    row = conn.execute(
        """
        SELECT t.name, j.id, j.kind, j.status, j.requested_channel, j.sender, j.title,
               j.created_at, j.completed_at, j.total
        FROM jobs j JOIN tenants t ON t.id = j.tenant_id
        WHERE j.id = %s AND j.tenant_id = %s
        """,
        (job_id, tenant_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    tenant, id_, kind, status, channel, sender, title, created_at, completed_at, total = row
    scope = sql.SQL("r.job_id = {job} AND r.job_created_at = {created}").format(
        job=sql.Literal(id_), created=sql.Literal(created_at)
    )
    return Statement(
        tenant=tenant,
        scope="job",
        subject=f"작업 #{id_}",
        period_start=created_at,
        period_end=completed_at,
        jobs=1,
        recipients=int(total),
        channels=_channel_counts(conn, sql.SQL(""), scope),
        reasons=_reasons(conn, sql.SQL(""), scope),
        charges=tuple(charge_rows(conn, tenant_id, job_ids=(id_,))),
        issued_at=now,
        job=JobSummary(id_, kind, status, channel, sender, title, created_at, completed_at),
    )


def monthly_statement(conn: Connection, tenant_id: int, month: str, now: datetime) -> Statement:
    """The statement of the tenant's jobs created in ``month`` (``YYYY-MM``, KST)."""
    start, end = parse_month(month)
    tenant = conn.execute("SELECT name FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    jobs = conn.execute(
        """
        SELECT count(*), coalesce(sum(total), 0) FROM jobs
        WHERE tenant_id = %s AND created_at >= %s AND created_at < %s
        """,
        (tenant_id, start, end),
    ).fetchone()
    assert jobs is not None
    join = sql.SQL("JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at")
    # The range on recipients' own column lets PostgreSQL skip the other months' partitions.
    scope = sql.SQL(
        "j.tenant_id = {tenant} AND j.created_at >= {start} AND j.created_at < {end}"
        " AND r.job_created_at >= {start} AND r.job_created_at < {end}"
    ).format(tenant=sql.Literal(tenant_id), start=sql.Literal(start), end=sql.Literal(end))
    last_day = end - timedelta(seconds=1)
    return Statement(
        tenant=tenant[0],
        scope="month",
        subject=f"{start.year}년 {start.month}월",
        period_start=start,
        period_end=last_day,
        jobs=int(jobs[0]),
        recipients=int(jobs[1]),
        channels=_channel_counts(conn, join, scope),
        reasons=_reasons(conn, join, scope),
        charges=tuple(charge_rows(conn, tenant_id, period=(start, end))),
        issued_at=now,
    )


def charge_rows(
    conn: Connection,
    tenant_id: int,
    *,
    job_ids: tuple[int, ...] = (),
    period: tuple[datetime, datetime] | None = None,
) -> list[ChargeRow]:
    """Charges and refunds of the jobs or the period, from the ledger: what intake reserved for
    the valid recipients, and what settlement gave back for messages not delivered."""
    if period is not None:
        scope = sql.SQL("j.created_at >= {} AND j.created_at < {}").format(period[0], period[1])
    else:
        scope = sql.SQL("j.id = ANY({})").format(list(job_ids))
    row = conn.execute(
        sql.SQL(
            """
            SELECT coalesce(-sum(l.amount) FILTER (WHERE l.kind = 'charge'), 0),
                   coalesce(sum(l.amount) FILTER (WHERE l.kind = 'refund'), 0),
                   count(*) FILTER (WHERE l.kind = 'charge'),
                   count(*) FILTER (WHERE l.kind = 'refund')
            FROM jobs j JOIN ledger l ON l.job_id = j.id AND l.kind IN ('charge', 'refund')
            WHERE j.tenant_id = {} AND {}
            """
        ).format(tenant_id, scope)
    ).fetchone()
    assert row is not None
    charged, refunded, charged_jobs, settled_jobs = Decimal(row[0]), Decimal(row[1]), row[2], row[3]
    if not charged_jobs:
        return []
    rows = [ChargeRow(f"발송 요금 예치 ({charged_jobs:,}건 작업)", None, None, charged)]
    rows.append(ChargeRow(f"미발송·실패 환불 ({settled_jobs:,}건 정산)", None, None, -refunded))
    return rows


def _channel_counts(
    conn: Connection, join: sql.Composable, scope: sql.Composable
) -> tuple[ChannelCounts, ...]:
    rows = conn.execute(
        sql.SQL(
            "SELECT r.channel, r.status, count(*) FROM recipients r {join} WHERE {scope} GROUP BY 1, 2"
        ).format(join=join, scope=scope)
    ).fetchall()
    by_channel: dict[str | None, dict[str, int]] = {}
    for channel, status, count in rows:
        counts = by_channel.setdefault(channel, {})
        for result, statuses in RESULTS:
            if status in statuses:
                counts[result] = counts.get(result, 0) + int(count)
    order = [c for c in CHANNELS if c in by_channel] + sorted(
        c for c in by_channel if c is not None and c not in CHANNELS
    )
    return tuple(ChannelCounts(channel, **by_channel[channel]) for channel in order)


def _reasons(conn: Connection, join: sql.Composable, scope: sql.Composable) -> tuple[ReasonCount, ...]:
    rows = conn.execute(
        sql.SQL(
            """
            SELECT r.channel, r.reason_code, max(r.reason_text), count(*)
            FROM recipients r {join}
            WHERE {scope} AND r.status IN ('failed', 'expired', 'fallback') AND r.reason_code IS NOT NULL
            GROUP BY 1, 2 ORDER BY 4 DESC, 2
            """
        ).format(join=join, scope=scope)
    ).fetchall()
    return tuple(ReasonCount(channel, code, text or code, int(count)) for channel, code, text, count in rows)
