"""Exports never hand a spreadsheet a formula, whatever separator it splits cells on.

Given recipients whose member ids a ``;``- or ``,``-separated spreadsheet would split into
a cell starting with ``=`` ``+`` ``-`` ``@`` (``a;=1+1``), when the job's results are exported as
CSV through the API, then every cell is quoted and every such cell start carries a ``'``; as XLSX,
the member ids are text cells exactly as sent, with no formula anywhere in the sheet.
"""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pytest

from engine.reporting.exports import CELL_SEPARATORS, FORMULA_TRIGGERS
from tests.security.support import unique
from tests.support.jobs import wait_finished
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

#: Member ids as sent, and as the CSV must show them.
MEMBER_IDS = {
    "a;=1+1": "a;'=1+1",
    "b,@SUM(A1)": "b,'@SUM(A1)",
    "=HYPERLINK(1)": "'=HYPERLINK(1)",
    "d;e;-2": "d;e;'-2",
    "plain;text": "plain;text",
}


def test_member_ids_that_split_into_formulas_are_guarded_in_csv_and_plain_text_in_xlsx(stack: Stack) -> None:
    # Given a finished job whose recipients have the member ids
    client = stack.new_tenant(unique("csv-guard"))
    recipients = [{"phone": f"010-9600-{i:04d}", "member_id": m} for i, m in enumerate(MEMBER_IDS)]
    response = client.post(
        "/v1/jobs", json={"channel": "sms", "sender": SENDER, "body": "내보내기", "recipients": recipients}
    )
    assert response.status_code == 202, response.text
    job_id = int(response.json()["job_id"])
    wait_finished(stack, client, job_id)

    # When the results are exported as CSV
    exported = client.get(f"/v1/jobs/{job_id}/export", params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    text = exported.content.decode("utf-8-sig")

    # Then each member id reads back guarded, as a quoted cell
    rows = list(csv.reader(io.StringIO(text, newline="")))
    member_ids = {row[4] for row in rows[1:]}
    assert member_ids == set(MEMBER_IDS.values())
    for shown in MEMBER_IDS.values():
        assert '"' + shown + '"' in text
    # And no cell a spreadsheet could cut out of any cell, at any separator, starts a formula
    for row in rows:
        for cell in row:
            for separator in CELL_SEPARATORS:
                assert not any(piece.startswith(FORMULA_TRIGGERS) for piece in cell.split(separator)), cell

    # When they are exported as XLSX
    workbook_bytes = client.get(f"/v1/jobs/{job_id}/export", params={"format": "xlsx"}).content
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes)).active
    assert sheet is not None

    # Then the member ids are text cells exactly as sent, and the sheet holds no formula
    cells = {row[4].value: row[4] for row in sheet.iter_rows(min_row=2)}
    assert set(cells) == set(MEMBER_IDS)
    assert all(cell.data_type == "s" for cell in cells.values())
    with zipfile.ZipFile(io.BytesIO(workbook_bytes)) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        assert sheets and not any(
            b"<f>" in archive.read(name) or b"<f " in archive.read(name) for name in sheets
        )
