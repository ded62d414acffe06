"""A job's recipients as an XLSX workbook, written in constant memory.

Same rows and columns as the CSV (``engine.exports``), written by XlsxWriter in its
``constant_memory`` mode: each row goes to a temporary file as soon as the next one starts, so
memory does not grow with the job. An XLSX file is a ZIP archive whose central directory comes
last and whose parts XlsxWriter assembles when the workbook is closed, so the file cannot be
sent byte by byte while it is being made: it is built in a temporary directory (rows fetched
from a server-side cursor, 10,000 at a time), then streamed in chunks and deleted. The first
byte of a 1,000,000-recipient workbook therefore leaves after it is built (see
``bench/export.py`` for how long that takes); the web server's event loop is not blocked
meanwhile, since the work runs in its thread pool.

Cells are typed text (``write_string``), so nothing in them can run as a formula and no quote
prefix is needed; the job id is a number.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import xlsxwriter
from psycopg import Connection

from engine.exports import CHUNK_BYTES, HEADER, ExportJob, export_query, prefer_streaming

#: Rows fetched from PostgreSQL per round trip.
FETCH_ROWS = 10_000

#: Rows in one worksheet, header included: Excel's limit (rows beyond it are silently dropped
#: by XlsxWriter, so a longer export continues on a new sheet).
SHEET_ROWS = 1_048_576
SHEET_NAME = "발송 결과"

#: Column widths, in characters, so the sheet is readable when opened.
_WIDTHS = (10, 6, 8, 15, 16, 10, 16, 30, 20, 20, 8, 16)


def write_xlsx(
    conn: Connection, job: ExportJob, path: Path, *, unmasked: bool, sheet_rows: int = SHEET_ROWS
) -> int:
    """Write the export of ``job`` to ``path``; returns the number of recipient rows.

    XlsxWriter keeps its own temporary files beside ``path``. Rows past a sheet's limit go on to
    the next sheet (``발송 결과 (2)``...), each with the header.

    Parameters:
      sheet_rows: rows per sheet, header included (Excel's limit; smaller in tests).
    """
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "tmpdir": str(path.parent),
            # Text stays text: no formulas, numbers or hyperlinks guessed from cell contents.
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    bold = workbook.add_format({"bold": True})
    rows = 0
    with conn.transaction(), conn.cursor(name=f"export_{job.id}") as cur:
        prefer_streaming(conn)
        cur.itersize = FETCH_ROWS
        cur.execute(export_query(job, unmasked=unmasked, guard=False))
        sheet = _new_sheet(workbook, 1, bold)
        write_string, line = sheet.write_string, 0
        for record in cur:
            line += 1
            if line == sheet_rows:
                sheet = _new_sheet(workbook, rows // (sheet_rows - 1) + 1, bold)
                write_string, line = sheet.write_string, 1
            sheet.write_number(line, 0, job.id)
            for column in range(1, len(record)):
                value = record[column]
                if value is not None:
                    write_string(line, column, value)
            rows += 1
    workbook.close()
    return rows


def _new_sheet(workbook: xlsxwriter.Workbook, number: int, bold: Any) -> Any:
    sheet = workbook.add_worksheet(SHEET_NAME if number == 1 else f"{SHEET_NAME} ({number})")
    sheet.write_row(0, 0, HEADER, bold)
    for column, width in enumerate(_WIDTHS):
        sheet.set_column(column, column, width)
    sheet.freeze_panes(1, 0)
    return sheet


def xlsx_chunks(
    connection: Callable[[], AbstractContextManager[Connection]], job: ExportJob, *, unmasked: bool
) -> Iterator[bytes]:
    """The workbook in chunks: built first in a temporary directory (removed afterwards), then read.

    Parameters:
      connection: gives a database connection for the build only (e.g. ``pool.connection``), so
        a slow download does not hold one.
    """
    with tempfile.TemporaryDirectory(prefix="balsong-export-") as directory:
        path = Path(directory) / "export.xlsx"
        with connection() as conn:
            write_xlsx(conn, job, path, unmasked=unmasked)
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                yield chunk
