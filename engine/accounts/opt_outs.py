"""A tenant's opt-out list: numbers that asked to receive none of its advertising.

Only advertising jobs consult it (at intake, see `engine.intake.job_store`): an information message —
an order notice, a password code — still reaches a number that opted out of advertising.

Files of numbers (CSV or XLSX, `balsong opt-out import` and the console) are read as a stream of
``(line number, value)`` (`read_file`) and written a chunk at a time (`import_numbers`), so a
file of millions of numbers costs the memory of one chunk; each chunk commits on its own (a file
that breaks half-way leaves its first part on the list: adding an opt-out is always safe, and an
import repeated adds nothing twice).
"""

from __future__ import annotations

import codecs
import csv
import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from psycopg import Connection

from engine.errors import ValidationError
from engine.intake.phone import InvalidPhone, mask_phone, normalize_recipient, search_terms

log = logging.getLogger(__name__)

#: Where a number on the list came from (``carrier``: the carrier's 080 opt-out service;
#: ``console``: typed in the operator console; ``csv``, ``xlsx``: a file imported).
SOURCES = ("api", "csv", "xlsx", "console", "carrier")
#: Korean names of the sources, as operators read them (the console, the CSV).
SOURCE_LABELS = {
    "api": "API",
    "csv": "CSV 파일",
    "xlsx": "XLSX 파일",
    "console": "콘솔",
    "carrier": "080 수신거부",
}
#: Numbers an import writes in one statement (and one transaction).
IMPORT_CHUNK = 5_000
#: Refused lines an import lists with their line numbers; it counts them all.
MAX_LISTED_REFUSALS = 1_000
#: Bytes of a CSV file read to tell UTF-8 from CP949 (Excel's "CSV" in Korean Windows).
_SNIFF_BYTES = 64 * 1024
#: How a ZIP archive (so an XLSX workbook) starts.
_ZIP_MAGIC = b"PK\x03\x04"

#: The free opt-out line every advertising message must carry (`engine.intake.compliance`):
#: "무료수신거부 080-123-4567", "무료 수신거부: 0801234567", "무료거부 080-1234-5678". Its group is
#: the 080 number. Read by Python and by PostgreSQL (an ARE), so it uses syntax both share.
OPT_OUT_LINE = r"무료\s*(?:수신\s*)?거부\s*[:：]?\s*(080-?\d{3,4}-?\d{4})"

# The tenants whose advertising carried a 080 opt-out line with this number (digits only): the
# line is required in every advertising message, so it names its sender.
_TENANTS_OF_080 = """
    SELECT DISTINCT tenant_id FROM jobs
    WHERE advertisement AND regexp_replace(substring(body from %(line)s), '-', '', 'g') = %(number)s
"""


@dataclass(slots=True)
class AddResult:
    #: Numbers newly on the list (numbers already on it are not counted again).
    added: int = 0
    #: Numbers refused, as ``(position in the input, reason)``; the rest were added.
    invalid: list[tuple[int, str]] = field(default_factory=list)


def add(conn: Connection, tenant_id: int, phones: Iterable[str], source: str = "api") -> AddResult:
    """Put numbers on the tenant's list; a bad number is refused alone, with its reason."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    result = AddResult()
    numbers: list[str] = []
    for position, raw in enumerate(phones):
        try:
            numbers.append(normalize_recipient(raw))
        except InvalidPhone as exc:
            result.invalid.append((position, exc.reason))
    result.added = _insert(conn, tenant_id, numbers, source)
    return result


def _insert(conn: Connection, tenant_id: int, numbers: list[str], source: str) -> int:
    """Put normalised numbers on the list in one statement; how many were not on it yet."""
    if not numbers:
        return 0
    with conn.transaction():
        cursor = conn.execute(
            """
            INSERT INTO opt_outs (tenant_id, phone, source)
            SELECT %s, phone, %s FROM unnest(%s::text[]) AS phone
            ON CONFLICT (tenant_id, phone) DO NOTHING
            """,
            (tenant_id, source, numbers),
        )
        return cursor.rowcount


def add_from_080(conn: Connection, line: str, phones: Iterable[str]) -> int:
    """Opt-outs the carrier's 080 service took on ``line``: onto the list of every tenant whose
    advertising carried that opt-out number; returns how many entries were added."""
    digits = "".join(ch for ch in line if ch.isdigit())
    tenants = [int(row[0]) for row in conn.execute(_TENANTS_OF_080, {"line": OPT_OUT_LINE, "number": digits})]
    if not tenants:
        log.warning(
            "080 opt-outs for a number no tenant's advertising carried", extra={"count": len(tenants)}
        )
    numbers = list(phones)
    return sum(add(conn, tenant_id, numbers, source="carrier").added for tenant_id in tenants)


def remove(conn: Connection, tenant_id: int, phone: str) -> bool:
    """Take a number off the list (it agreed to advertising again); False if it was not on it."""
    number = normalize_recipient(phone)
    return bool(
        conn.execute("DELETE FROM opt_outs WHERE tenant_id = %s AND phone = %s", (tenant_id, number)).rowcount
    )


@dataclass(slots=True)
class ImportResult:
    #: Lines that held a value (blank lines and a header row are not counted).
    read: int = 0
    #: Numbers newly on the list.
    added: int = 0
    #: Lines refused (not a number that can receive messages).
    refused: int = 0
    #: The first `MAX_LISTED_REFUSALS` refused lines: ``(line number, reason code, reason)``.
    refusals: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def already(self) -> int:
        """Valid numbers that were on the list already (or twice in the file)."""
        return self.read - self.added - self.refused


def import_numbers(
    conn: Connection, tenant_id: int, numbered: Iterable[tuple[int, str]], source: str
) -> ImportResult:
    """Put the numbers of ``numbered`` (``(line number, value)``, as `read_file` yields them) on
    the tenant's list, :data:`IMPORT_CHUNK` at a time; a bad line is refused alone."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    result = ImportResult()
    chunk: list[str] = []
    for line, value in numbered:
        result.read += 1
        try:
            chunk.append(normalize_recipient(value))
        except InvalidPhone as exc:
            result.refused += 1
            if len(result.refusals) < MAX_LISTED_REFUSALS:
                result.refusals.append((line, exc.code, exc.reason))
        if len(chunk) >= IMPORT_CHUNK:
            result.added += _insert(conn, tenant_id, chunk, source)
            chunk.clear()
    result.added += _insert(conn, tenant_id, chunk, source)
    return result


def read_file(binary: IO[bytes]) -> tuple[str, Iterator[tuple[int, str]]]:
    """The format of a file of numbers (``csv`` or ``xlsx``, by its first bytes) and its values
    as ``(line number, value)``, read as they are consumed.

    Parameters:
      binary: the file, seekable (an upload spooled to disk, or an open file).
    """
    head = binary.read(len(_ZIP_MAGIC))
    binary.seek(0)
    if head == _ZIP_MAGIC:
        return "xlsx", xlsx_numbers(binary)
    return "csv", csv_numbers(_decoded(binary))


def _decoded(binary: IO[bytes]) -> Iterable[str]:
    """The CSV as text: UTF-8 (with or without BOM) if its start reads as UTF-8, else CP949, the
    encoding of a CSV saved by Excel on a Korean Windows. A byte neither reads becomes U+FFFD,
    and its line a refused one, never an error."""
    sample = binary.read(_SNIFF_BYTES)
    binary.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "cp949"
    return codecs.getreader(encoding)(binary, "replace")


def csv_numbers(text: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, first cell)`` of each CSV row with a value. A first row without a digit
    (``phone``, ``수신번호``) is a header and skipped; later rows are all values. ValidationError on
    ``file`` for text that is no CSV (a cell beyond csv's field size limit)."""
    reader = csv.reader(text)
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell longer than csv's field limit: no file of numbers
            reason = f"line {reader.line_num}: not CSV that can be read ({exc})"
            raise ValidationError("file", reason) from None
        value = row[0].strip().lstrip("\ufeff").strip() if row else ""
        if not value:
            continue
        if first and not any(ch.isdigit() for ch in value):
            first = False
            continue
        first = False
        yield reader.line_num, value


def xlsx_numbers(binary: IO[bytes]) -> Iterator[tuple[int, str]]:
    """``(row number, first cell)`` of each row of the workbook's first sheet with a value, read
    row by row (openpyxl's read-only mode); ValidationError on ``file`` if it is no workbook.

    A first row without a digit is a header. A number cell is read as its digits: one whose
    leading 0 the spreadsheet ate (``1012345678``) is refused with a reason saying so
    (`engine.intake.phone` guesses no digit back).
    """
    try:
        book = load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        reason = f"not an XLSX workbook that can be read ({type(exc).__name__})"
        raise ValidationError("file", reason) from None
    try:
        sheet = book.worksheets[0]
        first = True
        for row in sheet.iter_rows(max_col=1):
            cell = row[0] if row else None
            raw = getattr(cell, "value", None)
            if raw is None:
                continue
            if isinstance(raw, bool):
                value = str(raw)
            elif isinstance(raw, int | float):
                value = _number_cell(raw)
            else:
                value = str(raw).strip()
            if not value:
                continue
            if first and not any(ch.isdigit() for ch in value):
                first = False
                continue
            first = False
            yield int(cell.row), value  # type: ignore[union-attr]
    finally:
        book.close()


def _number_cell(raw: float) -> str:
    if isinstance(raw, float) and not raw.is_integer():
        return repr(raw)  # no phone number has a fraction: refused with the reason its digits give
    return str(int(raw))


def remove_entry(conn: Connection, tenant_id: int, entry_id: int) -> bool:
    """Take the list's entry ``entry_id`` off it (the console's rows show masked numbers, so its
    forms name the entry, not the number); False if the tenant has no such entry."""
    return bool(
        conn.execute("DELETE FROM opt_outs WHERE tenant_id = %s AND id = %s", (tenant_id, entry_id)).rowcount
    )


def counts(conn: Connection, tenant_id: int) -> dict[str, int]:
    """Numbers on the tenant's list by source (`SOURCES`), each source present."""
    rows = conn.execute(
        "SELECT source, count(*) FROM opt_outs WHERE tenant_id = %s GROUP BY source", (tenant_id,)
    ).fetchall()
    found = {str(source): int(count) for source, count in rows}
    return {**dict.fromkeys(SOURCES, 0), **found}


def listing(
    conn: Connection,
    tenant_id: int,
    *,
    phone: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> dict[str, object]:
    """A page of the list, newest first, numbers masked; the cursor is a row id, not a number.

    Parameters:
      phone: only this number (any form intake accepts; the primary key finds it), or the
        numbers ending in these four digits (ValidationError on ``phone`` for anything else).
    """
    whole, last_four = search_terms("phone", phone)
    rows = conn.execute(
        """
        SELECT id, phone, source, created_at FROM opt_outs
        WHERE tenant_id = %(tenant)s AND (%(after)s::bigint IS NULL OR id < %(after)s)
          AND (%(whole)s::text IS NULL OR phone = %(whole)s)
          AND (%(last4)s::text IS NULL OR right(phone, 4) = %(last4)s)
        ORDER BY id DESC LIMIT %(limit)s
        """,
        {"tenant": tenant_id, "after": after, "whole": whole, "last4": last_four, "limit": limit + 1},
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    total = conn.execute("SELECT count(*) FROM opt_outs WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return {
        "total": int(total[0]) if total else 0,
        "opt_outs": [
            {"id": id_, "phone": mask_phone(phone), "source": source, "created_at": created_at.isoformat()}
            for id_, phone, source, created_at in rows
        ],
        "next_cursor": str(rows[-1][0]) if more else None,
    }
