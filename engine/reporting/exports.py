"""A job's recipients as a spreadsheet: the query both formats share, and the CSV stream.

One row per recipient, in send order (``seq``). A KakaoTalk recipient handed to SMS/LMS is one
row showing what *finally* happened: the fallback message's channel, status, reason and
completion time, with ``대체발송`` = ``Y`` and the Kakao failure's reason code beside it. Its
``접수 시각`` stays the first hand-over to a carrier (the Kakao submission), so the row spans the
whole life of that recipient. The row count is the job's recipient count, as operators expect.

Columns (Korean labels, as operators read them; status, kind and channel in Korean too):

==================== ============================================================
작업 ID              the job id
유형                 수동 / 예약 / 자동 (``jobs.kind``)
발송 채널            SMS / LMS / 알림톡; empty for a recipient refused at intake
수신번호             ``010-****-5678``; ``010-1234-5678`` only for an unmasked export;
                     a number refused at intake as no phone number shows as ``****``
                     (masked) or as it was sent to us (unmasked)
회원 ID              the caller's member id
상태                 대기 / 전송 중 / 성공 / 실패 / 만료 / 대체 발송 / 취소
사유 코드, 사유      the failure's reason code and text (empty when delivered)
접수 시각, 완료 시각  KST, ``YYYY-MM-DD HH:MM:SS``
대체발송             ``Y`` when a Kakao message failed and went by SMS/LMS
대체발송 전 사유 코드 the Kakao failure that caused the fallback
고객 참조            the caller's own reference of the recipient (``reference``)
==================== ============================================================

고객 참조 comes last, after the columns exports had before it, so a sheet or script reading those
columns by position reads the same ones.

The CSV is made by PostgreSQL itself (``COPY (SELECT ...) TO STDOUT (FORMAT csv)``): masking,
KST formatting, labels and the formula guard are SQL expressions, so Python only moves bytes
along. It is UTF-8 with a byte-order mark (Excel otherwise reads it as the local ANSI code page
and garbles Hangul), RFC 4180 quoting by PostgreSQL, ``\\n`` line ends (Excel, LibreOffice and
every CSV reader accept them). Cells that a spreadsheet would run as a formula (first character
``= + - @``, tab or carriage return; OWASP "CSV Injection") get a leading ``'``; so does such a
character after a ``,`` ``;`` or tab inside a cell: a spreadsheet that splits on another separator
than the comma (Excel in a locale whose list separator is ``;``) would make a formula cell of
what follows; so a ``'`` goes before every trigger that starts a cell or follows a
separator (``a;=1+1`` is written ``a;'=1+1``). Every cell is quoted too (``FORCE_QUOTE``), for
readers that honour quotes. The XLSX needs neither: its text cells are strings, never formulas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from psycopg import Connection, sql

from engine.errors import NotFound, ValidationError
from engine.lifecycle.statuses import RECIPIENT_STATUS_LABELS

FORMATS = ("csv", "xlsx")

T = TypeVar("T")
#: Told the number of rows an export has produced so far.
RowProgress = Callable[[int], None]
#: Rows between two progress calls.
PROGRESS_ROWS = 1000

#: Header labels, in column order.
HEADER = (
    "작업 ID",
    "유형",
    "발송 채널",
    "수신번호",
    "회원 ID",
    "상태",
    "사유 코드",
    "사유",
    "접수 시각",
    "완료 시각",
    "대체발송",
    "대체발송 전 사유 코드",
    "고객 참조",
)

KIND_LABELS = {"manual": "수동", "scheduled": "예약", "automatic": "자동"}
CHANNEL_LABELS = {"sms": "SMS", "lms": "LMS", "kakao": "알림톡"}
#: Korean labels of recipient statuses (the console's too).
STATUS_LABELS = RECIPIENT_STATUS_LABELS

#: First characters that make a spreadsheet cell a formula (OWASP CSV Injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Separators a spreadsheet may split a CSV line on, by locale: after one, a trigger starts a cell.
CELL_SEPARATORS = (",", ";", "\t")

#: COPY's options for every CSV export: RFC 4180, every non-NULL cell quoted.
COPY_CSV_OPTIONS = sql.SQL("(FORMAT csv, FORCE_QUOTE *)")

#: UTF-8 byte-order mark: tells Excel the file is UTF-8.
BOM = "\ufeff".encode()

#: Bytes gathered before handing a chunk on: COPY yields one row at a time, and each chunk
#: costs the web server a thread hop and a socket write.
CHUNK_BYTES = 256 * 1024

#: What an export does to a cell of free text (a member id, a reference, a carrier's reason, a number refused
#: at intake as it was sent): guard it against formulas (CSV) or escape it for XML (XLSX).
TextCell = Callable[[sql.Composable], sql.Composable]

#: The display format of every timestamp in an export (KST).
_TIME_FORMAT = "YYYY-MM-DD HH24:MI:SS"


@dataclass(frozen=True, slots=True)
class ExportJob:
    """What an export needs to know of its job."""

    id: int
    kind: str
    created_at: datetime
    #: Recipients of the job; fallback messages live at seq ``total + seq``.
    total: int


def find_job(conn: Connection, tenant_id: int, job_id: int) -> ExportJob:
    """The tenant's job; NotFound if it has none with this id (another tenant's job included)."""
    row = conn.execute(
        "SELECT id, kind, created_at, total FROM jobs WHERE id = %s AND tenant_id = %s",
        (job_id, tenant_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return ExportJob(id=int(row[0]), kind=str(row[1]), created_at=row[2], total=int(row[3]))


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    return value


def filename(job_id: int, fmt: str) -> str:
    return f"balsong-job-{job_id}-recipients.{fmt}"


# -- SQL ------------------------------------------------------------------------------------------


def guarded(column: sql.Composable) -> sql.Composable:
    """``column`` with a ``'`` before every formula trigger that starts it or follows one of
    :data:`CELL_SEPARATORS`: no cell a spreadsheet makes of it, whatever it splits on, is a
    formula (``a;=1+1`` becomes ``a;'=1+1``, ``=1+1`` becomes ``'=1+1``)."""
    # ascii() of the first character compares integers: cheaper than a one-character substring.
    starts = sql.SQL("ascii({c}) IN ({t})").format(
        c=column, t=sql.SQL(", ").join(sql.Literal(ord(ch)) for ch in FORMULA_TRIGGERS)
    )
    return sql.SQL(
        "CASE WHEN {c} ~ {inside}"
        " THEN CASE WHEN {starts} THEN {quote} ELSE '' END || regexp_replace({c}, {inside}, {quoted}, 'g')"
        " WHEN {starts} THEN {quote} || {c} ELSE {c} END"
    ).format(
        c=column,
        starts=starts,
        inside=sql.Literal(TRIGGER_AFTER_SEPARATOR),
        quote=sql.Literal("'"),
        quoted=sql.Literal("\\1'"),
    )


def guard_cell(text: str) -> str:
    """:func:`guarded` for a cell that Python writes (the same rule, the same expression)."""
    return ("'" if text.startswith(FORMULA_TRIGGERS) else "") + re.sub(TRIGGER_AFTER_SEPARATOR, r"\1'", text)


# A separator; a trigger ("-" first in its bracket: a literal, not a range).
_SEPARATOR = "[" + "".join(CELL_SEPARATORS) + "]"
_TRIGGER = "[-" + "".join(ch for ch in FORMULA_TRIGGERS if ch != "-") + "]"
#: A separator (group 1) before a formula trigger, in PostgreSQL's and Python's regular
#: expressions alike. The trigger is looked ahead at, not taken: a tab is a trigger and a
#: separator both (``;<tab>=`` holds two cells to guard).
TRIGGER_AFTER_SEPARATOR = f"({_SEPARATOR})(?={_TRIGGER})"


#: Stored recipient numbers are normalised digits (valid ones) or what the caller sent (those
#: refused as no phone number). Each pattern is a kind of number ``engine.intake.phone`` accepts, with
#: the length of its prefix: ``mask_phone`` shows the prefix and last four digits.
_PHONE_SHAPES = (
    # mobile, area codes outside Seoul, internet phone: 3-digit prefix
    (r"^(010[0-9]{8}|01[16789][0-9]{7,8}|0(3[1-3]|4[1-4]|5[1-5]|6[1-4])[0-9]{7,8}|070[0-9]{8})$", 3),
    (r"^02[0-9]{7,8}$", 2),  # Seoul
    (r"^050[2-8][0-9]{7,8}$", 4),  # personal numbers
)
#: Representative numbers (1588-1234) can only be refused at intake ("sender only").
_REPRESENTATIVE = r"^1[568][0-9]{6}$"


def _dashed(column: sql.Composable, head: int, *, unmasked: bool) -> sql.Composable:
    """``prefix-middle-last4`` of a digits-only number whose prefix is ``head`` digits long; the
    middle digits are stars unless ``unmasked``."""
    if unmasked:
        middle = sql.SQL("'-' || substr({c}, {start}, length({c}) - {drop}) || '-'").format(
            c=column, start=sql.Literal(head + 1), drop=sql.Literal(head + 4)
        )
    else:
        # Middles are 3 or 4 digits long: constant stars save two calls per row on the hot path.
        middle = sql.SQL(
            "CASE length({c}) - {drop} WHEN 4 THEN '-****-' WHEN 3 THEN '-***-'"
            " ELSE '-' || repeat('*', length({c}) - {drop}) || '-' END"
        ).format(c=column, drop=sql.Literal(head + 4))
    return sql.SQL("left({c}, {h}) || {m} || right({c}, 4)").format(c=column, h=sql.Literal(head), m=middle)


def phone_expression(column: sql.Composable, *, unmasked: bool, text: TextCell = guarded) -> sql.Composable:
    """SQL for the displayed form of any stored number: masked like ``engine.intake.phone.mask_phone``
    (``010-****-5678``), or dashed in full (``010-1234-5678``, which spreadsheets keep as text,
    leading 0 included).

    Parameters:
      text: what is done to an unmasked number refused at intake, shown as it was sent.
    """
    branches = [
        sql.SQL("WHEN {c} ~ {p} THEN {dashed}").format(
            c=column, p=sql.Literal(pattern), dashed=_dashed(column, head, unmasked=unmasked)
        )
        for pattern, head in _PHONE_SHAPES
    ]
    last = sql.SQL("right({c}, 4)").format(c=column) if unmasked else sql.SQL("'****'")
    branches.append(
        sql.SQL("WHEN {c} ~ {p} THEN left({c}, 4) || '-' || {last}").format(
            c=column, p=sql.Literal(_REPRESENTATIVE), last=last
        )
    )
    otherwise = text(column) if unmasked else sql.SQL("'****'")
    return sql.SQL("CASE {branches} ELSE {otherwise} END").format(
        branches=sql.SQL(" ").join(branches), otherwise=otherwise
    )


def normalised_phone_expression(column: sql.Composable, *, unmasked: bool) -> sql.Composable:
    """Like :func:`phone_expression` for a number known to be normalised (it passed intake): the
    prefix alone decides, without the patterns, which cost more than the rest of a row."""
    return sql.SQL(
        "CASE WHEN left({c}, 2) = '02' THEN {two} WHEN left({c}, 3) = '050' THEN {four} ELSE {three} END"
    ).format(
        c=column,
        two=_dashed(column, 2, unmasked=unmasked),
        four=_dashed(column, 4, unmasked=unmasked),
        three=_dashed(column, 3, unmasked=unmasked),
    )


def labelled(column: sql.Composable, labels: dict[str, str]) -> sql.Composable:
    """``column``'s label; an unknown value shows as itself (a status added later stays visible)."""
    whens = sql.SQL(" ").join(
        sql.SQL("WHEN {v} THEN {label}").format(v=sql.Literal(value), label=sql.Literal(label))
        for value, label in labels.items()
    )
    return sql.SQL("CASE {c} {whens} ELSE {c} END").format(c=column, whens=whens)


def kst_text(column: sql.Composable) -> sql.Composable:
    # A fixed +09:00: Korea has kept no daylight saving time since 1988, and a named zone costs a
    # zone lookup per value (about a third of a row's formatting time).
    return sql.SQL("to_char({c} AT TIME ZONE INTERVAL '+09:00', {f})").format(
        c=column, f=sql.Literal(_TIME_FORMAT)
    )


def export_columns(job: ExportJob, *, unmasked: bool, text: TextCell) -> list[sql.Composable]:
    """The cells of an export's row, every one text but the job id (see the module doc), over
    ``recipients r`` (and ``f``, its fallback message) as :func:`export_query` joins them.

    Parameters:
      unmasked: show whole phone numbers (the caller checked the ``export:unmasked`` scope).
      text: applied to every cell of free text; the other cells are labels, masked numbers and
        times made here, which hold neither a formula trigger nor anything XML must escape.
    """

    def final(column: str) -> sql.Composable:
        # The fallback message's value when there is one, else the recipient's own.
        return sql.SQL("CASE WHEN f.seq IS NULL THEN r.{c} ELSE f.{c} END").format(c=sql.Identifier(column))

    # A recipient with a channel passed intake, so its number is normalised. Masked forms never
    # start with a formula trigger; the raw text of a refused number is free text when shown.
    phone = sql.SQL("CASE WHEN r.channel IS NULL THEN {checked} ELSE {normalised} END").format(
        checked=phone_expression(sql.SQL("r.phone"), unmasked=unmasked, text=text),
        normalised=normalised_phone_expression(sql.SQL("r.phone"), unmasked=unmasked),
    )
    return [
        sql.Literal(job.id),  # a number: the same text in a CSV, a number cell in an XLSX
        sql.Literal(KIND_LABELS.get(job.kind, job.kind)),
        labelled(final("channel"), CHANNEL_LABELS),
        phone,
        text(sql.SQL("r.member_id")),
        labelled(final("status"), STATUS_LABELS),
        text(final("reason_code")),
        text(final("reason_text")),
        kst_text(sql.SQL("r.submitted_at")),
        kst_text(final("completed_at")),
        sql.SQL("CASE WHEN r.status = 'fallback' THEN 'Y' END"),
        text(sql.SQL("CASE WHEN r.status = 'fallback' THEN r.reason_code END")),
        text(sql.SQL("r.reference")),
    ]


def export_query(job: ExportJob, projection: sql.Composable) -> sql.Composed:
    """``SELECT projection`` once per recipient of ``job``, in send order.

    ``projection`` reads ``recipients r`` (its seq is ``0 .. total - 1``) and ``f``, the row of
    ``r``'s fallback message if it went by SMS/LMS after a failed KakaoTalk message.
    """
    return sql.SQL(
        """
        SELECT {projection}
        FROM recipients r
        LEFT JOIN recipients f ON r.status = 'fallback' AND f.job_id = r.job_id
                              AND f.job_created_at = r.job_created_at AND f.seq = {total} + r.seq
        WHERE r.job_id = {job} AND r.job_created_at = {created_at} AND r.seq < {total}
        ORDER BY r.seq
        """
    ).format(
        projection=projection,
        job=sql.Literal(job.id),
        created_at=sql.Literal(job.created_at),
        total=sql.Literal(job.total),
    )


# -- CSV ------------------------------------------------------------------------------------------


def csv_preamble() -> bytes:
    """The byte-order mark and the header line."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(map(guard_cell, HEADER))
    return BOM + out.getvalue().encode()


def csv_chunks(
    conn: Connection, job: ExportJob, *, unmasked: bool, progress: RowProgress | None = None
) -> Iterator[bytes]:
    """The CSV file in chunks of about :data:`CHUNK_BYTES`, produced while PostgreSQL sends it.

    Memory stays constant whatever the job's size: one chunk is held at a time, and the caller
    (a streaming HTTP response) asks for the next only when the previous one is sent.

    Parameters:
      progress: called with the number of rows produced so far, every :data:`PROGRESS_ROWS`
        rows and at the end (``balsong export``'s progress bar).
    """
    yield csv_preamble()
    columns = export_columns(job, unmasked=unmasked, text=guarded)
    statement = sql.SQL("COPY ({query}) TO STDOUT {options}").format(
        query=export_query(job, sql.SQL(", ").join(columns)), options=COPY_CSV_OPTIONS
    )
    with conn.transaction():
        prefer_streaming(conn)
        yield from stream_copy(conn, statement, progress)


def counted(rows: Iterable[T], progress: RowProgress | None) -> Iterable[T]:
    """``rows``, telling ``progress`` how many have gone by (every :data:`PROGRESS_ROWS` and at
    the end); ``rows`` itself when there is no ``progress`` (the API's exports: no cost)."""
    if progress is None:
        return rows
    return _counting(rows, progress)


def _counting(rows: Iterable[T], progress: RowProgress) -> Iterator[T]:
    done = 0
    for row in rows:
        yield row
        done += 1
        if done % PROGRESS_ROWS == 0:
            progress(done)
    progress(done)


def stream_copy(
    conn: Connection, statement: sql.Composed, progress: RowProgress | None = None
) -> Iterator[bytes]:
    """What a ``COPY ... TO STDOUT`` writes, in chunks of about ``CHUNK_BYTES``, as it comes
    (one row per item of the copy: ``progress`` counts rows)."""
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for data in counted(copy, progress):
            buffer += data
            if len(buffer) >= CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)


def prefer_streaming(conn: Connection) -> None:
    """Plan the export query (in the current transaction) so its first rows come at once.

    The rows must come in ``seq`` order. For a large job PostgreSQL's cheapest plan reads the
    whole job and sorts it (spilling to disk): the first row comes only after seconds. With
    sorting discouraged it walks the primary key in order instead (in parallel, merged), which
    takes as long in all and streams from the start. JIT compilation of the projection cost
    seconds before the first row in measurements, for no gain in total time.
    """
    conn.execute("SET LOCAL enable_sort = off")
    conn.execute("SET LOCAL jit = off")
