"""The operator console, driven in headless Chromium against the real running API.

Given jobs sent through the real processes, when an operator signs in with an API key and uses
the console's pages, then they see their own jobs and recipients with Korean labels, filter,
download results and resend failures — and never another tenant's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.receiver import running_receiver
from tests.support.stack import SENDER, Stack, submit_sms
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


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


def api_key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def sign_in(page: Page, stack: Stack, key: str) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")


def test_a_wrong_key_is_refused_and_a_right_one_shows_the_history(stack: Stack, page: Page) -> None:
    # Given a tenant with a finished job
    client = stack.new_tenant("console-signin")
    job_id = submit_sms(client, "콘솔 안내", ["010-8100-0001", "010-8100-0002"])
    wait_finished(stack, client, job_id)

    # When an operator signs in with a wrong key, then the console says so
    page.goto(f"{stack.settings.api_url}/console/jobs")
    expect(page).to_have_url(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", "bsk_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("API 키가 올바르지 않거나")

    # When they sign in with the tenant's key, then the history shows the job with its counts
    sign_in(page, stack, api_key_of(client))
    row = page.locator(f"tr[data-job-id='{job_id}']")
    expect(row).to_contain_text("완료")
    expect(row.locator("td.num").first).to_have_text("2")


def test_history_filters_and_the_job_page_narrow_the_recipients(stack: Stack, page: Page) -> None:
    # Given two finished jobs of one tenant, one with an invalid number
    client = stack.new_tenant("console-filters")
    clean = submit_sms(client, "정상 발송", ["010-8200-0001"])
    mixed = submit_sms(client, "일부 실패", ["010-8200-1111", "010-8200-2222", "010-12"])
    wait_finished(stack, client, clean)
    wait_finished(stack, client, mixed)
    sign_in(page, stack, api_key_of(client))

    # When the history is filtered by status "일부 실패", then only the mixed job is listed
    page.select_option("#job-filters select[name=status]", "partially_failed")
    page.click("#job-filters button[type=submit]")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    page.click(f"text=#{mixed}")

    # Then the job page shows its counts and failures by reason in Korean
    expect(page.locator("h1")).to_contain_text(f"작업 #{mixed}")
    expect(page.locator("[data-count=total]")).to_have_text("3")
    expect(page.locator("[data-count=delivered]")).to_have_text("2")
    expect(page.locator("#failures")).to_contain_text("too_short")

    # When the recipients are filtered by the last four digits of a number
    page.fill("#recipient-filters input[name=phone]", "2222")
    page.click("#recipient-filters button[type=submit]")
    rows = page.locator("#recipient-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("010-****-2222")
    expect(rows.first).to_contain_text("성공")

    # and by status 실패, then only the invalid number is left
    page.fill("#recipient-filters input[name=phone]", "")
    page.select_option("#recipient-filters select[name=status]", "failed")
    page.click("#recipient-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("실패")


def test_another_tenants_job_is_not_found_in_the_console(stack: Stack, page: Page) -> None:
    # Given a job of tenant A and an operator of tenant B
    owner = stack.new_tenant("console-owner")
    job_id = submit_sms(owner, "남의 작업", ["010-8300-0001"])
    intruder = stack.new_tenant("console-intruder")
    sign_in(page, stack, api_key_of(intruder))

    # When B opens A's job page or its progress, then neither is found
    response = page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("찾을 수 없습니다")
    progress = page.request.get(f"{stack.settings.api_url}/console/jobs/{job_id}/progress")
    assert progress.status == 404
    # and A's job is not in B's history
    page.goto(f"{stack.settings.api_url}/console/jobs")
    expect(page.locator(f"tr[data-job-id='{job_id}']")).to_have_count(0)


def test_a_form_without_the_sessions_csrf_token_is_refused(stack: Stack, page: Page) -> None:
    # Given a signed-in operator
    client = stack.new_tenant("console-csrf")
    sign_in(page, stack, api_key_of(client))

    # When a form is posted without the session's CSRF token (as a forged page would)
    response = page.request.post(f"{stack.settings.api_url}/console/logout", form={"csrf_token": "forged"})

    # Then it is refused and the session still works
    assert response.status == 403
    page.goto(f"{stack.settings.api_url}/console/jobs")
    expect(page.locator("h1")).to_have_text("발송 내역")


def test_results_download_as_masked_csv_and_xlsx_and_the_statement_opens(stack: Stack, page: Page) -> None:
    # Given a finished job and its signed-in operator
    client = stack.new_tenant("console-downloads")
    job_id = submit_sms(client, "다운로드", ["010-8500-1234", "010-8500-5678"])
    wait_finished(stack, client, job_id)
    sign_in(page, stack, api_key_of(client))
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

    # When the CSV is downloaded, then it is the job's results with masked numbers, for Excel
    with page.expect_download() as csv_download:
        page.click("#download-csv")
    content = Path(csv_download.value.path()).read_bytes()
    assert content.startswith("\ufeff".encode())
    text = content.decode("utf-8-sig")
    assert "010-****-1234" in text and "010-****-5678" in text
    assert "01085001234" not in text

    # When the XLSX is downloaded, then it is a spreadsheet
    with page.expect_download() as xlsx_download:
        page.click("#download-xlsx")
    assert Path(xlsx_download.value.path()).read_bytes()[:2] == b"PK"

    # When the statement is opened, then it is the job's printable statement
    with page.context.expect_page() as statement_page:
        page.click("#statement")
    statement = statement_page.value
    statement.wait_for_load_state()
    expect(statement.locator("body")).to_contain_text("발송내역서")


def test_failures_are_resent_from_the_console_as_a_linked_job(stack: Stack, page: Page) -> None:
    # Given a finished job whose carrier refused some recipients
    client = stack.new_tenant("console-resend")
    stack.simulator.configure(failure_mix={"3015": 0.5}, seed=3)
    try:
        job_id = submit_sms(client, "재발송", [f"010-8600-{i:04d}" for i in range(10)])
        job = wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    failed = job["counts"]["failed"]
    assert failed > 0
    sign_in(page, stack, api_key_of(client))
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

    # When the operator presses 실패 재발송
    page.click("#resend")

    # Then a new job, linked to the original, holds exactly the failed recipients
    expect(page.locator(".notice")).to_contain_text("재발송")
    expect(page.locator("h1")).not_to_contain_text(f"#{job_id} ")
    new_id = int(page.url.split("/console/jobs/")[1].split("?")[0])
    resent = wait_finished(stack, client, new_id)
    assert resent["counts"]["total"] == failed
    assert client.get(f"/v1/jobs/{new_id}").json()["resent_from"] == job_id
    page.goto(f"{stack.settings.api_url}/console/jobs/{new_id}")
    expect(page.locator(".summary")).to_contain_text(f"#{job_id}")


def test_a_reservation_is_cancelled_whole_from_the_console(stack: Stack, page: Page) -> None:
    # Given a reservation for tomorrow
    client = stack.new_tenant("console-cancel")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "예약",
            "scheduled_at": tomorrow,
            "recipients": [{"phone": "010-8700-0001"}],
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    sign_in(page, stack, api_key_of(client))
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("예약")

    # When the operator cancels it (and confirms)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")

    # Then it is cancelled whole, and nothing reached the carrier
    expect(page.locator("#job-status")).to_have_text("취소")
    assert stack.submissions(job_id) == {}


def test_the_job_page_shows_its_callbacks_and_replays_them(stack: Stack, page: Page) -> None:
    # Given a finished job whose callback endpoint answered 410 Gone
    client = stack.new_tenant("console-callbacks")
    with running_receiver(answer=410) as receiver:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "sms",
                "sender": SENDER,
                "body": "콜백 안내",
                "callback_url": receiver.url,
                "recipients": [{"phone": "010-8800-0001"}, {"phone": "010-8800-0002"}],
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        wait_finished(stack, client, job_id)
        sign_in(page, stack, api_key_of(client))

        # When the operator opens its page once the events have failed
        def failed_all() -> bool:
            state = client.get(f"/v1/jobs/{job_id}/callbacks").json()
            return bool(state["events"]["pending"] == 0 and state["events"]["failed"])

        wait_until(failed_all)
        page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

        # Then it says where they go, that they failed, and why
        expect(page.locator("#callback-url")).to_have_text(receiver.url)
        expect(page.locator("#callbacks-delivered")).to_have_text("0")
        expect(page.locator("#callbacks-disabled")).to_contain_text("410")

        # When the receiver is back and the operator replays the job's callbacks (and confirms)
        receiver.answer = 200
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#replay-callbacks")

        # Then the page says so, and every event arrives
        expect(page.locator(".notice").first).to_contain_text("다시 보냅니다")
        receiver.wait_for(lambda events: any(e["type"] == "job.finished" for e in events))
