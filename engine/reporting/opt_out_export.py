"""A tenant's opt-out list as CSV, made by PostgreSQL like the recipients export
(`engine.reporting.exports`: UTF-8 with BOM, RFC 4180 with every cell quoted, KST times).

Columns: 수신거부 번호 (masked, ``010-****-5678``: the console never hands out whole numbers), 등록
경로 (API / CSV 파일 / XLSX 파일 / 콘솔 / 080 수신거부), 등록 일시 (KST). Newest first.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from psycopg import Connection, sql

from engine.accounts.opt_outs import SOURCE_LABELS
from engine.clock import KST
from engine.reporting.exports import (
    BOM,
    COPY_CSV_OPTIONS,
    guard_cell,
    kst_text,
    labelled,
    normalised_phone_expression,
    stream_copy,
)

HEADER = ("수신거부 번호", "등록 경로", "등록 일시")


def filename(now: datetime) -> str:
    return f"balsong-opt-outs-{now.astimezone(KST):%Y%m%d-%H%M%S}.csv"


def export_query(tenant_id: int) -> sql.Composed:
    columns = [
        # Numbers on the list passed normalize_recipient: the prefix alone decides their shape.
        normalised_phone_expression(sql.SQL("phone"), unmasked=False),
        labelled(sql.SQL("source"), SOURCE_LABELS),
        kst_text(sql.SQL("created_at")),
    ]
    return sql.SQL("SELECT {columns} FROM opt_outs WHERE tenant_id = {tenant} ORDER BY id DESC").format(
        columns=sql.SQL(", ").join(columns), tenant=sql.Literal(tenant_id)
    )


def csv_chunks(conn: Connection, tenant_id: int) -> Iterator[bytes]:
    """The CSV in chunks, streamed as PostgreSQL produces it (constant memory)."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(map(guard_cell, HEADER))
    yield BOM + header.getvalue().encode()
    statement = sql.SQL("COPY ({query}) TO STDOUT {options}").format(
        query=export_query(tenant_id), options=COPY_CSV_OPTIONS
    )
    yield from stream_copy(conn, statement)
