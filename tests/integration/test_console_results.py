"""The console's results pages as Korean SMS services show them, in headless Chromium against the
real running processes: failure reasons with what to do and a resend of just those, the one-year
retention with each job's deletion date, the history's send time, sender and cost, the job list
download, the recipient search, and every page on a 390 px phone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.console import labels
from engine.clock import KST
from engine.reporting.retention import deletion_at
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.receiver import running_receiver
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHONE_WIDTH = 390
#: The elements that reach past the screen's right edge, outermost first (for the failure message).
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > WIDTH && !e.parentElement.closest('.table-scroll, .scroll'))
  .slice(0, 8)
  .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)""".replace(
    "WIDTH", str(PHONE_WIDTH)
)
#: How many lines an element's text takes (distinct tops of its text's rectangles).
LINES_OF_TEXT = """element => {
  const range = document.createRange();
  range.selectNodeContents(element);
  return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def new_page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(
        accept_downloads=True,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        viewport={"width": width, "height": 844},
    )
    return context.new_page()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    try:
        yield opened
    finally:
        opened.context.close()


def sign_in(page: Page, stack: Stack, client: httpx.Client) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", str(client.headers["Authorization"]).removeprefix("Bearer "))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")


def kst_day(moment: datetime) -> str:
    return f"{moment.astimezone(KST):%Y-%m-%d}"


def test_failure_reasons_say_what_to_do_and_resend_just_those(stack: Stack, page: Page) -> None:
    # Given a finished job with a bad number, an unregistered-sender refusal and a network failure
    client = stack.new_tenant("results-advice")
    stack.simulator.configure(failure_mix={"3019": 0.3, "3015": 0.3}, seed=11)
    try:
        job_id = submit_sms(client, "사유 안내", [f"010-6500-{i:04d}" for i in range(20)] + ["010-12"])
        job = wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    by_reason = {f["reason_code"]: f["count"] for f in job["failures"]}
    assert by_reason.get("carrier_3019") and by_reason.get("carrier_3015") and by_reason.get("too_short")
    sign_in(page, stack, client)
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

    # Then each reason says in Korean what to do, with a link to where it is done
    bad_number = page.locator("#failures tr[data-reason='too_short']")
    expect(bad_number).to_contain_text("수신자 번호를 바로잡")
    expect(bad_number.locator("button")).to_have_count(0)  # resending a bad number cannot help
    sender = page.locator("#failures tr[data-reason='carrier_3019']")
    expect(sender).to_contain_text("발신번호")
    expect(sender.locator("a.fix")).to_have_attribute("href", "/console/senders")
    expect(sender.locator("td.num")).to_have_text(str(by_reason["carrier_3019"]))
    network = page.locator("#failures tr[data-reason='carrier_3015']")
    expect(network).to_contain_text("재발송")

    # When the operator resends just the network failures
    network.get_by_role("button").click()

    # Then a new job holds exactly those recipients
    expect(page.locator(".notice")).to_contain_text("재발송")
    new_id = int(page.url.split("/console/jobs/")[1].split("?")[0])
    assert new_id != job_id
    resent = wait_finished(stack, client, new_id)
    assert resent["counts"]["total"] == by_reason["carrier_3015"]
    assert resent["resent_from"] == job_id


def test_a_resend_refused_for_a_short_balance_links_to_the_money_page(stack: Stack, page: Page) -> None:
    # Given a tenant with 1,000 points, a job of two failures (refunded at settlement), and then a
    # delivered job that leaves less than two messages' worth
    client = stack.new_tenant("results-balance", balance=Decimal(1000))
    price = Decimal(client.get("/v1/balance").json()["prices"]["sms"])
    stack.simulator.configure(failure_mix={"3015": 1.0}, seed=1)
    try:
        job_id = submit_sms(client, "잔액", ["010-6600-0001", "010-6600-0002"])
        wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    spend = int(Decimal(1000) // price) - 1
    wait_finished(stack, client, submit_sms(client, "소진", [f"010-6601-{i:04d}" for i in range(spend)]))
    assert Decimal(client.get("/v1/balance").json()["balance"]) < 2 * price
    sign_in(page, stack, client)
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

    # When the operator resends the failures
    page.click("#resend")

    # Then the page says to top up first, and links to the money page
    expect(page.locator(".error")).to_contain_text("충전")
    expect(page.locator("#refusal-fix a")).to_have_attribute("href", "/console/money")


def test_the_history_shows_send_time_sender_cost_and_deletion_date(stack: Stack, page: Page) -> None:
    # Given a finished job and a reservation for tomorrow
    client = stack.new_tenant("results-history")
    sent_id = submit_sms(client, "보낸 작업", ["010-6700-0001", "010-6700-0002"])
    sent = wait_finished(stack, client, sent_id)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    reserved = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "예약 작업",
            "scheduled_at": tomorrow.isoformat(),
            "recipients": [{"phone": "010-6700-0003"}],
        },
    )
    assert reserved.status_code == 202, reserved.text
    reserved_id = reserved.json()["job_id"]
    reservation = client.get(f"/v1/jobs/{reserved_id}").json()
    never_sent = submit_sms(client, "잘못된 번호뿐", ["010-12"])
    assert wait_finished(stack, client, never_sent)["sent_at"] is None
    sign_in(page, stack, client)

    # Then the history's 발송 일시 is the send time, or the reservation's time marked 예약
    expect(page.locator("#jobs thead")).to_contain_text("발송 일시 (KST)")
    sent_row = page.locator(f"tr[data-job-id='{sent_id}']")
    expect(sent_row.locator(".sent-at")).to_have_text(labels.when(sent["sent_at"]))
    reserved_row = page.locator(f"tr[data-job-id='{reserved_id}']")
    expect(reserved_row.locator(".sent-at")).to_contain_text(labels.when(reservation["scheduled_at"]))
    expect(reserved_row.locator(".sent-at")).to_contain_text("예약")
    expect(page.locator(f"tr[data-job-id='{never_sent}'] .sent-at")).to_have_text("미발송")
    # with the sender, the points charged as Korean operators write money, and the deletion date
    expect(sent_row.locator(".sender")).to_have_text("02-1234-5678")
    expect(sent_row.locator(".charged")).to_have_text(labels.points(sent["charges"]["charged"]))
    assert sent_row.locator(".charged").inner_text().endswith(" P")
    deletion = deletion_at(datetime.fromisoformat(sent["created_at"]), stack.settings.retention_days)
    expect(sent_row.locator(".deletion-at")).to_have_text(kst_day(deletion))
    expect(page.locator("#retention-notice")).to_contain_text("1년간 보관")

    # And the job page says the same, with the notice to download in advance
    page.click(f"text=#{sent_id}")
    expect(page.locator("#deletion-at")).to_have_text(kst_day(deletion))
    expect(page.locator("#retention-notice")).to_contain_text("미리 내려받으세요")


def test_the_history_downloads_its_jobs_under_its_filters(stack: Stack, page: Page) -> None:
    # Given a completed job and a partly failed one
    client = stack.new_tenant("results-download")
    clean = submit_sms(client, "정상", ["010-6800-0001"])
    mixed = submit_sms(client, "일부 실패", ["010-6800-0002", "010-12"])
    for job_id in (clean, mixed):
        wait_finished(stack, client, job_id)
    sign_in(page, stack, client)

    # When the history is narrowed to 일부 실패 and its jobs downloaded
    page.select_option("#job-filters select[name=status]", "partially_failed")
    page.click("#job-filters button[type=submit]")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.click("#download-jobs")

    # Then the file is the filtered jobs as a CSV for Excel
    assert download.value.suggested_filename.startswith("balsong-jobs-")
    content = Path(download.value.path()).read_bytes()
    assert content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert [int(row["작업 ID"]) for row in rows] == [mixed]
    assert rows[0]["상태"] == "일부 실패" and rows[0]["접수 경로"] == "API"


def test_the_recipient_search_lists_a_numbers_messages_across_jobs(stack: Stack, page: Page) -> None:
    # Given a number sent to in two jobs
    client = stack.new_tenant("results-search-page")
    first = submit_sms(client, "첫 안내", ["010-6900-7777", "010-6900-0001"])
    second = submit_sms(client, "둘째 안내", ["010-6900-7777"])
    for job_id in (first, second):
        wait_finished(stack, client, job_id)
    sign_in(page, stack, client)

    # When the operator opens 수신번호 검색 from the history and searches for it
    page.click("#search-phone")
    expect(page.locator("h1")).to_have_text("수신번호 검색")
    expect(page.locator("main")).to_contain_text("최대 31일")
    page.fill("#recipient-search input[name=phone]", "010-6900-7777")
    page.click("#recipient-search button[type=submit]")

    # Then both jobs' rows are listed, newest first, the number masked
    rows = page.locator("#search-results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-job-id", str(second))
    expect(rows.nth(1)).to_have_attribute("data-job-id", str(first))
    expect(rows.nth(0)).to_contain_text("010-****-7777")
    expect(rows.nth(0)).to_contain_text("성공")
    assert "6900-7777" not in page.locator("#search-results").inner_text()

    # When the range is wider than 31 days, then the page says so
    page.fill("#recipient-search input[name=from]", "2026-01-01")
    page.fill("#recipient-search input[name=to]", "2026-03-01")
    page.click("#recipient-search button[type=submit]")
    expect(page.locator(".error")).to_contain_text("31")


def test_every_console_page_fits_a_390_px_phone(stack: Stack, browser: Browser) -> None:
    with ExitStack() as stack_receiver:
        check_every_page_at_phone_width(stack, browser, stack_receiver)


def check_every_page_at_phone_width(stack: Stack, browser: Browser, stack_receiver: ExitStack) -> None:
    # Given a job with failures, a long body and a callback URL, and a 390 px wide screen
    client = stack.new_tenant("results-phone", scopes=("send", "read", "admin"))
    stack.simulator.configure(failure_mix={"3019": 0.5}, seed=5)
    receiver = stack_receiver.enter_context(running_receiver())
    try:
        job_id = submit_sms(
            client,
            "아주 긴 안내 문구입니다 " * 6,
            [f"010-7100-{i:04d}" for i in range(6)] + ["010-12"],
            callback_url=receiver.url + "/balsong/callbacks/a-rather-long-path-that-does-not-break-anywhere",
            channel="lms",
            title="긴 제목의 장문 메시지",
        )
        wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    page = new_page(browser, width=PHONE_WIDTH)
    try:
        page.goto(f"{stack.settings.api_url}/console/login")
        assert page.evaluate(f"document.documentElement.scrollWidth <= {PHONE_WIDTH}")
        sign_in(page, stack, client)
        pages = [
            "/console/jobs",
            f"/console/jobs/{job_id}",
            f"/console/jobs/{job_id}?status=failed",
            "/console/send",
            "/console/money",
            "/console/senders",
            "/console/opt-outs",
            "/console/stats",
            "/console/recipients",
            "/console/recipients?phone=010-7100-0001",
            "/console/audit",
            "/console/no-such-page",
        ]
        for path in pages:
            # When each page is opened
            page.goto(f"{stack.settings.api_url}{path}")
            # Then it is no wider than the screen
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_WIDTH, (path, width, page.evaluate(TOO_WIDE))
            # and no navigation link breaks inside its words: each one's text sits on one line
            # (a range over a wrapped text has a rectangle per line; a flex item has one box)
            for link in page.locator("header.top nav a").all():
                lines = link.evaluate(LINES_OF_TEXT)
                assert lines == 1, (path, link.inner_text(), lines)
    finally:
        page.context.close()
