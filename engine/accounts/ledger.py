"""Reading a tenant's ledger: its rows narrowed by kind and KST day, newest first, a page at a time.

The API's ``GET /v1/ledger``, the console's money page and its CSV (`engine.reporting.ledger_export`)
all read the ledger through :meth:`LedgerFilter.where`, so a filter means the same rows
everywhere. Rows are written only by `engine.accounts.billing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from psycopg import Connection, sql

from engine import inputs
from engine.accounts.billing import LEDGER_KINDS
from engine.clock import KST
from engine.errors import ValidationError

#: Korean names of the ledger's kinds, as operators read them (the console, the CSV).
LEDGER_KIND_LABELS = {"charge": "차감", "refund": "환불", "top_up": "충전", "adjustment": "조정"}
#: What a job's rows are, in operators' words (the statement's); other rows show their memo,
#: the platform operator's reason for a top-up or an adjustment.
JOB_ENTRY_TEXT = {"charge": "발송 요금 예치", "refund": "미발송·실패 환불"}
#: Largest page of ledger rows a caller may ask for.
MAX_LEDGER_PAGE = 1000

_LEDGER_PAGE = """
    SELECT id, kind, amount, balance_after, job_id, memo, created_at FROM ledger
    WHERE {where} AND ({after}::bigint IS NULL OR id < {after})
    ORDER BY id DESC LIMIT {limit}
"""
_COLUMNS = ("id", "kind", "amount", "balance_after", "job_id", "memo", "created_at")


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """What the caller narrowed the ledger to; None means "any"."""

    #: One of `engine.accounts.billing.LEDGER_KINDS`.
    kind: str | None = None
    #: First and last day (KST calendar days, both included) of the rows' creation.
    created_from: date | None = None
    created_to: date | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in LEDGER_KINDS:
            raise ValidationError("kind", f"must be one of {', '.join(LEDGER_KINDS)}")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValidationError("created_to", "is before created_from")

    @classmethod
    def parse(
        cls, kind: str | None = None, created_from: str | None = None, created_to: str | None = None
    ) -> LedgerFilter:
        """The filter of query values (``YYYY-MM-DD`` days); ValidationError naming a bad one."""
        return cls(
            kind=kind or None,
            created_from=inputs.parse_day("created_from", created_from or None),
            created_to=inputs.parse_day("created_to", created_to or None),
        )

    def where(self, tenant_id: int) -> sql.Composed:
        """The condition on ``ledger`` rows that keeps the tenant's rows this filter lets
        through, its values bound as literals (so ``COPY``, which takes no parameters, can use it
        too); the ``ledger_by_tenant`` index (tenant, id) serves it."""
        start = datetime.combine(self.created_from, time(), KST) if self.created_from else None
        end = datetime.combine(self.created_to + timedelta(days=1), time(), KST) if self.created_to else None
        return sql.SQL(
            "tenant_id = {tenant}"
            " AND ({kind}::text IS NULL OR kind = {kind})"
            " AND ({start}::timestamptz IS NULL OR created_at >= {start})"
            " AND ({end}::timestamptz IS NULL OR created_at < {end})"
        ).format(
            tenant=sql.Literal(tenant_id),
            kind=sql.Literal(self.kind),
            start=sql.Literal(start),
            end=sql.Literal(end),
        )


def ledger_page(
    conn: Connection,
    tenant_id: int,
    narrowed: LedgerFilter = LedgerFilter(),  # frozen: one shared default is safe
    *,
    after: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """A page of the tenant's ledger rows, newest first: ``{"entries": [...], "next_cursor"}``.

    Parameters:
      after: the id of the last row of the previous page (its ``next_cursor``, once opened).
      limit: rows per page, at most :data:`MAX_LEDGER_PAGE`.
    """
    if not 1 <= limit <= MAX_LEDGER_PAGE:
        raise ValueError(f"limit must lie between 1 and {MAX_LEDGER_PAGE}")
    query = sql.SQL(_LEDGER_PAGE).format(
        where=narrowed.where(tenant_id), after=sql.Literal(after), limit=sql.Literal(limit + 1)
    )
    rows = conn.execute(query).fetchall()
    more = len(rows) > limit
    entries = [dict(zip(_COLUMNS, row, strict=True)) for row in rows[:limit]]
    return {"entries": entries, "next_cursor": str(entries[-1]["id"]) if more else None}
