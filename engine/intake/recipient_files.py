"""Recipients from a file or pasted text, read row by row, and mapped to job recipients.

Operators bring recipients as an Excel workbook (``.xlsx``), a CSV file (UTF-8, with or without a
BOM, or CP949 as Korean Excel saves it) or lines pasted into a form (``phone[,name...]``, commas
or the tabs a spreadsheet copies). `read_rows` yields each row as a list of cell texts, reading
the file as it goes: a workbook through openpyxl's read-only mode (the sheet's XML is streamed),
a CSV through a text wrapper over the file, so a 100,000-row upload is never held whole. What a
column means is the operator's choice, a `ColumnMapping` (phone, variables by name, member id,
reference); `recipient_of` makes one job recipient (``{"phone", "variables", "member_id",
"reference"}``, as POST /v1/jobs takes it) from a row. Validation is intake's, not this module's.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any

from engine.errors import ValidationError

#: File kinds read, by name ending.
KINDS = {".xlsx": "xlsx", ".csv": "csv", ".txt": "csv"}
#: Longest cell kept, in characters (a longer cell is cut: no phone, name or id is that long,
#: and intake refuses what is wrong in what is left).
CELL_MAX_CHARACTERS = 2000
#: Most columns read from a row (the rest are no recipient data an operator would map).
MAX_COLUMNS = 50
#: Bytes looked at to tell UTF-8 from CP949.
_SNIFF_BYTES = 64 * 1024

#: What a column can be.
PHONE, VARIABLE, MEMBER_ID, REFERENCE, SKIP = "phone", "variable", "member_id", "reference", "skip"
ROLES = (PHONE, VARIABLE, MEMBER_ID, REFERENCE, SKIP)

#: Header texts read as a role (lower case, spaces removed), for the mapping's first guess.
_HEADER_ROLES = {
    **dict.fromkeys(
        ("phone", "mobile", "전화번호", "휴대폰", "휴대폰번호", "휴대전화", "수신번호", "연락처"), PHONE
    ),
    **dict.fromkeys(("member_id", "memberid", "회원id", "회원아이디", "회원번호"), MEMBER_ID),
    **dict.fromkeys(("reference", "참조", "고객참조", "주문번호"), REFERENCE),
    **dict.fromkeys(("name", "이름", "성명", "고객명"), "name"),
}


def kind_of(filename: str) -> str:
    """``xlsx`` or ``csv`` by the file's name; ValidationError for anything else."""
    lowered = filename.lower()
    for ending, kind in KINDS.items():
        if lowered.endswith(ending):
            return kind
    raise ValidationError("file", "only .xlsx and .csv files can be read")


def read_rows(stream: IO[bytes], kind: str) -> Iterator[list[str]]:
    """Each row of the file (``kind`` ``xlsx`` or ``csv``) as cell texts, read as it goes;
    empty rows are skipped.

    Raises:
      ValidationError: the file is not what its name says (an unreadable workbook ...).
    """
    rows = _xlsx_rows(stream) if kind == "xlsx" else _csv_rows(stream)
    for row in rows:
        if any(row):
            yield row


def pasted_rows(text: str) -> Iterator[list[str]]:
    """Rows of pasted lines: cells split at tabs (copied from a spreadsheet) or else commas."""
    for line in io.StringIO(text):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cells = line.split("\t") if "\t" in line else next(csv.reader([line]))
        yield [_cell(c) for c in cells[:MAX_COLUMNS]]


def _xlsx_rows(stream: IO[bytes]) -> Iterator[list[str]]:
    """The first sheet's rows, through openpyxl's read-only worksheet parser.

    openpyxl's own read-only iteration clears each ``<row>`` element once read but leaves it in
    its ``<sheetData>`` parent, some 90 bytes a row that stay until the sheet ends (9 MB for
    100,000 rows); this loop drives the same parser (`WorkSheetParser.parse_row`, openpyxl
    3.1.5 as pinned) and takes each row out of its parent as well, so memory stays flat."""
    from xml.etree.ElementTree import Element, iterparse

    from openpyxl import load_workbook  # imported where used: a second's import, only for uploads
    from openpyxl.worksheet._reader import ROW_TAG, SHEET_MAIN_NS, WorkSheetParser

    sheet_data_tag = f"{{{SHEET_MAIN_NS}}}sheetData"
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        source = sheet._get_source()  # type: ignore[union-attr]
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError ... for a bad file
        raise ValidationError("file", f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,  # type: ignore[union-attr]
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        parent: Element | None = None
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start":
                if element.tag == sheet_data_tag:
                    parent = element
                continue
            if element.tag != ROW_TAG:
                continue
            _, cells = parser.parse_row(element)
            element.clear()
            if parent is not None:
                parent.remove(element)
            row = [""] * min(MAX_COLUMNS, max((cell["column"] for cell in cells), default=0))
            for cell in cells:
                if cell["column"] <= MAX_COLUMNS:
                    row[cell["column"] - 1] = _cell(cell["value"])
            yield row
    except (SyntaxError, KeyError, ValueError) as exc:  # ParseError is a SyntaxError
        raise ValidationError("file", f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    finally:
        source.close()
        workbook.close()


def _csv_rows(stream: IO[bytes]) -> Iterator[list[str]]:
    encoding = _csv_encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    try:
        for cells in csv.reader(text):
            yield [_cell(c) for c in cells[:MAX_COLUMNS]]
    except csv.Error as exc:
        raise ValidationError("file", f"not a readable CSV file: {exc}") from None
    finally:
        text.detach()  # the caller owns the file


def _csv_encoding(stream: IO[bytes]) -> str:
    """``utf-8-sig`` if the file's start decodes as UTF-8, else ``cp949`` (Korean Excel's CSV)."""
    start = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(start, final=False)  # a character cut at the end is no error
    except UnicodeDecodeError:
        return "cp949"
    return "utf-8-sig"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel keeps every number as a float: 1012345678.0
    elif isinstance(value, datetime):
        value = value.strftime("%Y-%m-%d %H:%M") if value.time() != time(0) else value.date().isoformat()
    elif isinstance(value, date):
        value = value.isoformat()
    text = str(value).strip().lstrip("\ufeff")
    return text[:CELL_MAX_CHARACTERS]


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """What each column of the rows means; column numbers count from 0."""

    phone: int
    #: Variable name -> column.
    variables: dict[str, int] = field(default_factory=dict)
    member_id: int | None = None
    reference: int | None = None
    #: Whether the first row is a header (not a recipient).
    header: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "variables": self.variables,
            "member_id": self.member_id,
            "reference": self.reference,
            "header": self.header,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnMapping:
        return cls(
            phone=int(data["phone"]),
            variables={str(k): int(v) for k, v in data["variables"].items()},
            member_id=data["member_id"],
            reference=data["reference"],
            header=bool(data["header"]),
        )


def recipient_of(row: list[str], mapping: ColumnMapping) -> dict[str, Any]:
    """The job recipient a row stands for (a missing cell is empty: intake says what lacks)."""

    def cell(column: int) -> str:
        return row[column] if column < len(row) else ""

    recipient: dict[str, Any] = {"phone": cell(mapping.phone)}
    if mapping.variables:
        recipient["variables"] = {name: cell(column) for name, column in mapping.variables.items()}
    if mapping.member_id is not None and cell(mapping.member_id):
        recipient["member_id"] = cell(mapping.member_id)
    if mapping.reference is not None and cell(mapping.reference):
        recipient["reference"] = cell(mapping.reference)
    return recipient


def looks_like_header(row: list[str]) -> bool:
    """A first row with no digit in any cell names its columns rather than holding a recipient."""
    return not any(ch.isdigit() for cell in row for ch in cell)


def guess_mapping(first_row: list[str], columns: int, body_variables: tuple[str, ...]) -> ColumnMapping:
    """The mapping to offer first: by the header's names when the first row is one; else the
    first column is the phone and the next ones the message's variables, in order."""
    if looks_like_header(first_row):
        roles: dict[str, int] = {}
        variables: dict[str, int] = {}
        for column, text in enumerate(first_row):
            key = "".join(text.lower().split())
            role = _HEADER_ROLES.get(key)
            if role in (PHONE, MEMBER_ID, REFERENCE):
                roles.setdefault(role, column)
            elif text:
                variables.setdefault(role or text, column)
        phone = roles.get(PHONE, 0)
        variables = {name: c for name, c in variables.items() if c != phone}
        return ColumnMapping(phone, variables, roles.get(MEMBER_ID), roles.get(REFERENCE), header=True)
    names = iter(body_variables)
    variables = {}
    for column in range(1, columns):
        name = next(names, None)
        if name is None:
            break
        variables[name] = column
    return ColumnMapping(0, variables)
