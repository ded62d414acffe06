"""The console's statistics page (통계), in headless Chromium against the running API: the chart,
table, reasons and CSV show what GET /v1/stats counts, in Korean, at 390 px as on a desktop; a
key without the read scope sees none of it."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from engine.clock import KST
from tests.security.support import signed_in
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.stack import Stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def new_page(browser: Browser, width: int = 1280) -> Page:
    context = browser.new_context(
        accept_downloads=True,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        viewport={"width": width, "height": 900},
    )
    return context.new_page()


def api_key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def sign_in(page: Page, stack: Stack, key: str) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")


@pytest.fixture(scope="module")
def shop(stack: Stack) -> httpx.Client:
    """A tenant with a finished SMS job today: 4 numbers, one of them refused at intake."""
    client = stack.new_tenant(f"console-stats-{uuid.uuid4().hex[:8]}")
    job_id = submit_sms(client, "통계 화면", ["010-7600-0001", "010-7600-0002", "010-7600-0003", "010-12"])
    wait_finished(stack, client, job_id)
    return client


def test_the_statistics_page_shows_the_last_week_as_a_chart_a_table_and_reasons(
    stack: Stack, browser: Browser, shop: httpx.Client
) -> None:
    page = new_page(browser)
    try:
        # Given an operator signed in; When they open 통계 from the navigation
        sign_in(page, stack, api_key_of(shop))
        page.click("header nav >> text=통계")
        expect(page.locator("h1")).to_have_text("통계")

        # Then the filters default to the last 7 KST days by day, every channel
        today = datetime.now(KST).date()
        expect(page.locator("#stats-from")).to_have_value((today - timedelta(days=6)).isoformat())
        expect(page.locator("#stats-to")).to_have_value(today.isoformat())
        expect(page.locator("#stats-granularity")).to_have_value("day")
        # And each input has its label
        for input_id in ("stats-from", "stats-to", "stats-granularity", "stats-channel"):
            assert page.locator(f"label[for={input_id}]").count() == 1

        # And the totals, the table row of today and the API agree
        api = shop.get("/v1/stats").json()
        assert api["totals"]["sent"] == 3 and api["totals"]["rejected"] == 1
        expect(page.locator("[data-total=sent]")).to_have_text("3")
        expect(page.locator("[data-total=rejected]")).to_have_text("1")
        expect(page.locator("[data-total=success_rate]")).to_have_text("100.0%")
        expect(page.locator("#stats-table tbody tr")).to_have_count(7)
        row = page.locator(f"#stats-table tbody tr[data-bucket='{today.isoformat()}']")
        expect(row.locator("td").nth(0)).to_have_text("3")
        expect(row.locator("td").nth(5)).to_have_text("1")
        charged = api["totals"]["charged"].removesuffix(".00")
        expect(row.locator("td").nth(7)).to_have_text(f"{int(charged):,}P")
        expect(page.locator("#stats-table thead th[scope=col]")).to_have_count(9)
        expect(page.locator("#stats-table tbody th[scope=row]")).to_have_count(7)

        # And the chart is an image with a title and a description a screen reader reads
        svg = page.locator("#stats-chart svg")
        expect(svg).to_have_attribute("role", "img")
        expect(svg.locator("title#chart-title")).to_have_text("일별 발송 추이")
        expect(svg.locator("desc#chart-desc")).to_contain_text("발송 3건, 성공 3건, 실패 0건")
        expect(svg.locator("g.bar")).to_have_count(7)
        expect(svg.locator("rect.seg-delivered")).to_have_count(1)

        # And the failure reasons list the short number in Korean
        reason = page.locator("#stats-reasons tr[data-reason=too_short]")
        expect(reason).to_contain_text("전화번호 자릿수 부족")
        expect(reason.locator("td.num").first).to_have_text("1")

        # When the CSV is downloaded
        with page.expect_download() as download:
            page.click("#stats-csv")
        raw = Path(download.value.path()).read_bytes()

        # Then it is the table: a BOM, the Korean header, 7 days and the totals
        assert raw.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert lines[0][:4] == ["구간 시작(KST)", "발송", "성공", "실패"]
        assert len(lines) == 1 + 7 + 1
        by_day = {line[0]: line for line in lines[1:]}
        assert by_day[today.isoformat()][1:4] == ["3", "3", "0"] and by_day[today.isoformat()][8] == "1"
        assert by_day["합계"][1] == "3" and by_day["합계"][10] == api["totals"]["charged"]
        assert download.value.suggested_filename.endswith("-day.csv")
    finally:
        page.context.close()


def test_hours_and_a_channel_narrow_the_page_and_bad_values_say_which(
    stack: Stack, browser: Browser, shop: httpx.Client
) -> None:
    page = new_page(browser)
    try:
        sign_in(page, stack, api_key_of(shop))
        page.goto(f"{stack.settings.api_url}/console/stats")
        today = datetime.now(KST).date().isoformat()

        # When the operator asks for today by hour, LMS only
        page.fill("#stats-from", today)
        page.fill("#stats-to", today)
        page.select_option("#stats-granularity", "hour")
        page.select_option("#stats-channel", "lms")
        page.click("#stats-filters button[type=submit]")

        # Then the table has today's 24 hours, and the SMS job is not in it
        expect(page.locator("#stats-table tbody tr")).to_have_count(24)
        expect(page.locator("#stats-chart svg title#chart-title")).to_have_text("시간별 발송 추이")
        expect(page.locator("[data-total=sent]")).to_have_text("0")
        expect(page.locator("#stats-reasons")).to_contain_text("실패한 메시지가 없습니다")
        # And every channel again: the messages are in the hour they went
        page.select_option("#stats-channel", "")
        page.click("#stats-filters button[type=submit]")
        expect(page.locator("[data-total=sent]")).to_have_text("3")
        hours = shop.get("/v1/stats", params={"from": today, "to": today, "granularity": "hour"}).json()
        for bucket in hours["buckets"]:
            label = datetime.fromisoformat(bucket["start"]).strftime("%Y-%m-%d %H시")
            sent = page.locator(f"#stats-table tbody tr[data-bucket='{label}'] td").first
            expect(sent).to_have_text(str(bucket["sent"]))

        # When the range is longer than hours allow, Then the page says which field, with 422
        response = page.goto(
            f"{stack.settings.api_url}/console/stats?from=2026-01-01&to=2026-03-01&granularity=hour"
        )
        assert response is not None and response.status == 422
        expect(page.locator(".error")).to_contain_text("to")
        expect(page.locator(".error")).to_contain_text("31")
    finally:
        page.context.close()


def test_the_page_fits_a_phone(stack: Stack, browser: Browser, shop: httpx.Client) -> None:
    # Given a 390 px wide screen
    page = new_page(browser, width=390)
    try:
        sign_in(page, stack, api_key_of(shop))
        page.goto(f"{stack.settings.api_url}/console/stats")

        # Then the page does not scroll sideways: wide tables scroll in their own box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        # And the chart shrinks to the screen, still visible
        box = page.locator("#stats-chart svg").bounding_box()
        assert box is not None and 0 < box["width"] <= 390 and box["height"] > 50
        expect(page.locator("#stats-csv")).to_be_visible()
    finally:
        page.context.close()


def test_a_key_without_read_sees_no_statistics(stack: Stack) -> None:
    # Given a key with the send scope only
    client = stack.new_tenant(f"console-stats-send-{uuid.uuid4().hex[:8]}", scopes=("send",))

    # When it opens the page and the CSV, Then both are 403 and show no number
    with signed_in(stack, api_key_of(client)) as console:
        for path in ("/console/stats", "/console/stats/export"):
            response = console.get(path)
            assert response.status_code == 403, (path, response.text[:200])
            assert "조회(read)" in response.text
            assert "stats-table" not in response.text
