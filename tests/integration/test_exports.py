"""Exports through the real API: content, masking, scopes, tenants, CSV and XLSX."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from typing import Any

import httpx
import openpyxl
import psycopg
import pytest

from engine.accounts.tenants import create_api_key, create_tenant, tenant_id_by_name
from engine.config import Settings
from engine.reporting.export_xlsx import xlsx_chunks
from engine.reporting.exports import HEADER, ExportJob, find_job
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.results import (
    COMPLETED_KST,
    FORMULA_MEMBER,
    RECIPIENTS,
    SUBMITTED_KST,
    TRICKY_MEMBER,
    seed_job,
)
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration


def tenant_with_job(
    stack: Stack, name: str, scopes: tuple[str, ...] = ("send", "read")
) -> tuple[httpx.Client, int]:
    """A tenant whose API client has ``scopes``, and its seeded finished job."""
    client = stack.new_tenant(name, scopes)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, tenant_id_by_name(conn, name))
    return client, job_id


def csv_rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def by_member(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """Data rows keyed by member id as exported (formula guard included)."""
    return {row[4]: dict(zip(HEADER, row, strict=True)) for row in rows[1:]}


def test_csv_has_one_row_per_recipient_with_its_final_outcome(stack: Stack) -> None:
    # Given a finished Kakao job with deliveries, failures, fallbacks and intake refusals
    client, job_id = tenant_with_job(stack, "export-content")

    # When its CSV is downloaded
    response = client.get(f"/v1/jobs/{job_id}/export", params={"format": "csv"})

    # Then it is an attachment named after the job, UTF-8 with BOM, with the Korean header
    assert response.headers["content-type"].startswith("text/csv")
    assert f"balsong-job-{job_id}-recipients.csv" in response.headers["content-disposition"]
    rows = csv_rows(response)
    assert rows[0] == list(HEADER)
    # And one row per recipient (fallback messages are folded into their recipient's row)
    assert len(rows) == 1 + 6
    assert {row[0] for row in rows[1:]} == {str(job_id)}
    assert {row[1] for row in rows[1:]} == {"자동"}
    got = by_member(rows)
    delivered = got["M0"]
    assert (delivered["발송 채널"], delivered["수신번호"], delivered["상태"]) == (
        "알림톡",
        "010-****-5678",
        "성공",
    )
    assert (delivered["접수 시각"], delivered["완료 시각"]) == (SUBMITTED_KST, COMPLETED_KST)
    assert (delivered["사유 코드"], delivered["대체발송"]) == ("", "")
    # And formula-like member ids are neutralised with a leading quote, the rest kept whole
    failed = got["'" + FORMULA_MEMBER]
    assert (failed["상태"], failed["사유 코드"], failed["사유"]) == (
        "실패",
        "carrier_3019",
        "카카오톡 사용자가 아님",
    )
    # And a Kakao failure delivered by SMS shows SMS, success, and why it fell back
    fell_back = got["'+82-10"]
    assert (fell_back["발송 채널"], fell_back["수신번호"], fell_back["상태"]) == (
        "SMS",
        "02-****-5678",
        "성공",
    )
    assert (fell_back["대체발송"], fell_back["대체발송 전 사유 코드"], fell_back["사유 코드"]) == (
        "Y",
        "carrier_3019",
        "",
    )
    # And one that failed on LMS too shows the LMS failure; commas, quotes and newlines survive
    both_failed = got[TRICKY_MEMBER]
    assert (both_failed["발송 채널"], both_failed["상태"], both_failed["사유"]) == (
        "LMS",
        "실패",
        "수신 거부",
    )
    assert both_failed["수신번호"] == "0504-****-5678"
    # And intake refusals have no channel; a non-number shows as ****, a valid number masked
    assert (got["'@SUM(A1)"]["발송 채널"], got["'@SUM(A1)"]["수신번호"]) == ("", "****")
    assert (got["'-5"]["수신번호"], got["'-5"]["사유 코드"]) == ("010-****-5432", "missing_variable")


def test_whole_numbers_need_the_scope_and_the_flag(stack: Stack) -> None:
    # Given a tenant's read-only key and its key with the export:unmasked scope
    reader, job_id = tenant_with_job(stack, "export-scopes")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        tenant_id = tenant_id_by_name(conn, "export-scopes")
        key = create_api_key(conn, tenant_id, ("read", "export:unmasked"))
    privileged = httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {key}"})
    stack.clients.append(privileged)

    # When the read-only key asks for whole numbers, Then it is refused, naming the scope
    refused = reader.get(f"/v1/jobs/{job_id}/export", params={"unmasked": "true"})
    assert refused.status_code == 403
    assert "export:unmasked" in problem(refused)["detail"]

    # When the privileged key does not ask, Then numbers are still masked
    default = by_member(csv_rows(privileged.get(f"/v1/jobs/{job_id}/export")))
    assert default["M0"]["수신번호"] == "010-****-5678"

    # When it asks, Then numbers are whole (dashed, so spreadsheets keep the leading 0), and a
    # refused non-number shows as it was sent
    whole = by_member(csv_rows(privileged.get(f"/v1/jobs/{job_id}/export", params={"unmasked": "true"})))
    assert whole["M0"]["수신번호"] == "010-1234-5678"
    assert whole["'+82-10"]["수신번호"] == "02-1234-5678"
    assert whole[TRICKY_MEMBER]["수신번호"] == "0504-1234-5678"
    assert whole["'@SUM(A1)"]["수신번호"] == "not-a-phone"


def test_another_tenants_job_is_not_found_and_bad_formats_are_named(stack: Stack) -> None:
    # Given a job of one tenant and a second tenant
    _, job_id = tenant_with_job(stack, "export-owner")
    stranger = stack.new_tenant("export-stranger")

    # When the second tenant asks for it in either format, Then it does not exist for them
    for fmt in ("csv", "xlsx"):
        response = stranger.get(f"/v1/jobs/{job_id}/export", params={"format": fmt})
        assert response.status_code == 404, response.text

    # When an unknown format is asked for, Then the error names the field and the choices
    response = stranger.get(f"/v1/jobs/{job_id}/export", params={"format": "pdf"})
    assert response.status_code == 422
    assert problem(response)["field"] == "format"
    assert "csv, xlsx" in problem(response)["detail"]


def test_xlsx_holds_the_same_rows_as_typed_text(stack: Stack) -> None:
    # Given a finished job
    client, job_id = tenant_with_job(stack, "export-xlsx")

    # When it is downloaded as XLSX
    response = client.get(f"/v1/jobs/{job_id}/export", params={"format": "xlsx"})

    # Then Excel's format is sent, and the workbook has the header and one row per recipient
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert f"balsong-job-{job_id}-recipients.xlsx" in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True).active
    assert sheet is not None
    rows: list[tuple[Any, ...]] = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADER
    assert len(rows) == 7
    got = {row[4]: dict(zip(HEADER, row, strict=True)) for row in rows[1:]}
    assert got["M0"]["작업 ID"] == job_id
    assert got["M0"]["수신번호"] == "010-****-5678"
    assert got["+82-10"]["발송 채널"] == "SMS"
    assert got[TRICKY_MEMBER]["상태"] == "실패"
    # And a formula-like value is plain text in the cell (no quote prefix needed, none run)
    assert got[FORMULA_MEMBER]["사유 코드"] == "carrier_3019"
    cells = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows())  # type: ignore[union-attr]
    formula_cell = next(row[4] for row in cells if row[4].value == FORMULA_MEMBER)
    assert formula_cell.data_type == "s"
    # And the header is bold, stays in view when scrolling and has filter buttons over the rows
    assert all(cell.font.b for cell in cells[0])
    assert formula_cell.parent.freeze_panes == "A2"
    assert formula_cell.parent.auto_filter.ref == "A1:M7"


def test_a_job_sent_through_the_pipeline_exports_its_deliveries(stack: Stack) -> None:
    # Given an SMS job sent end to end through the worker and the carrier simulator
    client = stack.new_tenant("export-e2e")
    phones = ["010-5555-0001", "010-5555-0002", "010-5555-0003"]
    job_id = submit_sms(client, "내보내기 확인", phones)
    wait_finished(stack, client, job_id)

    # When its CSV is downloaded
    rows = csv_rows(client.get(f"/v1/jobs/{job_id}/export"))

    # Then every recipient is there, delivered by SMS, in send order, with both times
    assert [row[3] for row in rows[1:]] == ["010-****-0001", "010-****-0002", "010-****-0003"]
    assert {(row[1], row[2], row[5]) for row in rows[1:]} == {("수동", "SMS", "성공")}
    assert all(row[8] and row[9] for row in rows[1:])


def xlsx_workbook(conn: psycopg.Connection, job: ExportJob, **options: Any) -> openpyxl.Workbook:
    """The job's XLSX export, as the API streams it, opened (after checking every part's CRC)."""
    data = b"".join(xlsx_chunks(conn, job, unmasked=False, **options))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
    return openpyxl.load_workbook(io.BytesIO(data))


def test_xlsx_rows_past_a_sheets_limit_go_on_to_the_next_sheet(settings: Settings) -> None:
    # Given a job of 6 recipients and sheets that hold a header and 2 rows (Excel's limit, scaled down)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "export-sheets")
        job = find_job(conn, tenant_id, seed_job(conn, tenant_id))

        # When the workbook is exported
        workbook = xlsx_workbook(conn, job, sheet_rows=3)

    # Then every recipient is in it, in send order, over three sheets, each with the header, frozen
    # and with filter buttons over that sheet's rows
    assert workbook.sheetnames == ["발송 결과", "발송 결과 (2)", "발송 결과 (3)"]
    members = []
    for sheet in workbook.worksheets:
        lines = list(sheet.iter_rows(values_only=True))
        assert lines[0] == HEADER and len(lines) == 3
        assert (sheet.freeze_panes, sheet.auto_filter.ref) == ("A2", "A1:M3")
        members += [line[4] for line in lines[1:]]
    assert members == [recipient.member_id for recipient in RECIPIENTS]
    # And only the first sheet is selected (several selected sheets would all take every edit)
    assert [sheet.sheet_view.tabSelected for sheet in workbook.worksheets] == [True, None, None]


def test_an_empty_jobs_xlsx_still_has_its_header(settings: Settings) -> None:
    # Given a job with no recipients yet (a resend's job before its recipients are copied)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "export-empty")
        job = dataclasses.replace(find_job(conn, tenant_id, seed_job(conn, tenant_id)), total=0)

        # When its workbook is exported
        workbook = xlsx_workbook(conn, job)

    # Then it has one sheet holding the header and nothing else
    assert workbook.sheetnames == ["발송 결과"]
    assert list(workbook.worksheets[0].iter_rows(values_only=True)) == [HEADER]


# If the row stream were left open, giving the connection back would wait forever for the lock
# the COPY holds: the thread method ends such a hang (the signal method cannot, from inside it).
@pytest.mark.timeout(30, method="thread")
def test_an_abandoned_xlsx_download_leaves_no_query_running(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given an XLSX export whose first sheet has gone out, the rest of its rows still coming
        tenant_id = create_tenant(conn, "export-abandoned")
        job = find_job(conn, tenant_id, seed_job(conn, tenant_id))
        chunks = xlsx_chunks(conn, job, unmasked=False, sheet_rows=3)
        next(chunks), next(chunks)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE

        # When the client goes away (the web server closes the stream)
        chunks.close()

        # Then the export's query is over, and the connection is idle outside a transaction: fit
        # to go back to its pool
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT 1").fetchone() == (1,)
        with psycopg.connect(settings.database_url, autocommit=True) as observer:
            state = observer.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", (conn.info.backend_pid,)
            ).fetchone()
        assert state == ("idle",)
