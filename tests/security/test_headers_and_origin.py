"""Security headers on every response, no inline code in the console, same-origin console POSTs.

Given the running API, when the API, the console, its static files, a statement or an error is
fetched, then every response forbids framing, content sniffing, cross-site referrers and any
script or style but the site's own (the statement's inline ones by hash); the console, run in
Chromium, breaks none of that policy; and a console form posted from another site — sign-in
included (login CSRF) — is refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.security.support import browser, csrf_token, key_of, signed_in, unique
from tests.support.chromium import launched_chromium
from tests.support.jobs import wait_finished
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration

EVIL = "https://evil.example"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {words[0]: words[1:] for words in parsed}


def assert_secure(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    policy = directives(response.headers.get("content-security-policy", ""))
    assert policy.get("default-src") == ["'self'"], where
    assert policy.get("frame-ancestors") == ["'none'"], where
    assert "'unsafe-inline'" not in policy.get("script-src", []) + policy.get("style-src", []), where


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


def inline_sha256(content: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(content.encode()).digest()).decode() + "'"


@pytest.fixture
def tenant_job(stack: Stack) -> tuple[httpx.Client, int]:
    client = stack.new_tenant(unique("headers"))
    job_id = submit_sms(client, "헤더 확인", ["010-9500-0001"])
    wait_finished(stack, client, job_id)
    return client, job_id


def test_every_kind_of_response_carries_the_security_headers(
    stack: Stack, tenant_job: tuple[httpx.Client, int]
) -> None:
    # Given a tenant's finished job
    client, job_id = tenant_job

    # When API answers (success, errors), the console's pages, static files and downloads are fetched
    with browser(stack) as anonymous, signed_in(stack, key_of(client)) as console:
        responses = [
            anonymous.get("/healthz"),
            anonymous.get("/v1/jobs"),  # 401
            client.get("/v1/jobs"),
            client.get(f"/v1/jobs/{job_id}"),
            client.get("/v1/jobs/999999999"),  # 404
            client.get("/v1/jobs?created_from=yesterday"),  # 422
            client.get(f"/v1/jobs/{job_id}/export"),
            client.get(f"/v1/statements/jobs/{job_id}"),
            anonymous.get("/console/login"),
            anonymous.get("/console/jobs"),  # redirect to sign-in
            anonymous.get("/console/static/console.css"),
            anonymous.get("/console/static/progress.js"),
            console.get("/console/jobs"),
            console.get(f"/console/jobs/{job_id}"),
            console.get(f"/console/jobs/{job_id}/progress"),
            console.get(f"/console/jobs/{job_id}/export?format=xlsx"),
            console.get(f"/console/jobs/{job_id}/statement"),
        ]

    # Then each carries the headers
    assert {r.status_code for r in responses} >= {200, 303, 401, 404, 422}
    for response in responses:
        assert_secure(response)


def test_the_console_has_no_inline_script_or_style_and_the_statements_are_hashed(
    stack: Stack, tenant_job: tuple[httpx.Client, int]
) -> None:
    # Given a signed-in operator and a job
    client, job_id = tenant_job
    with browser(stack) as anonymous, signed_in(stack, key_of(client)) as console:
        pages = [
            anonymous.get("/console/login"),
            console.get("/console/jobs"),
            console.get(f"/console/jobs/{job_id}"),
        ]
        statement = console.get(f"/console/jobs/{job_id}/statement")

    # When their HTML is read, Then scripts come from files, and no element has a style or a handler
    for page in pages:
        assert page.status_code == 200
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), page.url
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text), page.url
    # And the statement's own inline style and script are the ones its policy allows by hash
    assert statement.status_code == 200
    policy = directives(statement.headers["content-security-policy"])
    (style,) = re.findall(r"<style>(.*?)</style>", statement.text, re.S)
    (script,) = re.findall(r"<script>(.*?)</script>", statement.text, re.S)
    assert inline_sha256(style) in policy["style-src"]
    assert inline_sha256(script) in policy["script-src"]
    assert not re.search(r"\son[a-z]+=", statement.text)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def test_the_console_runs_in_chromium_within_its_policy(stack: Stack, chromium: Browser) -> None:
    # Given a finished job and a reservation of one tenant
    client = stack.new_tenant(unique("csp-browser"))
    finished = submit_sms(client, "정책 확인", ["010-9500-0101"])
    wait_finished(stack, client, finished)
    reserved_id = reservation(client, "010-9500-0102")
    context = chromium.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
    violations: list[str] = []
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        # When an operator signs in, opens the job page and the statement, and cancels the reservation
        page.goto(f"{stack.settings.api_url}/console/login")
        page.fill("#api_key", key_of(client))
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("발송 내역")
        page.goto(f"{stack.settings.api_url}/console/jobs/{finished}")
        expect(page.locator("progress.bar")).to_have_attribute("value", "100")
        with context.expect_page() as statement:
            page.click("#statement")
        statement.value.wait_for_load_state()
        expect(statement.value.locator("button.print")).to_be_visible()
        page.goto(f"{stack.settings.api_url}/console/jobs/{reserved_id}")
        page.once("dialog", lambda dialog: dialog.accept())  # confirm.js asks first
        page.click("#cancel")

        # Then everything worked (the confirmation came from a script file) and broke no policy
        expect(page.locator(".notice")).to_contain_text("발송을 취소했습니다")
        assert violations == []
    finally:
        context.close()


def test_a_sign_in_from_another_site_is_refused(stack: Stack) -> None:
    # Given a tenant's key (which a malicious site would sign its victim in with: login CSRF)
    key = key_of(stack.new_tenant(unique("login-csrf")))

    with browser(stack) as client:
        # When the sign-in form is posted from another origin, or with only a foreign Referer,
        # or from an opaque origin ("null": a sandboxed frame, a data: page)
        for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/login.html"}, {"Origin": "null"}):
            response = client.post("/console/login", data={"api_key": key}, headers=headers)
            # Then it is refused and no session is made
            assert response.status_code == 403, (headers, response.status_code)
            assert "balsong_console" not in response.headers.get("set-cookie", "")
            assert_secure(response)

        # When it comes from the console's own origin, Then the operator is signed in
        response = client.post(
            "/console/login", data={"api_key": key}, headers={"Origin": stack.settings.api_url}
        )
        assert response.status_code == 303 and "balsong_console" in response.headers["set-cookie"]


def test_other_console_forms_from_another_site_are_refused(stack: Stack) -> None:
    # Given a signed-in operator with a reservation, and the session's CSRF token
    client = stack.new_tenant(unique("form-origin"))
    job_id = reservation(client, "010-9500-0201")
    with signed_in(stack, key_of(client)) as console:
        token = csrf_token(console, job_id)

        # When the cancel and sign-out forms are posted from another origin, even with the token
        cancel = console.post(
            f"/console/jobs/{job_id}/cancel", data={"csrf_token": token}, headers={"Origin": EVIL}
        )
        logout = console.post("/console/logout", data={"csrf_token": token}, headers={"Origin": EVIL})

        # Then both are refused, the reservation stands and the session goes on
        assert (cancel.status_code, logout.status_code) == (403, 403)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "scheduled"
        assert console.get("/console/jobs").status_code == 200
