"""A tenant's ledger as CSV, made by PostgreSQL like the recipients export
(`engine.reporting.exports`: UTF-8 with BOM, RFC 4180 with every cell quoted, formula guard, KST).

One row per ledger row, newest first, over the same rows as the money page
(`engine.accounts.ledger.LedgerFilter`). Columns: 일시 (KST, ``YYYY-MM-DD HH:MM:SS``), 구분
(차감 / 환불 / 충전 / 조정), 금액 and 잔액 (points as plain numbers with two decimals and a ``-``
for money taken, which spreadsheets read as numbers: no separators, no unit), 작업 ID, 내용 (what a
job's row is, or the memo of a top-up or adjustment, formula-guarded).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from psycopg import Connection, sql

from engine.accounts.ledger import JOB_ENTRY_TEXT, LEDGER_KIND_LABELS, LedgerFilter
from engine.clock import KST
from engine.reporting.exports import (
    BOM,
    COPY_CSV_OPTIONS,
    guard_cell,
    guarded,
    kst_text,
    labelled,
    stream_copy,
)

HEADER = ("일시", "구분", "금액", "잔액", "작업 ID", "내용")


def filename(now: datetime) -> str:
    return f"balsong-ledger-{now.astimezone(KST):%Y%m%d-%H%M%S}.csv"


def export_query(narrowed: LedgerFilter, tenant_id: int) -> sql.Composed:
    columns = [
        kst_text(sql.SQL("created_at")),
        labelled(sql.SQL("kind"), LEDGER_KIND_LABELS),
        # numeric(14, 2) prints with its two decimals and a leading "-" when negative: a number to
        # a spreadsheet, never a formula (a quoted cell of digits is not one).
        sql.SQL("amount::text"),
        sql.SQL("balance_after::text"),
        sql.SQL("job_id::text"),
        sql.SQL("CASE WHEN kind IN ('charge', 'refund') THEN {text} ELSE {memo} END").format(
            text=labelled(sql.SQL("kind"), JOB_ENTRY_TEXT), memo=guarded(sql.SQL("memo"))
        ),
    ]
    return sql.SQL("SELECT {columns} FROM ledger WHERE {where} ORDER BY id DESC").format(
        columns=sql.SQL(", ").join(columns), where=narrowed.where(tenant_id)
    )


def csv_chunks(conn: Connection, tenant_id: int, narrowed: LedgerFilter) -> Iterator[bytes]:
    """The CSV in chunks, streamed as PostgreSQL produces it (constant memory)."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(map(guard_cell, HEADER))
    yield BOM + header.getvalue().encode()
    statement = sql.SQL("COPY ({query}) TO STDOUT {options}").format(
        query=export_query(narrowed, tenant_id), options=COPY_CSV_OPTIONS
    )
    yield from stream_copy(conn, statement)
