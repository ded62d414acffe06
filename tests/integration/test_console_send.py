"""The console's send page (발송하기), driven in headless Chromium against the real running stack.

Given a signed-in operator, when they compose a message, bring recipients (pasted, .xlsx, .csv),
map the columns, check and confirm, then the job is made by the engine's own path (origin
``console``), reaches the carrier (the simulator) and the operator lands on its page; what the
engine refuses (a short balance, a key without ``send``) is refused on the page, with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from openpyxl import Workbook
from playwright.sync_api import Browser, Page, ViewportSize, expect

from api.console.send import router as send_router
from api.scopes import NEEDS, Action
from engine.clock import KST
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # A phone's width: every step must work at 390 px
    viewport: ViewportSize = {"width": 390, "height": 844}
    context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul", viewport=viewport)
    try:
        opened = context.new_page()
        opened.on("dialog", lambda dialog: dialog.accept())
        yield opened
    finally:
        context.close()


def key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def open_send_page(page: Page, stack: Stack, key: str) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")
    page.click("header nav >> text=발송하기")
    expect(page.locator("h1")).to_have_text("발송하기")


def to_check(page: Page) -> None:
    """From the compose form, through the columns step (as guessed), to the check page."""
    page.click("#next")
    expect(page.locator("h1")).to_have_text("수신자 열 지정")
    page.click("#check")
    expect(page.locator("h1")).to_have_text("발송 확인")


def confirm(page: Page) -> int:
    """Confirm the check page; the job's id, from the job page the operator lands on."""
    page.click("#confirm")
    expect(page.locator("h1")).to_contain_text("작업 #")
    expect(page.locator(".notice").first).to_contain_text("발송을 접수했습니다")
    return int(page.url.rsplit("/", 1)[1].split("?")[0])


def origin_of(stack: Stack, job_id: int) -> str:
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT origin FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return str(row[0])


def carried(stack: Stack, job_id: int) -> dict[str, int]:
    """Recipients of the job the carrier (simulator) accepted, by channel."""
    counts: dict[str, int] = {}
    for entry in stack.simulator.ledger():
        if entry["reference"].startswith(f"{job_id}-"):
            assert entry["submissions"] == 1
            counts[entry["channel"]] = counts.get(entry["channel"], 0) + 1
    return counts


def test_an_sms_job_pasted_and_confirmed_reaches_the_carrier_and_its_page(stack: Stack, page: Page) -> None:
    # Given an operator on the send page with an approved sender
    client = stack.new_tenant("send-paste")
    open_send_page(page, stack, key_of(client))

    # When they write a message with a variable and paste two recipients (one twice)
    page.fill("#body", "#{name}님, 주문이 접수되었습니다.")
    page.fill("#recipients_text", "010-8500-0001,홍길동\n010-8500-0002,김철수\n01085000001,홍길동")
    to_check(page)

    # Then the check counts them by the engine's rules and shows the first messages as they will read
    expect(page.locator("[data-count=valid]")).to_have_text("2")
    expect(page.locator("[data-count=sms]")).to_have_text("2")
    expect(page.locator("[data-count=duplicates]")).to_have_text("1")
    expect(page.locator("#previews li").first).to_contain_text("홍길동님, 주문이 접수되었습니다.")
    expect(page.locator("#total-cost")).to_have_text("18.00 P")

    # When they confirm, Then they land on the job's page, and the job reaches the carrier
    job_id = confirm(page)
    job = wait_finished(stack, client, job_id)
    assert job["counts"]["delivered"] == 2
    assert carried(stack, job_id) == {"sms": 2}
    assert origin_of(stack, job_id) == "console"


def test_the_counter_switches_to_lms_past_90_bytes_and_the_job_goes_as_lms(stack: Stack, page: Page) -> None:
    # Given an operator writing a message of exactly 90 bytes (45 Hangul syllables)
    client = stack.new_tenant("send-lms")
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "가" * 45)

    # Then the counter says 90 bytes, SMS
    expect(page.locator("#byte-count")).to_have_text("90")
    expect(page.locator("#byte-channel")).to_have_text("SMS")

    # When one more character is typed, Then it says LMS
    page.type("#body", "a")
    expect(page.locator("#byte-count")).to_have_text("91")
    expect(page.locator("#byte-channel")).to_have_text("LMS")

    # And the engine decides the same: the recipient goes by LMS
    page.fill("#recipients_text", "010-8510-0001")
    to_check(page)
    expect(page.locator("[data-count=lms]")).to_have_text("1")
    job_id = confirm(page)
    wait_finished(stack, client, job_id)
    assert carried(stack, job_id) == {"lms": 1}


def test_an_xlsx_upload_is_mapped_and_a_bad_number_and_a_duplicate_are_counted(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    # Given a workbook with a header, a number Excel ate the leading 0 of, and a repeated number
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["회원번호", "이름", "휴대폰", "메모"])
    sheet.append(["M1", "홍길동", "010-8520-0001", "x"])
    sheet.append(["M2", "김철수", 1085200002, "y"])
    sheet.append(["M3", "이영희", "010-8520-0003", "z"])
    sheet.append(["M4", "홍길동", "01085200001", "w"])
    upload = tmp_path / "고객목록.xlsx"
    workbook.save(upload)
    client = stack.new_tenant("send-xlsx")
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "#{name}님 안녕하세요")

    # When it is uploaded, Then the columns are guessed from the header
    page.set_input_files("#recipients_file", str(upload))
    page.click("#next")
    expect(page.locator("h1")).to_have_text("수신자 열 지정")
    expect(page.locator("#role0")).to_have_value("member_id")
    expect(page.locator("#role2")).to_have_value("phone")
    expect(page.locator("#name1")).to_have_value("name")
    # And the operator says the memo column is not used
    page.select_option("#role3", "skip")
    page.click("#check")

    # Then the bad number is listed by its row with its reason, the duplicate counted
    expect(page.locator("[data-count=rows]")).to_have_text("4")
    expect(page.locator("[data-count=valid]")).to_have_text("2")
    expect(page.locator("[data-count=bad]")).to_have_text("1")
    expect(page.locator("[data-count=duplicates]")).to_have_text("1")
    bad = page.locator("#bad-rows tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.first).to_contain_text("3")
    expect(bad.first).to_contain_text("1085200002")

    # When confirmed, Then the job holds the member ids of the file
    job_id = confirm(page)
    wait_finished(stack, client, job_id)
    recipients = client.get(f"/v1/jobs/{job_id}/recipients").json()["recipients"]
    assert {r["member_id"] for r in recipients if r["status"] == "delivered"} == {"M1", "M3"}


def test_a_cp949_csv_upload_is_sent(stack: Stack, page: Page, tmp_path: Path) -> None:
    # Given a CSV as Korean Excel saves it (CP949), with a header
    upload = tmp_path / "list.csv"
    upload.write_bytes("수신번호,이름\r\n010-8530-0001,박민수\r\n010-8530-0002,최지우\r\n".encode("cp949"))
    client = stack.new_tenant("send-csv")
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "#{name}님, 이벤트 안내입니다.")
    page.set_input_files("#recipients_file", str(upload))
    to_check(page)

    # Then both are valid and the preview shows the Korean names read right
    expect(page.locator("[data-count=valid]")).to_have_text("2")
    expect(page.locator("#previews")).to_contain_text("박민수님, 이벤트 안내입니다.")
    job_id = confirm(page)
    assert wait_finished(stack, client, job_id)["counts"]["delivered"] == 2


def test_a_short_balance_is_refused_with_the_amount(stack: Stack, page: Page) -> None:
    # Given a tenant with 10 points, and three SMS recipients at 9 points each
    client = stack.new_tenant("send-poor", balance=Decimal(10))
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "잔액 확인")
    page.fill("#recipients_text", "010-8540-0001\n010-8540-0002\n010-8540-0003")
    to_check(page)

    # Then the page says what is needed and what there is, and offers no confirm
    expect(page.locator(".error")).to_contain_text("잔액이 부족합니다: 필요 27.00 P, 잔액 10.00 P")
    expect(page.locator("#balance-after")).to_have_text("-17.00 P")
    expect(page.locator("#confirm")).to_have_count(0)

    # And a confirm posted anyway is refused by the engine, with the amount
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    draft = page.url.split("/console/send/")[1].split("/")[0]
    refused = page.request.post(
        f"{stack.settings.api_url}/console/send/{draft}/confirm", form={"csrf_token": token or ""}
    )
    assert refused.status == 422
    assert "필요 27.00 P, 잔액 10.00 P" in refused.text()
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_an_alimtalk_job_with_a_template_from_the_picker(stack: Stack, page: Page) -> None:
    # Given the provider's approved template ORDER_SHIPPED (#{name}, #{invoice})
    client = stack.new_tenant("send-kakao")
    open_send_page(page, stack, key_of(client))

    # When the operator picks AlimTalk and the template, Then its text shows
    page.check("input[name=mode][value=kakao]")
    expect(page.locator("#body")).to_be_hidden()
    page.select_option("#template_code", "ORDER_SHIPPED")
    expect(page.locator("#template-content")).to_contain_text("송장번호: #{invoice}")
    page.fill("#fallback_body", "#{name}님 상품이 발송되었습니다.")
    page.fill("#recipients_text", "010-8550-0001,홍길동,123-456")
    to_check(page)

    # Then the check fills the template for the recipient, and the job goes by AlimTalk
    expect(page.locator("[data-count=kakao]")).to_have_text("1")
    filled = "홍길동님, 주문하신 상품이 발송되었습니다. 송장번호: 123-456"
    expect(page.locator("#previews")).to_contain_text(filled)
    job_id = confirm(page)
    wait_finished(stack, client, job_id)
    assert carried(stack, job_id) == {"kakao": 1}


def test_a_key_without_send_cannot_use_the_send_page(stack: Stack, page: Page) -> None:
    # Given a viewer's key (read only)
    viewer = stack.new_tenant("send-viewer", scopes=("read",))
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#api_key", key_of(viewer))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("발송 내역")

    # When it opens the send page, Then it is refused, naming the missing permission
    response = page.goto(f"{stack.settings.api_url}/console/send")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("권한이 없습니다")
    expect(page.locator("#missing-scope")).to_have_attribute("data-scope", "send")

    # And a staging post is refused too, making nothing
    posted = page.request.post(
        f"{stack.settings.api_url}/console/send",
        multipart={"csrf_token": "x", "body": "x", "recipients_text": "010-8560-0001"},
    )
    assert posted.status == 403
    assert viewer.get("/v1/jobs").json()["jobs"] == []


def test_a_double_confirm_makes_one_job(stack: Stack, page: Page) -> None:
    # Given a checked draft
    client = stack.new_tenant("send-twice")
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "한 번만")
    page.fill("#recipients_text", "010-8570-0001")
    to_check(page)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    draft = page.url.split("/console/send/")[1].split("/")[0]

    # When its confirm is posted twice
    url = f"{stack.settings.api_url}/console/send/{draft}/confirm"
    first = page.request.post(url, form={"csrf_token": token}, max_redirects=0)
    second = page.request.post(url, form={"csrf_token": token}, max_redirects=0)

    # Then both lead to the same job, and there is one
    assert first.status == second.status == 303
    assert first.headers["location"].split("?")[0] == second.headers["location"].split("?")[0]
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1


def test_advertising_gets_its_marks_its_opt_outs_and_the_night_ban(stack: Stack, page: Page) -> None:
    # Given a tenant with an opted-out number, and an advertisement reserved for 22:00 KST tomorrow
    client = stack.new_tenant("send-ad")
    assert client.post("/v1/opt-outs", json={"phones": ["010-8580-0002"]}).status_code < 300
    tomorrow = (datetime.now(KST) + timedelta(days=1)).date().isoformat()
    open_send_page(page, stack, key_of(client))
    page.fill("#body", "겨울 세일 50%")
    page.check("#advertisement")
    page.fill("#opt_out_number", "080-123-4567")
    page.fill("#scheduled_date", tomorrow)
    page.fill("#scheduled_time", "22:00")
    page.fill("#recipients_text", "010-8580-0001\n010-8580-0002")
    page.click("#next")
    page.click("#check")

    # Then the engine's night ban refuses it, explained
    expect(page.locator("#refused")).to_contain_text("21:00~08:00")
    expect(page.locator("#refused")).to_contain_text("advertising may not be sent")

    # When the operator goes back and reserves it for 10:00 instead
    page.click("text=← 메시지 수정")
    expect(page.locator("#body")).to_have_value("겨울 세일 50%")
    page.fill("#scheduled_time", "10:00")
    page.click("#next")
    page.click("#check")

    # Then the message carries the label and the opt-out line, and the opted-out number is left out
    expect(page.locator("#final-body")).to_have_text("(광고)겨울 세일 50%\n무료수신거부 080-123-4567")
    expect(page.locator("[data-count=valid]")).to_have_text("1")
    expect(page.locator("[data-count=opted_out]")).to_have_text("1")
    expect(page.locator("#send-time")).to_contain_text(f"예약 {tomorrow} 10:00")
    job_id = confirm(page)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "scheduled"


def test_every_send_route_needs_the_send_scope() -> None:
    # Given the send page's routes, When their dependencies are read, Then each asks `api.scopes`
    # (through session_for) for Action.SEND, the scope POST /v1/jobs needs
    routes = [route for route in send_router.routes if isinstance(route, APIRoute)]
    assert len(routes) == 6
    for route in routes:
        names = {dependency.call.__name__ for dependency in route.dependant.dependencies if dependency.call}
        assert "scoped_session" in names, route.path
    assert NEEDS[Action.SEND] == "send"
