"""Reading a tenant's audit log (`engine.accounts.audit` writes it): pages newest first, and the
whole of a filtered range as a CSV download.

Filters: a range of KST calendar days, an actor (any part of it, without regard to case: ``kim``
finds ``kim@acme.kr``; ``API key`` finds every key) and an action. Pages are keyed by the row's
id (rows are written in id order, so newest first is highest id first); the caller signs the
cursor (`api.cursors`).

The CSV is UTF-8 with a byte-order mark (Excel reads it as UTF-8), every cell quoted, and every
free-text cell guarded against spreadsheet formulas (`engine.reporting.exports.guard_cell`): an
actor or a memo is text a person typed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from psycopg import Connection

from engine.accounts.audit import ACTION_LABELS, MAX_TEXT, AuditAction
from engine.clock import KST
from engine.errors import ValidationError
from engine.reporting.exports import BOM, guard_cell

#: Rows read per query while a CSV streams.
CSV_BATCH = 5000
#: Header labels of the CSV, in column order.
CSV_HEADER = ("일시(KST)", "작업자", "작업", "작업 코드", "대상", "상세")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    #: First and last day (KST calendar days, both included).
    created_from: date | None = None
    created_to: date | None = None
    #: Any part of the actor, case ignored.
    actor: str | None = None
    #: One action code (`engine.accounts.audit.AuditAction`).
    action: str | None = None

    def __post_init__(self) -> None:
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValidationError("created_to", "is before created_from")
        if self.action is not None and self.action not in {a.value for a in AuditAction}:
            raise ValidationError("action", "is not an action of the audit log")
        if self.actor is not None and len(self.actor) > MAX_TEXT:
            raise ValidationError("actor", f"must be at most {MAX_TEXT} characters")

    def where(self, tenant_id: int) -> tuple[str, dict[str, Any]]:
        """The SQL condition and its parameters."""
        clauses = ["tenant_id = %(tenant)s"]
        params: dict[str, Any] = {"tenant": tenant_id}
        if self.created_from:
            clauses.append("created_at >= %(start)s")
            params["start"] = datetime.combine(self.created_from, time(), KST)
        if self.created_to:
            clauses.append("created_at < %(end)s")
            params["end"] = datetime.combine(self.created_to + timedelta(days=1), time(), KST)
        if self.actor:
            clauses.append(r"actor ILIKE %(actor)s ESCAPE '\'")
            params["actor"] = "%" + _like_escaped(self.actor.strip()) + "%"
        if self.action:
            clauses.append("action = %(action)s")
            params["action"] = self.action
        return " AND ".join(clauses), params


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _entry(row: Any) -> dict[str, Any]:
    id_, created_at, actor, action, subject, details = row
    return {
        "id": int(id_),
        "created_at": created_at,
        "actor": str(actor),
        "action": str(action),
        # StrEnum members hash as their text: a code looks its label up as it is.
        "action_label": ACTION_LABELS.get(action, str(action)),  # type: ignore[call-overload]
        "subject": subject,
        "details": details,
    }


def list_entries(
    conn: Connection[Any], tenant_id: int, where: AuditFilter, *, before_id: int | None, limit: int
) -> dict[str, Any]:
    """A page of the tenant's entries matching ``where``, newest first, after (older than)
    ``before_id``; ``next_cursor`` (an id, unsigned) if there are more."""
    condition, params = where.where(tenant_id)
    if before_id is not None:
        condition += " AND id < %(before)s"
        params["before"] = before_id
    rows = conn.execute(
        "SELECT id, created_at, actor, action, subject, details FROM audit_log"
        f" WHERE {condition} ORDER BY id DESC LIMIT %(limit)s",
        {**params, "limit": limit + 1},
    ).fetchall()
    entries = [_entry(row) for row in rows[:limit]]
    more = len(rows) > limit
    return {"entries": entries, "next_cursor": str(entries[-1]["id"]) if more and entries else None}


def csv_chunks(conn: Connection[Any], tenant_id: int, where: AuditFilter) -> Iterator[bytes]:
    """Every entry matching ``where``, newest first, as CSV bytes (BOM and header first)."""
    yield BOM
    yield _csv_rows([CSV_HEADER])
    before: int | None = None
    while True:
        page = list_entries(conn, tenant_id, where, before_id=before, limit=CSV_BATCH)
        yield _csv_rows(
            (
                entry["created_at"].astimezone(KST).strftime("%Y-%m-%d %H:%M:%S"),
                guard_cell(entry["actor"]),
                entry["action_label"],
                entry["action"],
                guard_cell(entry["subject"] or ""),
                guard_cell(_details_text(entry["details"])),
            )
            for entry in page["entries"]
        )
        if page["next_cursor"] is None:
            return
        before = int(page["next_cursor"])


def _details_text(details: Any) -> str:
    return "" if details is None else orjson.dumps(details).decode()


def _csv_rows(rows: Any) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return text.getvalue().encode()


def filename(where: AuditFilter) -> str:
    """``balsong-audit-2026-12-01-2026-12-07.csv`` (the days asked for, if any)."""
    days = "-".join(str(day) for day in (where.created_from, where.created_to) if day)
    return f"balsong-audit{'-' + days if days else ''}.csv"
