"""The console's money, sender-number and opt-out pages, driven in headless Chromium against the
real running API, worker and carrier simulator.

Given a tenant whose job ran for real, when an operator uses 충전/차감 내역, 발신번호 and 수신거부,
then they read their balance, prices and ledger (filtered, paged, as CSV) and the monthly
statement; request a sender number and see it approved; and keep their opt-out list — with
numbers masked everywhere on the pages and in the files.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from engine.accounts.billing import set_price, top_up
from engine.accounts.tenants import set_sender_state, tenant_id_by_name
from engine.clock import KST
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import Stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Width of a small phone's screen, in CSS pixels: every page must fit it.
PHONE_WIDTH = 390
KST_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, locale="ko-KR", timezone_id="Asia/Seoul")
    try:
        yield context.new_page()
    finally:
        context.close()


def key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def sign_in(page: Page, stack: Stack, client: httpx.Client) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", key_of(client))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")


def open_page(page: Page, stack: Stack, path: str) -> None:
    response = page.goto(f"{stack.settings.api_url}{path}")
    assert response is not None and response.status == 200, path


def csv_rows(path: Path | str) -> list[list[str]]:
    content = Path(path).read_bytes()
    assert content.startswith("\ufeff".encode()), "no UTF-8 byte-order mark: Excel would garble Hangul"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def fits_a_phone(page: Page) -> bool:
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {PHONE_WIDTH}"))


def test_the_money_page_shows_the_balance_prices_ledger_csv_and_statements(stack: Stack, page: Page) -> None:
    # Given a tenant with 1,000 points, SMS at 9.90 points, and a finished job of 10 recipients
    # some of whom the carrier refused (so it was charged at intake and refunded at settlement)
    client = stack.new_tenant("money-page", balance=Decimal(1000))
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        set_price(conn, tenant_id_by_name(conn, "money-page"), "sms", Decimal("9.90"))
    stack.simulator.configure(failure_mix={"3015": 0.5}, seed=3)
    try:
        job_id = submit_sms(client, "요금 안내", [f"010-7300-{i:04d}" for i in range(10)])
        job = wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    failed = job["counts"]["failed"] + job["counts"]["expired"]
    assert failed > 0 and job["charges"]["settled"]
    balance = Decimal(client.get("/v1/balance").json()["balance"])
    assert balance == Decimal(1000) - Decimal("9.90") * (10 - failed)

    # When the operator opens 충전/차감 내역
    sign_in(page, stack, client)
    page.click("nav >> text=충전/차감 내역")
    expect(page.locator("h1")).to_have_text("충전/차감 내역")

    # Then the balance and the tenant's prices read as money, and no top-up form is offered
    expect(page.locator("#balance")).to_have_text(f"{balance:,.2f} P")
    expect(page.locator("#prices tr", has_text="SMS").first).to_contain_text("9.90 P")
    expect(page.locator("#top-up-help")).to_contain_text("플랫폼 운영")
    expect(page.locator("form[action*=top-up]")).to_have_count(0)

    # And the ledger lists the refund, the charge and the top-up, newest first, signed
    rows = page.locator("#ledger-table tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-kind") for i in range(3)] == ["refund", "charge", "top_up"]
    charge = page.locator(f"#ledger-table tr[data-kind=charge][data-job-id='{job_id}']")
    expect(charge).to_contain_text("-99.00 P")
    expect(charge).to_contain_text("차감")
    refund = page.locator(f"#ledger-table tr[data-kind=refund][data-job-id='{job_id}']")
    expect(refund).to_contain_text(f"+{Decimal('9.90') * failed:,.2f} P")
    expect(rows.first).to_contain_text(f"{balance:,.2f} P")

    # When it is filtered by kind 환불, then only the refund is left
    page.select_option("#ledger-kind", "refund")
    page.click("#ledger-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-kind", "refund")

    # When it is filtered to days before today (KST), then nothing is left
    today = datetime.now(KST).date()
    page.select_option("#ledger-kind", "")
    page.fill("#ledger-from", (today - timedelta(days=30)).isoformat())
    page.fill("#ledger-to", (today - timedelta(days=1)).isoformat())
    page.click("#ledger-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("조건에 맞는 내역이 없습니다")

    # When it is filtered to today and downloaded as CSV
    page.fill("#ledger-from", today.isoformat())
    page.fill("#ledger-to", today.isoformat())
    page.click("#ledger-filters button[type=submit]")
    expect(rows).to_have_count(3)
    with page.expect_download() as download:
        page.click("#ledger-csv")

    # Then the CSV holds the same rows, money as numbers with 2 decimals, times in KST
    table = csv_rows(download.value.path())
    assert table[0] == ["일시", "구분", "금액", "잔액", "작업 ID", "내용"]
    assert [row[1] for row in table[1:]] == ["환불", "차감", "충전"]
    assert table[2][2:5] == ["-99.00", str(Decimal(1000) - Decimal("99.00")), str(job_id)]
    assert table[3][2:4] == ["1000.00", "1000.00"]
    assert all(KST_TIME.fullmatch(row[0]) for row in table[1:])
    assert table[1][3] == f"{balance:.2f}"

    # When the statement of this month is opened from the month picker
    month = f"{today:%Y-%m}"
    expect(page.locator("#statement-month")).to_have_value(month)
    with page.context.expect_page() as opened:
        page.click("#statement-open")
    statement = opened.value
    statement.wait_for_load_state()

    # Then it is the month's printable statement, and its PDF link gives a PDF
    expect(statement.locator("body")).to_contain_text("발송내역서")
    expect(statement.locator("body")).to_contain_text(f"{today.year}년 {today.month}월")
    pdf_link = page.locator(f"a[data-month-pdf='{month}']").get_attribute("href")
    pdf = page.request.get(f"{stack.settings.api_url}{pdf_link}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # And the page fits a phone's screen
    assert fits_a_phone(page)


def test_a_requested_sender_is_pending_until_the_platform_approves_it(stack: Stack, page: Page) -> None:
    # Given an admin of a tenant whose sender 02-1234-5678 is approved
    client = stack.new_tenant("senders-page", scopes=("admin",))
    sign_in(page, stack, client)
    page.click("nav >> text=발신번호")
    expect(page.locator("tr[data-number='0212345678']")).to_contain_text("승인")

    # When they request a number that is no phone number, then the page says what is wrong
    page.fill("#sender-number", "12-34")
    page.click("#sender-submit")
    expect(page.locator(".error")).to_contain_text("발신번호를 확인하세요")

    # When they request 031-555-1234
    page.fill("#sender-number", "031-555-1234")
    page.click("#sender-submit")

    # Then it is listed as pending, with when it was requested, and the page says it cannot send yet
    row = page.locator("tr[data-number='0315551234']")
    expect(row).to_have_attribute("data-state", "pending")
    expect(row).to_contain_text("031-555-1234")
    expect(row).to_contain_text("승인 대기")
    expect(page.locator(".notice")).to_contain_text("승인되기 전까지는")
    expect(page.locator("#sender-help")).to_contain_text("통신서비스 이용증명원")
    assert client.get("/v1/senders").json()["senders"][-1] == {"number": "0315551234", "state": "pending"}

    # When the platform operator approves it (what `balsong sender approve` does)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        set_sender_state(conn, tenant_id_by_name(conn, "senders-page"), "031-555-1234", "approved")
    page.reload()

    # Then it shows approved, with the time of the change in KST
    expect(row).to_have_attribute("data-state", "approved")
    expect(row.locator("td").nth(0)).to_have_text("승인")
    assert KST_TIME.fullmatch(row.locator("td").nth(2).inner_text())
    assert fits_a_phone(page)


def test_opt_outs_are_added_searched_imported_exported_and_removed_masked(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    # Given an admin of a tenant with an empty opt-out list
    client = stack.new_tenant("opt-outs-page", scopes=("admin",))
    sign_in(page, stack, client)
    page.click("nav >> text=수신거부")
    expect(page.locator("#opt-out-total")).to_have_text("0")

    # When a number is added, then it is listed masked, never whole
    page.fill("#opt-out-new", "010-7100-1234")
    page.click("#opt-out-add-submit")
    expect(page.locator(".notice")).to_contain_text("추가했습니다")
    expect(page.locator("#opt-out-table tbody tr")).to_have_count(1)
    expect(page.locator("#opt-out-table tbody tr").first).to_contain_text("010-****-1234")
    assert "7100" not in page.content()

    # When it is added again, then the page says it was there already
    page.fill("#opt-out-new", "01071001234")
    page.click("#opt-out-add-submit")
    expect(page.locator(".notice")).to_contain_text("이미")

    # When a file of numbers is imported: a header, two new numbers, a known one, a bad line
    upload = tmp_path / "수신거부.csv"
    upload.write_text("수신번호\n010-7100-2001\n010-12\n010 7100 2002\n010-7100-1234\n", encoding="utf-8")
    page.set_input_files("#opt-out-file", str(upload))
    page.click("#opt-out-import-submit")

    # Then the page counts what happened and names the bad line by its number
    result = page.locator("#import-result")
    expect(result.locator("[data-count=read]")).to_have_text("4")
    expect(result.locator("[data-count=added]")).to_have_text("2")
    expect(result.locator("[data-count=already]")).to_have_text("1")
    expect(result.locator("[data-count=refused]")).to_have_text("1")
    expect(page.locator("#import-refusals tbody tr")).to_have_count(1)
    expect(page.locator("#import-refusals tbody tr").first.locator("td").first).to_have_text("3")
    expect(page.locator("#opt-out-total")).to_have_text("3")

    # When an XLSX file is imported whose number cell lost its leading 0
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for value in ("phone", "010-7100-3001", 1071003002):
        sheet.append([value])
    workbook = tmp_path / "opt-outs.xlsx"
    book.save(workbook)
    page.set_input_files("#opt-out-file", str(workbook))
    page.click("#opt-out-import-submit")

    # Then the good number is added and the number cell is refused on its row, with a reason
    expect(result.locator("[data-count=added]")).to_have_text("1")
    expect(result.locator("[data-count=refused]")).to_have_text("1")
    refused = page.locator("#import-refusals tbody tr").first
    expect(refused.locator("td").first).to_have_text("3")
    expect(refused).to_contain_text("0이 빠졌을")
    expect(page.locator("#opt-out-total")).to_have_text("4")

    # When it is searched by a whole number, then that number alone is found, masked
    page.fill("#opt-out-phone", "010-7100-2002")
    page.click("#opt-out-search button[type=submit]")
    rows = page.locator("#opt-out-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("010-****-2002")
    expect(rows.first).to_contain_text("CSV 파일")
    # and a number not on the list finds nothing
    page.fill("#opt-out-phone", "010-7100-9999")
    page.click("#opt-out-search button[type=submit]")
    expect(rows.first).to_contain_text("목록에 없습니다")

    # When the list is exported, then it is every number, masked, for Excel
    page.goto(f"{stack.settings.api_url}/console/opt-outs")
    with page.expect_download() as download:
        page.click("#opt-out-export")
    table = csv_rows(download.value.path())
    assert table[0] == ["수신거부 번호", "등록 경로", "등록 일시"]
    assert sorted(row[0] for row in table[1:]) == [
        "010-****-1234",
        "010-****-2001",
        "010-****-2002",
        "010-****-3001",
    ]
    assert all(KST_TIME.fullmatch(row[2]) for row in table[1:])
    assert "7100" not in Path(download.value.path()).read_text(encoding="utf-8-sig")

    # When one number is removed (and the removal confirmed)
    page.fill("#opt-out-phone", "01071001234")
    page.click("#opt-out-search button[type=submit]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#opt-out-table .remove-form button")

    # Then it is off the list, and the rest stay
    expect(page.locator(".notice")).to_contain_text("삭제했습니다")
    expect(page.locator("#opt-out-total")).to_have_text("3")
    page.fill("#opt-out-phone", "010-7100-1234")
    page.click("#opt-out-search button[type=submit]")
    expect(rows.first).to_contain_text("목록에 없습니다")
    page.goto(f"{stack.settings.api_url}/console/opt-outs")
    assert fits_a_phone(page)


def test_the_apis_ledger_filters_and_pages_as_the_console_does(stack: Stack) -> None:
    # Given a tenant with a top-up, a job's charge and 4 more top-ups
    client = stack.new_tenant("ledger-api", balance=Decimal(1000))
    job_id = submit_sms(client, "원장", ["010-7500-0001"])
    wait_finished(stack, client, job_id)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        tenant_id = tenant_id_by_name(conn, "ledger-api")
        for amount in range(1, 5):
            top_up(conn, tenant_id, Decimal(amount), memo=f"top-up {amount}")

    # When the API's ledger is read 2 rows a page, Then the pages hold every row once, newest first
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = client.get("/v1/ledger", params=params)
        assert page.status_code == 200, page.text
        seen += page.json()["entries"]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    ids = [entry["id"] for entry in seen]
    assert ids == sorted(set(ids), reverse=True)
    assert [e["kind"] for e in seen if e["kind"] != "refund"] == ["top_up"] * 4 + ["charge", "top_up"]

    # When it is filtered by kind and by KST day, Then the same rows the console shows are left
    charges = client.get("/v1/ledger", params={"kind": "charge"}).json()["entries"]
    assert [(e["kind"], e["job_id"], e["amount"]) for e in charges] == [("charge", job_id, "-9.00")]
    today = datetime.now(KST).date()
    before = {"created_to": (today - timedelta(days=1)).isoformat()}
    assert client.get("/v1/ledger", params=before).json()["entries"] == []

    # And a bad filter or another tenant's cursor is a 422 naming the field
    other = stack.new_tenant("ledger-api-other")
    for bad, field in (
        ({"kind": "gift"}, "kind"),
        ({"created_from": "2026-12-02", "created_to": "2026-12-01"}, "created_to"),
        ({"cursor": params["cursor"]}, "cursor"),
    ):
        refused = other.get("/v1/ledger", params=bad)
        assert refused.status_code == 422 and problem(refused)["field"] == field, refused.text
