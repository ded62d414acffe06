"""Operators in the console, driven in headless Chromium against the real running API.

Given operators of a tenant, when they sign in with their email and password in a browser —
on a phone's 390 px screen too — then the header says who they are, a wrong password and a
lock-out are told in Korean, a viewer is offered no button they may not use, a disabled
operator's session ends, and an admin finds a console cancel and an API resend in the audit
log, filters it and downloads it as CSV; and no page breaks the console's content policy.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from engine.accounts import operators
from tests.security.support import client_address, unique
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.services import settings_env
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "봄날의 발송 콘솔 2026"
#: A phone's screen width (CSS pixels).
PHONE_WIDTH = 390


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def violations() -> list[str]:
    """Content-policy violations the pages of a test reported in the browser's console."""
    return []


@pytest.fixture
def context(chromium: Browser, violations: list[str]) -> Iterator[BrowserContext]:
    """A browser of its own client address (so sign-in failures are counted apart), in Korean, KST."""
    made = chromium.new_context(
        accept_downloads=True,
        locale="ko-KR",
        timezone_id="Asia/Seoul",
        viewport={"width": PHONE_WIDTH, "height": 844},
        extra_http_headers={"X-Forwarded-For": client_address()},
    )
    made.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def balsong(stack: Stack, *args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **settings_env(stack.settings)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def add_operator(stack: Stack, tenant: str, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@acme.co.kr"
    balsong(stack, "operator", "add", tenant, email, "--role", role, "--password-stdin", stdin=PASSWORD)
    return email


def sign_in(page: Page, stack: Stack, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{stack.settings.api_url}/console/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")


def fits_the_screen(page: Page) -> bool:
    """Nothing on the page is wider than the screen (no sideways scrolling of the page itself)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def reservation(client: httpx.Client, phone: str) -> int:
    """A job reserved for tomorrow: it waits, so it can be cancelled."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "예약",
            "scheduled_at": tomorrow,
            "recipients": [{"phone": phone}],
        },
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def test_an_operator_signs_in_with_their_account_on_a_phone_and_the_header_says_who(
    stack: Stack, page: Page, violations: list[str]
) -> None:
    # Given an admin operator of a tenant
    tenant = unique("browser-account")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "admin")

    # When they open the sign-in page on a phone
    page.goto(f"{stack.settings.api_url}/console/login")
    # Then the account form comes first, the API key's after it, labelled, and the page fits
    forms = page.locator("main form")
    expect(forms.nth(0)).to_have_id("account-sign-in")
    expect(forms.nth(1)).to_have_id("key-sign-in")
    expect(page.get_by_label("이메일", exact=True)).to_be_visible()
    expect(page.get_by_label("비밀번호", exact=True)).to_be_visible()
    expect(page.get_by_label("API 키", exact=True)).to_be_visible()
    assert fits_the_screen(page)

    # When they sign in with their email and password
    sign_in(page, stack, email)

    # Then they see the history, and the header names them and their role
    expect(page.locator("h1")).to_have_text("발송 내역")
    expect(page.locator("#signed-in-as")).to_have_text(f"{email} · 관리자")
    # And, as an admin, the audit log is in the navigation, and opens on a phone too
    page.click("#nav-audit")
    expect(page.locator("h1")).to_have_text("감사 로그")
    expect(page.locator("#audit tbody tr[data-action='operator.add']")).to_have_count(1)
    expect(page.get_by_label("작업자", exact=True)).to_be_visible()
    assert fits_the_screen(page)
    assert violations == []


def test_a_wrong_password_and_a_lock_out_are_told_in_korean(stack: Stack, page: Page) -> None:
    # Given an operator
    tenant = unique("browser-lock")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "sender")

    # When they mistype their password, Then the page says so and keeps their email
    sign_in(page, stack, email, "not my password")
    expect(page.locator(".error")).to_have_text("이메일 또는 비밀번호가 올바르지 않습니다.")
    expect(page.locator("#email")).to_have_value(email)

    # When they mistype it until the limit, Then the page says the account is locked, and until when
    for attempt in range(operators.LOCK_AFTER_FAILURES - 1):
        page.fill("#password", f"still wrong {attempt}")
        page.click("#sign-in")
    expect(page.locator(".error")).to_contain_text("계정이 잠겼습니다")
    expect(page.locator(".error")).to_contain_text("(KST)에 풀립니다")
    # And the right password does not open it now
    sign_in(page, stack, email)
    expect(page.locator(".error")).to_contain_text("계정이 잠겼습니다")
    expect(page.locator("h1")).to_have_text("로그인")


def test_a_viewer_is_offered_no_cancel_or_resend_and_is_refused_them(stack: Stack, page: Page) -> None:
    # Given a tenant's reservation and a finished job with a failure, and a viewer operator
    tenant = unique("browser-viewer")
    client = stack.new_tenant(tenant)
    reserved = reservation(client, "010-9440-0001")
    finished = submit_sms(client, "조회 전용", ["010-9440-0002", "010-12"])
    wait_finished(stack, client, finished)
    email = add_operator(stack, tenant, "viewer")
    sign_in(page, stack, email)
    expect(page.locator("#signed-in-as")).to_have_text(f"{email} · 조회 전용")
    expect(page.locator("#nav-audit")).to_have_count(0)

    # When they open the jobs, Then they see them, without the buttons they may not use
    page.goto(f"{stack.settings.api_url}/console/jobs/{finished}")
    expect(page.locator("#job-status")).to_be_visible()
    expect(page.locator("#resend")).to_have_count(0)
    page.goto(f"{stack.settings.api_url}/console/jobs/{reserved}")
    expect(page.locator("#job-status")).to_have_text("예약")
    expect(page.locator("#cancel")).to_have_count(0)

    # When they post the cancel form anyway, with their session's CSRF token
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(
        f"{stack.settings.api_url}/console/jobs/{reserved}/cancel",
        form={"csrf_token": token or ""},
        headers={"Origin": stack.settings.api_url},
    )
    # Then it is refused, and the reservation stands
    assert refused.status == 403 and "발송(send)" in refused.text()
    page.reload()
    expect(page.locator("#job-status")).to_have_text("예약")


def test_disabling_an_operator_ends_their_session_in_the_browser(stack: Stack, page: Page) -> None:
    # Given a signed-in operator
    tenant = unique("browser-disable")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "sender")
    sign_in(page, stack, email)
    expect(page.locator("h1")).to_have_text("발송 내역")

    # When an administrator disables them, and they go on using the console
    balsong(stack, "operator", "disable", tenant, email)
    page.reload()

    # Then they are on the sign-in page, and signing in again is refused as disabled
    expect(page).to_have_url(f"{stack.settings.api_url}/console/login")
    sign_in(page, stack, email)
    expect(page.locator(".error")).to_have_text("사용이 중지된 계정입니다. 관리자에게 문의하세요.")


def test_a_console_cancel_and_an_api_resend_are_in_the_audit_log_and_its_csv(
    stack: Stack, page: Page, violations: list[str]
) -> None:
    # Given a tenant's finished job with carrier failures, resent through the API by its key
    tenant = unique("browser-audit")
    client = stack.new_tenant(tenant)
    stack.simulator.configure(failure_mix={"3015": 0.5}, seed=3)
    try:
        job_id = submit_sms(client, "감사", [f"010-9450-{i:04d}" for i in range(10)])
        wait_finished(stack, client, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    resend = client.post(f"/v1/jobs/{job_id}/resend")
    assert resend.status_code == 202, resend.text
    prefix = str(client.headers["Authorization"]).removeprefix("Bearer ")[:10]
    reserved = reservation(client, "010-9450-9999")

    # When an admin operator cancels the reservation in the console (and confirms)
    email = add_operator(stack, tenant, "admin")
    sign_in(page, stack, email)
    page.goto(f"{stack.settings.api_url}/console/jobs/{reserved}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("취소")

    # Then the audit log shows the cancel, newest first, under their email, linked to the job
    page.click("#nav-audit")
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_have_attribute("data-action", "job.cancel")
    expect(rows.first.locator("th.actor")).to_have_text(email)
    expect(rows.first).to_contain_text("발송 취소")
    expect(rows.first.get_by_role("link")).to_have_text(f"작업 #{reserved}")
    # And the API's resend, under the key that made it
    resent = page.locator("#audit tbody tr[data-action='job.resend']")
    expect(resent).to_have_count(1)
    expect(resent.locator("th.actor")).to_have_text(f"API key {prefix}")
    expect(resent).to_contain_text(f"resend_job_id: {resend.json()['job_id']}")

    # When the log is filtered to cancels
    page.select_option("#audit-action", "job.cancel")
    page.click("#audit-filters button[type=submit]")
    expect(rows).to_have_count(1)

    # Then its CSV download holds that row alone, for Excel (UTF-8 with BOM)
    with page.expect_download() as download:
        page.click("#audit-csv")
    content = Path(download.value.path()).read_bytes()
    assert content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert table[0] == ["일시(KST)", "작업자", "작업", "작업 코드", "대상", "상세"]
    assert [row[1:5] for row in table[1:]] == [[email, "발송 취소", "job.cancel", f"job:{reserved}"]]
    assert violations == []
