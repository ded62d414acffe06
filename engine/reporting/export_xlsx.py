"""A job's recipients as an XLSX workbook, streamed from its first byte in constant memory.

Same rows and columns as the CSV (``engine.reporting.exports``). An XLSX file is a ZIP archive of XML
parts. Two of its parts are ours to write, row by row: the worksheets. Every other part (content
types, relationships, the styles that make the header bold, the frozen header, column widths,
filter buttons, the workbook's sheet list) is made by XlsxWriter as a header-only workbook, once
per sheet count, and kept.

The rows are written the way the CSV's are: PostgreSQL makes each row's XML (a ``<row>`` of
typed cells: the job id a number, the rest inline text, an empty value no cell) in one
``COPY ... TO STDOUT``, and Python only deflates the bytes into the archive as they come. The
archive is written to an unseekable stream (Python's ``zipfile``): each part's sizes and checksum
follow its data instead of preceding it, so nothing has to be rewritten once written, and the
first bytes leave before the first row is read. The library's own writer, which this replaced,
finished the whole file (ZIP directory last) before a byte could be sent: ~9 s for 1,000,000 rows,
with the data on disk twice meanwhile.

A sheet holds Excel's 1,048,576 rows, header included; a longer export goes on to the next sheet,
each with the header. The sheets' filter ranges are written once their rows are counted. The
archive has no ZIP64 extensions, which not every spreadsheet reader takes: a sheet may hold
2 GiB of XML, ~2 KB a row when full, where ours take ~500 bytes (member ids of kilobytes would
end the export with an error).
"""

from __future__ import annotations

import functools
import io
import itertools
import zipfile
from collections.abc import Collection, Generator, Iterator, Sequence

import xlsxwriter
from psycopg import Connection, sql
from psycopg.abc import Buffer

from engine.reporting.exports import (
    CHUNK_BYTES,
    HEADER,
    ExportJob,
    RowProgress,
    counted,
    export_columns,
    export_query,
    prefer_streaming,
)

#: Rows in one worksheet, header included: Excel's limit (a longer export continues on a new
#: sheet, each with the header).
SHEET_ROWS = 1_048_576
SHEET_NAME = "발송 결과"

#: zlib's level for the worksheets. On 1,000,000 rows level 1 makes a 40 MB file in 2.5 s of
#: this process's CPU, level 6 a 34 MB one in 5.7 s: PostgreSQL, writing the rows meanwhile,
#: needs the other core (``bench/export.py``).
COMPRESS_LEVEL = 1

#: Column widths, in characters, so the sheet is readable when opened.
_WIDTHS: list[float] = [10, 6, 8, 15, 16, 10, 16, 30, 20, 20, 8, 16, 16]

#: Column letters, in the order of ``HEADER``.
_COLUMNS = "ABCDEFGHIJKLM"
_LAST = _COLUMNS[len(HEADER) - 1]

#: The workbook part that lists the sheets (and their filter ranges).
_WORKBOOK = "xl/workbook.xml"

#: Characters XML 1.0 forbids (C0 controls but tab, line feed and carriage return; U+FFFE,
#: U+FFFF): dropped from text, as Excel could not open the file otherwise.
_NOT_XML = "".join(map(chr, [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))

#: What XML text escapes, in the order it is done (``&`` first). Tab, line feed, carriage return
#: and backslash become character references too: COPY's text format would otherwise write them
#: as ``\t``, ``\n``, ``\r`` and ``\\``, and each row's XML must be one line of COPY output.
_XML_ESCAPES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ("\\", "&#92;"),
    ("\t", "&#9;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
)


def sheet_names(rows: int, sheet_rows: int = SHEET_ROWS) -> list[str]:
    """The sheets ``rows`` recipient rows take (at least one): ``발송 결과``, ``발송 결과 (2)``..."""
    return _names(max(1, -(-rows // (sheet_rows - 1))))


def _names(sheets: int) -> list[str]:
    return [SHEET_NAME if number == 1 else f"{SHEET_NAME} ({number})" for number in range(1, sheets + 1)]


# -- SQL: one row's XML -----------------------------------------------------------------------------


def xml_text(column: sql.Composable) -> sql.Composable:
    """``column`` as XML element text, on one line (see ``_XML_ESCAPES``)."""
    expression = sql.SQL("translate({c}, {bad}, '')").format(c=column, bad=sql.Literal(_NOT_XML))
    for character, reference in _XML_ESCAPES:
        expression = sql.SQL("replace({e}, {c}, {r})").format(
            e=expression, c=sql.Literal(character), r=sql.Literal(reference)
        )
    return expression


def free_text_columns(job: ExportJob, *, unmasked: bool) -> frozenset[int]:
    """The positions of the cells of free text in the job's rows: those the export's ``text``
    treatment reaches (``exports.export_columns``; the phone number only when unmasked), found by
    building the cells with and without it rather than kept in a second list."""
    escaped = export_columns(job, unmasked=unmasked, text=xml_text)
    plain = export_columns(job, unmasked=unmasked, text=lambda column: column)
    return frozenset(i for i, (cell, raw) in enumerate(zip(escaped, plain, strict=True)) if cell != raw)


def row_xml(free_text: Collection[int]) -> sql.Composable:
    """SQL for a worksheet ``<row>`` of the columns ``c0``, ``c1``... numbered ``n``: the first
    cell a number, the others inline text (already escaped); a NULL cell is left out, as Excel
    writes an empty one. Cells of ``free_text`` keep their spaces at either end explicitly
    (``xml:space``); labels, masked numbers and times have none. One ``concat`` builds the row: a
    chain of ``||`` copies the growing row at every step."""
    parts: list[sql.Composable] = [sql.Literal('<row r="'), sql.SQL("n"), sql.Literal('">')]
    for i, letter in enumerate(_COLUMNS):
        if i == 0:
            opening, closing = '"><v>', "</v></c>"
        else:
            space = ' xml:space="preserve"' if i in free_text else ""
            opening, closing = f'" t="inlineStr"><is><t{space}>', "</t></is></c>"
        # NULL || ... is NULL, and concat skips a NULL: an empty value makes no cell at all.
        parts.append(
            sql.SQL("{head} || n || {opening} || {cell} || {closing}").format(
                head=sql.Literal(f'<c r="{letter}'),
                opening=sql.Literal(opening),
                cell=sql.Identifier(f"c{i}"),
                closing=sql.Literal(closing),
            )
        )
    parts.append(sql.Literal("</row>"))
    return sql.SQL("concat({parts})").format(parts=sql.SQL(", ").join(parts))


def cell_columns(cells: Sequence[sql.Composable]) -> list[sql.Composable]:
    """``cells`` as the columns ``c0``, ``c1``... that :func:`row_xml` reads."""
    return [sql.SQL("{c} AS {name}").format(c=c, name=sql.Identifier(f"c{i}")) for i, c in enumerate(cells)]


def rows_statement(job: ExportJob, *, unmasked: bool, sheet_rows: int) -> sql.Composed:
    """COPY of the job's worksheet rows, one ``<row>`` per line, numbered within their sheet."""
    columns = export_columns(job, unmasked=unmasked, text=xml_text)
    inner = sql.SQL(", ").join(
        [
            sql.SQL("r.seq"),
            # The row's number within its sheet, as text once: every cell's reference repeats it.
            sql.SQL("(r.seq % {per_sheet} + 2)::text AS n").format(per_sheet=sql.Literal(sheet_rows - 1)),
            *cell_columns(columns),
        ]
    )
    return sql.SQL("COPY (SELECT {row} FROM ({query}) AS q ORDER BY q.seq) TO STDOUT").format(
        row=row_xml(free_text_columns(job, unmasked=unmasked)), query=export_query(job, inner)
    )


# -- The workbook around the rows --------------------------------------------------------------------


@functools.cache
def workbook_parts(sheets: int) -> tuple[tuple[str, bytes], ...]:
    """The parts of a workbook of ``sheets`` header-only sheets, as XlsxWriter makes it."""
    output = io.BytesIO()
    # constant_memory: cells are written as inline strings (no shared-string table), as our rows are.
    workbook = xlsxwriter.Workbook(output, {"constant_memory": True})
    bold = workbook.add_format({"bold": True})
    for name in _names(sheets):
        sheet = workbook.add_worksheet(name)
        for column, width in enumerate(_WIDTHS):
            sheet.set_column(column, column, width)
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, HEADER, bold)
        # Filter buttons on the header: operators narrow to failures or one reason in Excel. The
        # range (header and the row below) is widened to the rows written (`_sheet_chunks`).
        sheet.autofilter(0, 0, 1, len(HEADER) - 1)
    workbook.close()
    with zipfile.ZipFile(io.BytesIO(output.getvalue())) as archive:
        return tuple((info.filename, archive.read(info)) for info in archive.infolist())


class _Sink(io.RawIOBase):
    """An unseekable file that keeps what is written to it until it is taken."""

    def __init__(self) -> None:
        self._data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:  # type: ignore[override]
        self._data += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


def _replace_once(text: str, old: str, new: str) -> str:
    # The template is the pinned library's output: if it changes shape, fail loudly, not subtly.
    if text.count(old) != 1:
        raise RuntimeError(f"unexpected workbook template: {old!r} is not there exactly once")
    return text.replace(old, new)


def _last_row(rows: int) -> int:
    """The last row a sheet's filter covers: a sheet with no rows keeps the template's filter over
    the header and the empty row below it."""
    return rows + 1 if rows else 2


def _sheet_chunks(
    archive: zipfile.ZipFile, sink: _Sink, part: str, template: str, rows: Iterator[Buffer], count: int
) -> Generator[bytes, None, int]:
    """Write worksheet ``part`` from its header-only ``template``: up to the header row, the next
    ``count`` of ``rows`` (fewer if they run out), the rest with the filter over the rows written.
    Yields what the archive has ready as it goes; returns the number of rows written."""
    head, tail = template.split("</sheetData>")
    # The dimension comes before the rows: it is the count the job should have.
    head = _replace_once(head, f'<dimension ref="A1:{_LAST}1"/>', f'<dimension ref="A1:{_LAST}{count + 1}"/>')
    written = 0
    with archive.open(part, "w") as entry:
        entry.write(head.encode())
        batch: list[Buffer] = []
        size = 0
        for row in itertools.islice(rows, count):
            batch.append(row)
            size += len(row)
            written += 1
            if size >= CHUNK_BYTES:
                entry.write(b"".join(batch))
                batch.clear()
                size = 0
                if chunk := sink.take():  # deflate keeps some input until it has a block
                    yield chunk
        entry.write(b"".join(batch))
        filtered = f'<autoFilter ref="A1:{_LAST}{_last_row(written)}"/>'
        entry.write(
            ("</sheetData>" + _replace_once(tail, f'<autoFilter ref="A1:{_LAST}2"/>', filtered)).encode()
        )
    yield sink.take()
    return written


def xlsx_chunks(
    conn: Connection,
    job: ExportJob,
    *,
    unmasked: bool,
    sheet_rows: int = SHEET_ROWS,
    progress: RowProgress | None = None,
) -> Iterator[bytes]:
    """The workbook in chunks of about :data:`CHUNK_BYTES`, produced while PostgreSQL sends the rows.

    Memory stays constant whatever the job's size: one chunk is held at a time, and the caller
    (a streaming HTTP response) asks for the next only when the previous one is sent.

    Parameters:
      sheet_rows: rows per sheet, header included (Excel's limit; smaller in tests).
      progress: called with the number of rows produced so far (`engine.reporting.exports.counted`).
    """
    names = sheet_names(job.total, sheet_rows)
    parts = dict(workbook_parts(len(names)))
    sheet_parts = [f"xl/worksheets/sheet{number}.xml" for number in range(1, len(names) + 1)]
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
    # The small parts first, then the sheets, then the sheet list, whose filter ranges need the
    # sheets' row counts (a ZIP's parts may come in any order).
    for name, data in parts.items():
        if name not in sheet_parts and name != _WORKBOOK:
            archive.writestr(name, data)
    yield sink.take()

    written: list[int] = []
    with conn.transaction(), conn.cursor() as cur:
        prefer_streaming(conn)
        with cur.copy(rows_statement(job, unmasked=unmasked, sheet_rows=sheet_rows)) as copy:
            rows = iter(counted(copy, progress))
            for index, part in enumerate(sheet_parts):
                # The job has one row per seq 0 .. total - 1, each sheet the next sheet_rows - 1.
                count = min(sheet_rows - 1, job.total - index * (sheet_rows - 1))
                written.append(
                    (yield from _sheet_chunks(archive, sink, part, parts[part].decode(), rows, count))
                )
            # Rows past the last sheet would mean total is wrong; they are not silently dropped.
            extra = sum(1 for _ in rows)
    if extra:
        found = sum(written) + extra
        raise RuntimeError(f"job {job.id} has {found} export rows, more than its total {job.total}")

    workbook = parts[_WORKBOOK].decode()
    for name, rows_written in zip(names, written, strict=True):
        filter_range = f"'{name}'!$A$1:${_LAST}$"
        workbook = _replace_once(workbook, f"{filter_range}2<", f"{filter_range}{_last_row(rows_written)}<")
    archive.writestr(_WORKBOOK, workbook)
    archive.close()
    yield sink.take()
