"""The pure parts of exports: the CSV preamble, formats, file names and XLSX sheet names."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from engine.errors import ValidationError
from engine.reporting.export_xlsx import SHEET_ROWS, free_text_columns, sheet_names
from engine.reporting.exports import BOM, HEADER, ExportJob, check_format, csv_preamble, filename


def test_csv_preamble_is_a_bom_then_the_korean_header() -> None:
    # When the CSV preamble is made
    preamble = csv_preamble()

    # Then Excel sees UTF-8 (byte-order mark) and reads the header labels back exactly
    assert preamble.startswith(BOM) and BOM == b"\xef\xbb\xbf"
    text = preamble.decode("utf-8-sig")
    assert text.endswith("\n") and text.count("\n") == 1
    assert next(csv.reader(io.StringIO(text))) == list(HEADER)
    assert HEADER[:4] == ("작업 ID", "유형", "발송 채널", "수신번호")


def test_export_formats_and_file_names() -> None:
    # Given the two formats, Then they pass and the file name carries the job id
    assert check_format("csv") == "csv" and check_format("xlsx") == "xlsx"
    assert filename(42, "xlsx") == "balsong-job-42-recipients.xlsx"
    # When another format is asked for, Then the error names the field and the choices
    with pytest.raises(ValidationError) as caught:
        check_format("xls")
    assert caught.value.field == "format"
    assert "csv, xlsx" in caught.value.reason


def test_an_xlsx_export_takes_a_sheet_per_excel_sheet_of_rows() -> None:
    # Given Excel's limit (a header and 1,048,575 rows per sheet), Then a sheet is added past it
    assert sheet_names(0) == ["발송 결과"]
    assert sheet_names(SHEET_ROWS - 1) == ["발송 결과"]
    assert sheet_names(SHEET_ROWS) == ["발송 결과", "발송 결과 (2)"]
    # And with smaller sheets, as many as the rows need
    assert sheet_names(6, sheet_rows=3) == ["발송 결과", "발송 결과 (2)", "발송 결과 (3)"]
    assert sheet_names(7, sheet_rows=3)[-1] == "발송 결과 (4)"


def test_xlsx_keeps_the_spaces_of_free_text_cells_only() -> None:
    # Given a job
    job = ExportJob(id=1, kind="manual", created_at=datetime(2026, 12, 6, tzinfo=UTC), total=3)

    # Then the cells of free text (member id, reason code and text, the pre-fallback reason, the
    # caller's reference) are the ones whose spaces are kept; so is the phone number when unmasked
    # (a refused number shows as it was sent)
    free = {HEADER[i] for i in free_text_columns(job, unmasked=False)}
    assert free == {"회원 ID", "사유 코드", "사유", "대체발송 전 사유 코드", "고객 참조"}
    assert {HEADER[i] for i in free_text_columns(job, unmasked=True)} == free | {"수신번호"}
