"""A job's recipients as an XLSX workbook, written in constant memory.

Same rows and columns as the CSV (``engine.exports``). The workbook is written by
rust_xlsxwriter (through its Python binding ``rustpy-xlsxwriter``) in its constant-memory mode:
rows are taken from a generator one at a time and written to a temporary file at once, so memory
does not grow with the job. XlsxWriter, which this replaced, spends ~3 µs of Python per cell:
23,000 rows/s of 12 columns, half the 50,000 asked for, with no faster way to call it.

An XLSX file is a ZIP archive whose central directory comes last and whose parts are assembled
when the workbook is closed, so it cannot be sent byte by byte while it is being made: it is
built in a temporary directory, then streamed in chunks and deleted. The response's headers go
out at once; its first byte after the build (see ``bench/export.py`` for how long that takes).
The build runs in the web server's thread pool; the rows reach the writer through a Python
generator, which gives up the GIL at the interpreter's switch interval like any Python code, so
the event loop is not blocked meanwhile (its longest wait during a build, measured: ~50 ms).

Rows come from PostgreSQL in streaming mode (``Cursor.stream``): the server keeps producing
rows while the writer works, which a server-side cursor's round trips (one per FETCH, the
server idle meanwhile) did not allow; it took a third off the build.

Each sheet opens readable: a bold header frozen in view with filter buttons, set column widths.
Cells are typed: text stays text (nothing in it can run as a formula, no quote prefix is
needed), an empty value is an empty cell, the job id is a number.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import Any, cast

import rustpy_xlsxwriter
from psycopg import Connection

from engine.exports import CHUNK_BYTES, HEADER, ExportJob, export_query, prefer_streaming

#: Rows PostgreSQL sends per network message in streaming mode.
STREAM_ROWS = 1_000

#: Rows in one worksheet, header included: Excel's limit (a longer export continues on a new
#: sheet, each with the header).
SHEET_ROWS = 1_048_576
SHEET_NAME = "발송 결과"

#: Column widths, in characters, so the sheet is readable when opened.
_WIDTHS: list[float] = [10, 6, 8, 15, 16, 10, 16, 30, 20, 20, 8, 16]


def sheet_names(rows: int, sheet_rows: int = SHEET_ROWS) -> list[str]:
    """The sheets ``rows`` recipient rows take (at least one): ``발송 결과``, ``발송 결과 (2)``..."""
    sheets = max(1, -(-rows // (sheet_rows - 1)))
    return [SHEET_NAME if number == 1 else f"{SHEET_NAME} ({number})" for number in range(1, sheets + 1)]


def write_xlsx(
    conn: Connection, job: ExportJob, path: Path, *, unmasked: bool, sheet_rows: int = SHEET_ROWS
) -> int:
    """Write the export of ``job`` to ``path``; returns the number of recipient rows.

    The job has exactly ``job.total`` rows (one per recipient seq), so the sheets are known
    before the first row is read; each takes the next ``sheet_rows - 1`` rows of one stream.

    Parameters:
      sheet_rows: rows per sheet, header included (Excel's limit; smaller in tests).
    """
    written = 0

    def records(cursor: Iterator[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
        nonlocal written
        for record in cursor:
            written += 1
            yield dict(zip(HEADER, record, strict=True))

    with conn.transaction(), conn.cursor() as cur:
        prefer_streaming(conn)
        # A generator (typed as a plain iterator by psycopg) that holds the connection's lock
        # until it ends: closed explicitly if the writer fails, or the rollback below would wait
        # for that lock forever. Closed, the query is cancelled and the connection goes back to
        # its pool (tested).
        stream = cast(
            Generator[tuple[Any, ...], None, None],
            cur.stream(export_query(job, unmasked=unmasked, guard=False), size=STREAM_ROWS),
        )
        with closing(stream):
            rows = records(stream)
            sheets: list[tuple[str, Iterable[dict[str, Any]]]]
            if job.total == 0:
                # The writer takes its header from the first row's keys; a row of empty values
                # gives the header and writes no cells, so an empty job's sheet still has one.
                sheets = [(SHEET_NAME, [dict.fromkeys(HEADER)])]
            else:
                names = sheet_names(job.total, sheet_rows)
                sheets = [(name, itertools.islice(rows, sheet_rows - 1)) for name in names]
            rustpy_xlsxwriter.write_worksheets(
                sheets,
                str(path),
                bold_headers=True,
                freeze_panes={"general": {"row": 1, "col": 0}},
                column_widths={"general": _WIDTHS},
                # Filter buttons on the header: operators narrow to failures or one reason in Excel.
                autofilter={"general": True},
            )
            # Rows past the last sheet would mean total is wrong; they are not silently dropped.
            extra = sum(1 for _ in rows)
    if extra:
        raise RuntimeError(f"job {job.id} has {written} export rows, more than its total {job.total}")
    return written


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
