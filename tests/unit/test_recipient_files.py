"""Reading recipients from uploaded files and pasted lines, row by row (engine.intake.recipient_files)."""

from __future__ import annotations

import io
import tempfile
import tracemalloc

import pytest
from openpyxl import Workbook

from engine.errors import ValidationError
from engine.intake.recipient_files import (
    ColumnMapping,
    guess_mapping,
    kind_of,
    pasted_rows,
    read_rows,
    recipient_of,
)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_a_workbook_is_read_as_cell_texts_with_numbers_as_written() -> None:
    # Given a workbook whose phone column Excel turned into numbers (the leading 0 eaten)
    data = xlsx_bytes(
        [["전화번호", "이름", "포인트"], [1012345678, "홍길동", 1500.0], ["010-2222-3333", "김철수", None]]
    )

    # When it is read
    rows = list(read_rows(io.BytesIO(data), "xlsx"))

    # Then numbers come as their digits (no ".0"), empty cells as "", the header as the first row
    assert rows == [
        ["전화번호", "이름", "포인트"],
        ["1012345678", "홍길동", "1500"],
        ["010-2222-3333", "김철수"],
    ]


def test_a_cp949_csv_as_korean_excel_saves_it_is_read() -> None:
    # Given a CSV in CP949 and one in UTF-8 with a BOM
    text = "수신번호,이름\r\n010-1111-2222,홍길동\r\n\r\n"
    for encoded in (text.encode("cp949"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        # When read, Then the Korean text is intact and the empty line skipped
        rows = list(read_rows(io.BytesIO(encoded), "csv"))
        assert rows == [["수신번호", "이름"], ["010-1111-2222", "홍길동"]]


def test_pasted_lines_split_at_commas_or_tabs() -> None:
    assert list(pasted_rows("010-1111-2222,홍길동\n\n010 3333 4444\t김철수\t VIP \n")) == [
        ["010-1111-2222", "홍길동"],
        ["010 3333 4444", "김철수", "VIP"],
    ]


def test_only_xlsx_and_csv_files_are_read() -> None:
    assert kind_of("고객.XLSX") == "xlsx" and kind_of("list.csv") == "csv"
    with pytest.raises(ValidationError) as refused:
        kind_of("고객.xls")
    assert refused.value.field == "file"
    with pytest.raises(ValidationError):
        list(read_rows(io.BytesIO(b"not a zip"), "xlsx"))


def test_the_mapping_is_guessed_from_a_header_or_the_messages_variables() -> None:
    # Given a header naming its columns, Then they are mapped by name
    header = ["이름", "휴대폰", "회원번호", "등급"]
    assert guess_mapping(header, 4, ("name",)) == ColumnMapping(
        phone=1, variables={"name": 0, "등급": 3}, member_id=2, header=True
    )
    # Given no header, Then the first column is the phone and the next ones the variables in order
    assert guess_mapping(["010-1111-2222", "홍길동", "VIP"], 3, ("name", "grade")) == ColumnMapping(
        phone=0, variables={"name": 1, "grade": 2}
    )


def test_a_row_becomes_a_job_recipient_by_the_mapping() -> None:
    mapping = ColumnMapping(phone=1, variables={"name": 0}, member_id=2, reference=3)
    assert recipient_of(["홍길동", "010-1111-2222", "M1", ""], mapping) == {
        "phone": "010-1111-2222",
        "variables": {"name": "홍길동"},
        "member_id": "M1",
    }
    # A short row lacks cells: they are empty, and intake says what is missing
    assert recipient_of([], ColumnMapping(phone=0, variables={"name": 1})) == {
        "phone": "",
        "variables": {"name": ""},
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_100000_row_file_is_read_without_holding_it(kind: str) -> None:
    # Given a 100,000-row upload on disk (as UploadFile spools it)
    rows = 100_000
    with tempfile.TemporaryFile() as spooled:
        if kind == "csv":
            spooled.write("전화번호,이름,회원번호\n".encode())
            for i in range(rows):
                spooled.write(f"010-{i // 10000:04d}-{i % 10000:04d},고객{i},M{i}\n".encode())
        else:
            # As Excel writes it: with the sheet's <dimension> (openpyxl's read-only mode reads a
            # sheet without one whole at load, to find its size)
            workbook = Workbook()
            sheet = workbook.active
            assert sheet is not None
            sheet.append(["전화번호", "이름", "회원번호"])
            for i in range(rows):
                sheet.append([f"010-{i // 10000:04d}-{i % 10000:04d}", f"고객{i}", f"M{i}"])
            workbook.save(spooled)
        size = spooled.tell()
        spooled.seek(0)

        # When it is read row by row
        tracemalloc.start()
        try:
            count = sum(1 for _ in read_rows(spooled, kind))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    # Then every row comes, and the reader's memory stays far below the (zipped) file's size: a
    # row at a time, beside openpyxl's fixed ~0.8 MB for the workbook's parts
    assert count == rows + 1
    assert peak < size / 2, (peak, size)
