"""A job's attributed orders as CSV, one row per order line, made by PostgreSQL like the
recipients export (``engine.reporting.exports``: UTF-8 with BOM, RFC 4180, formula guard, KST times).

Columns: 메시지 유형 (the channel of the delivered message credited: SMS / LMS / 알림톡; SMS or
LMS for a KakaoTalk message delivered by fallback), 발송 상태, 회원 ID, 발송 시각 (handed to the
carrier), 주문번호, 주문 금액, 주문 일시, 상품번호, 상품명, 상품 가격, 옵션, 수량. An order
without lines is one row with the product columns empty. Cancelled orders are left out: the
export is what the job earned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from psycopg import Connection, sql

from engine.reporting.exports import (
    BOM,
    CHANNEL_LABELS,
    COPY_CSV_OPTIONS,
    STATUS_LABELS,
    ExportJob,
    guard_cell,
    guarded,
    stream_copy,
)

FORMATS = ("csv",)

HEADER = (
    "메시지 유형",
    "발송 상태",
    "회원 ID",
    "발송 시각",
    "주문번호",
    "주문 금액",
    "주문 일시",
    "상품번호",
    "상품명",
    "상품 가격",
    "옵션",
    "수량",
)

_TIME_FORMAT = "YYYY-MM-DD HH24:MI:SS"


def filename(job_id: int) -> str:
    return f"balsong-job-{job_id}-orders.csv"


def _labelled(column: str, labels: dict[str, str]) -> sql.Composable:
    whens = sql.SQL(" ").join(
        sql.SQL("WHEN {v} THEN {label}").format(v=sql.Literal(value), label=sql.Literal(label))
        for value, label in labels.items()
    )
    return sql.SQL("CASE {c} {whens} ELSE {c} END").format(c=sql.SQL(column), whens=whens)


def _kst(column: str) -> sql.Composable:
    # Fixed +09:00, as in engine.reporting.exports: Korea keeps no daylight saving time.
    return sql.SQL("to_char({c} AT TIME ZONE INTERVAL '+09:00', {f})").format(
        c=sql.SQL(column), f=sql.Literal(_TIME_FORMAT)
    )


def export_query(job: ExportJob, tenant_id: int) -> sql.Composed:
    columns = [
        _labelled("r.channel", CHANNEL_LABELS),
        _labelled("r.status", STATUS_LABELS),
        guarded(sql.SQL("o.member_id")),
        _kst("r.submitted_at"),
        guarded(sql.SQL("o.order_number")),
        sql.SQL("o.amount::text"),
        _kst("o.ordered_at"),
        guarded(sql.SQL("l.product_number")),
        guarded(sql.SQL("l.product_name")),
        sql.SQL("l.price"),
        guarded(sql.SQL("l.option")),
        sql.SQL("l.quantity::text"),
    ]
    return sql.SQL(
        """
        SELECT {columns}
        FROM orders o
        JOIN recipients r ON r.job_id = o.attributed_job_id AND r.seq = o.attributed_seq
                         AND r.job_created_at = {created_at}
        LEFT JOIN LATERAL jsonb_to_recordset(o.lines)
             AS l (product_number text, product_name text, price text, option text, quantity integer)
             ON true
        WHERE o.attributed_job_id = {job} AND o.tenant_id = {tenant} AND o.status = 'placed'
        ORDER BY o.member_id, o.ordered_at, o.order_number
        """
    ).format(
        columns=sql.SQL(", ").join(columns),
        created_at=sql.Literal(job.created_at),
        job=sql.Literal(job.id),
        tenant=sql.Literal(tenant_id),
    )


def csv_chunks(conn: Connection, job: ExportJob, tenant_id: int) -> Iterator[bytes]:
    """The CSV in chunks of about ``CHUNK_BYTES``, streamed as PostgreSQL produces it."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(map(guard_cell, HEADER))
    yield BOM + header.getvalue().encode()
    statement = sql.SQL("COPY ({query}) TO STDOUT {options}").format(
        query=export_query(job, tenant_id), options=COPY_CSV_OPTIONS
    )
    yield from stream_copy(conn, statement)
