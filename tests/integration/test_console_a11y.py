"""The operator console is accessible: scanned by axe-core, used by keyboard, heard by screen readers.

Given a tenant with finished, failed and reserved jobs, opt-outs and statistics, when every console
page (``PAGES``: add a page there and it is scanned and photographed) is opened in headless Chromium
at a desktop's and a phone's width, then axe-core finds no WCAG 2.1 A/AA violation of impact
"serious" or "critical", every table header has a ``scope`` and the page says it is Korean. Each
page is photographed at both widths into ``BALSONG_SCREENSHOTS_DIR`` (default: ``screenshots/``
under pytest's base temporary directory). And an operator who uses only the keyboard can skip to
the content, see where the focus is, resend failures and cancel a reservation; the job page's
progress is a polite live region that its script updates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Route, ViewportSize, expect

from engine.clock import KST
from tests.support.axe import report, scan
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.stack import Stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The widths every page is scanned and photographed at.
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}

#: Who looks at a page: nobody signed in, an operator with every scope, or a read-only key.
Who = Literal["nobody", "operator", "reader"]


@dataclass(frozen=True)
class Site:
    """What the pages show: one tenant's jobs, opt-outs and statistics."""

    url: str
    #: A finished job with an intake failure (a too-short number) and delivered recipients.
    mixed_job: int
    #: A job reserved for tomorrow: cancellable, its page polls progress.
    reserved_job: int
    #: This month (KST), ``YYYY-MM``, for its statement.
    month: str


@dataclass(frozen=True)
class ConsolePage:
    """A console page: its name (the test id and screenshot name), who opens it and how."""

    name: str
    open: Callable[[Page, Site], None]
    who: Who = "operator"


def at(path: str, heading: str) -> Callable[[Page, Site], None]:
    """Open ``path`` (formatted with the site's fields) and wait for its ``<h1>``."""

    def open_(page: Page, site: Site) -> None:
        page.goto(site.url + path.format(**vars(site)))
        expect(page.locator("h1").first).to_contain_text(heading)

    return open_


def document(path: str, text: str) -> Callable[[Page, Site], None]:
    """Open a printable document (no console ``<h1>``) and wait for ``text`` in it."""

    def open_(page: Page, site: Site) -> None:
        page.goto(site.url + path.format(**vars(site)))
        expect(page.locator("body")).to_contain_text(text)

    return open_


def login_refused(page: Page, site: Site) -> None:
    at("/console/login", "로그인")(page, site)
    page.fill("#api_key", "bsk_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_be_visible()


def opt_outs_imported(page: Page, site: Site) -> None:
    at("/console/opt-outs", "수신거부")(page, site)
    csv = b"010-8950-0003\nnot a phone\n010-8950-0001\n"
    upload: FilePayload = {"name": "optouts.csv", "mimeType": "text/csv", "buffer": csv}
    page.set_input_files("#opt-out-file", files=[upload])
    page.click("#opt-out-import-submit")
    expect(page.locator("#import-result")).to_be_visible()


def send_compose(page: Page, site: Site) -> None:
    at("/console/send", "발송하기")(page, site)
    page.fill("#body", "#{name}님, 주문이 접수되었습니다.")
    page.fill("#recipients_text", "010-8950-0001,홍길동\n010-8950-0002,김철수\n010-12,잘못")


def send_kakao(page: Page, site: Site) -> None:
    at("/console/send", "발송하기")(page, site)
    page.check("input[name=mode][value=kakao]")


def send_columns(page: Page, site: Site) -> None:
    send_compose(page, site)
    page.click("#next")
    expect(page.locator("h1")).to_have_text("수신자 열 지정")


def send_check(page: Page, site: Site) -> None:
    send_columns(page, site)
    page.click("#check")
    expect(page.locator("h1")).to_have_text("발송 확인")


#: Every console page the scan covers, in every state the tests can reach. Add new pages here.
PAGES: tuple[ConsolePage, ...] = (
    ConsolePage("login", at("/console/login", "로그인"), who="nobody"),
    ConsolePage("login-refused", login_refused, who="nobody"),
    ConsolePage("history", at("/console/jobs", "발송 내역")),
    ConsolePage("history-filtered", at("/console/jobs?status=partially_failed", "발송 내역")),
    ConsolePage("job-finished", at("/console/jobs/{mixed_job}", "작업 #")),
    ConsolePage("job-filtered", at("/console/jobs/{mixed_job}?status=failed#recipients", "작업 #")),
    ConsolePage("job-reserved", at("/console/jobs/{reserved_job}", "작업 #")),
    ConsolePage("job-statement", document("/console/jobs/{mixed_job}/statement", "발송내역서")),
    ConsolePage("send-compose", send_compose),
    ConsolePage("send-kakao", send_kakao),
    ConsolePage("send-columns", send_columns),
    ConsolePage("send-check", send_check),
    ConsolePage("money", at("/console/money", "충전/차감 내역")),
    ConsolePage("monthly-statement", document("/console/statements/monthly?month={month}", "발송내역서")),
    ConsolePage("senders", at("/console/senders", "발신번호")),
    ConsolePage("opt-outs", at("/console/opt-outs", "수신거부")),
    ConsolePage("opt-outs-searched", at("/console/opt-outs?phone=0001", "수신거부")),
    ConsolePage("opt-outs-imported", opt_outs_imported),
    ConsolePage("stats", at("/console/stats", "통계")),
    ConsolePage("audit", at("/console/audit", "감사 로그")),
    ConsolePage("not-found", at("/console/jobs/999999999", "찾을 수 없습니다")),
    ConsolePage("forbidden", at("/console/send", "권한이 없습니다"), who="reader"),
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: $BALSONG_SCREENSHOTS_DIR, else under pytest's temp dir."""
    named = os.environ.get("BALSONG_SCREENSHOTS_DIR")
    folder = Path(named) if named else tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def reserve(client: httpx.Client) -> int:
    """A job reserved for tomorrow; its id."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return submit_sms(client, "예약 안내", ["010-8960-0001"], scheduled_at=tomorrow)


@pytest.fixture(scope="module")
def operator(stack: Stack) -> httpx.Client:
    return stack.new_tenant("console-a11y", scopes=("send", "read", "admin"))


@pytest.fixture(scope="module")
def site(stack: Stack, operator: httpx.Client) -> Site:
    mixed = submit_sms(operator, "접근성 점검", ["010-8950-0001", "010-8950-0002", "010-12"])
    wait_finished(stack, operator, mixed)
    added = operator.post("/v1/opt-outs", json={"phones": ["010-8950-0001", "010-8950-0009"]})
    assert added.status_code == 200, added.text
    return Site(
        url=stack.settings.api_url,
        mixed_job=mixed,
        reserved_job=reserve(operator),
        month=datetime.now(KST).strftime("%Y-%m"),
    )


def signed_in(browser: Browser, site: Site, key: str | None) -> BrowserContext:
    context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul", viewport=VIEWPORTS["desktop"])
    if key is not None:
        page = context.new_page()
        page.goto(f"{site.url}/console/login")
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("발송 내역")
        page.close()
    return context


@pytest.fixture(scope="module")
def contexts(
    stack: Stack, browser: Browser, site: Site, operator: httpx.Client
) -> Iterator[dict[Who, BrowserContext]]:
    """One browser context per kind of visitor, signed in once for the module."""
    reader = stack.new_tenant("console-a11y-reader", scopes=("read",))
    opened: dict[Who, BrowserContext] = {
        "nobody": signed_in(browser, site, None),
        "operator": signed_in(browser, site, key_of(operator)),
        "reader": signed_in(browser, site, key_of(reader)),
    }
    try:
        yield opened
    finally:
        for context in opened.values():
            context.close()


@pytest.fixture
def page(contexts: dict[Who, BrowserContext]) -> Iterator[Page]:
    """A page of the operator's signed-in context that accepts every confirm dialog."""
    opened = contexts["operator"].new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize("console_page", PAGES, ids=lambda p: p.name)
def test_the_page_has_no_serious_accessibility_violation_at_either_width(
    console_page: ConsolePage, site: Site, contexts: dict[Who, BrowserContext], screenshots: Path
) -> None:
    # Given the page open as its visitor sees it
    page = contexts[console_page.who].new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        console_page.open(page, site)
        failures: list[str] = []
        for width, viewport in VIEWPORTS.items():
            # When it is scanned at a desktop's and a phone's width (and photographed)
            page.set_viewport_size(viewport)
            page.screenshot(path=screenshots / f"{console_page.name}-{width}.png", full_page=True)
            blocking = [v for v in scan(page) if v.blocking]
            # Then axe finds nothing serious or critical
            if blocking:
                failures.append(report(f"{console_page.name} at {viewport['width']} px", blocking))
        # and every table header says what it heads, and the page is Korean
        unscoped = page.locator("th:not([scope])").count()
        if unscoped:
            failures.append(f"{console_page.name}: {unscoped} <th> without scope")
        if page.locator("html").get_attribute("lang") != "ko":
            failures.append(f"{console_page.name}: <html> is not lang=ko")
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)
    finally:
        page.close()


def tab_to(page: Page, selector: str, limit: int = 100) -> None:
    """Press Tab until ``selector`` has the focus; fails after ``limit`` presses."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    pytest.fail(f"{selector} was not reached in {limit} presses of Tab")


def focus_ring(page: Page) -> str:
    """The focused element's outline as computed, e.g. ``solid 3px``."""
    style, width = page.evaluate(
        "() => [getComputedStyle(document.activeElement).outlineStyle,"
        " getComputedStyle(document.activeElement).outlineWidth]"
    )
    return f"{style} {width}"


def assert_focus_visible(page: Page) -> None:
    style, width = focus_ring(page).split()
    assert style != "none" and width != "0px", f"no visible focus ring: {style} {width}"


def test_a_keyboard_user_skips_to_the_content_and_sees_where_the_focus_is(site: Site, page: Page) -> None:
    # Given the history page
    at("/console/jobs", "발송 내역")(page, site)

    # When the operator presses Tab once, Then the skip link has the focus and shows itself
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("본문 바로가기")
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["height"] > 0
    assert_focus_visible(page)

    # When they press Enter, Then the focus moves to the main content, past the menu
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")
    assert_focus_visible(page)


def test_failures_are_resent_with_the_keyboard_alone(
    stack: Stack, operator: httpx.Client, page: Page
) -> None:
    # Given a finished job whose carrier refused some recipients, open in the console
    stack.simulator.configure(failure_mix={"3015": 0.5}, seed=5)
    try:
        job_id = submit_sms(operator, "키보드 재발송", [f"010-8970-{i:04d}" for i in range(10)])
        job = wait_finished(stack, operator, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    assert job["counts"]["failed"] > 0
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")

    # When the operator tabs to 실패 재발송, which shows a focus ring, and presses Enter
    tab_to(page, "#resend")
    assert_focus_visible(page)
    page.keyboard.press("Enter")

    # Then a new job is made for the failed recipients, and the page says so
    expect(page.locator(".notice").first).to_contain_text("재발송")
    assert f"/console/jobs/{job_id}" not in page.url


def test_a_reservation_is_cancelled_with_the_keyboard_alone(
    stack: Stack, operator: httpx.Client, page: Page
) -> None:
    # Given a reservation for tomorrow, open in the console
    job_id = reserve(operator)
    page.goto(f"{stack.settings.api_url}/console/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_text("예약")

    # When the operator tabs to 발송 취소 and presses Space (and confirms)
    tab_to(page, "#cancel")
    assert_focus_visible(page)
    page.keyboard.press("Space")

    # Then the job is cancelled
    expect(page.locator("#job-status")).to_have_text("취소")


def test_the_job_progress_is_a_polite_live_region_that_the_script_updates(site: Site, page: Page) -> None:
    # Given a job page whose progress endpoint answers 40 %, sending (as a running job's would)
    def running(route: Route) -> None:
        counts = {"total": 10, "delivered": 4, "failed": 0, "in_flight": 2, "queued": 4}
        body = {
            "status": "sending",
            "status_label": "발송 중",
            "finished": False,
            "progress": 40,
            "counts": counts,
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(f"**/console/jobs/{site.reserved_job}/progress", running)
    page.goto(f"{site.url}/console/jobs/{site.reserved_job}")

    # Then the progress is announced politely, as a whole
    live = page.locator("#progress-live")
    expect(live).to_have_attribute("role", "status")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_have_attribute("aria-atomic", "true")

    # When the script polls, Then the live region says the new percent and status
    expect(live).to_contain_text("40% 완료")
    expect(live).to_contain_text("발송 중")
    expect(page.locator("[data-count=delivered]")).to_have_text("4")
