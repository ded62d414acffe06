"""Operators, not keys: accounts, roles, lock-out and the audit log, over HTTP against the running API.

Given a tenant whose operators are made with ``balsong operator``, when they sign in to the
console with their email and password, then they may do what their role allows and no more
(the API's scope table), a wrong password counts towards a lock-out the CLI lifts, disabling an
operator or resetting their password ends their session at once and a new role applies at
their next request; and every action — from the console, the API and the CLI — is in the
tenant's audit log under who did it, which an admin reads and downloads.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from engine.accounts import operators
from engine.accounts.platform_keys import create_platform_key
from engine.accounts.tenants import tenant_id_by_name
from engine.clock import KST
from engine.errors import AccountLocked
from tests.security.support import browser, client_address, csrf_token, key_of, unique
from tests.support.jobs import wait_finished
from tests.support.services import settings_env
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration

PASSWORD = "봄날의 발송 콘솔 2026"


def balsong(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``balsong`` CLI against the test session's services."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, **settings_env(stack.settings)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def new_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@acme.co.kr"


def add_operator(stack: Stack, tenant: str, role: str, password: str = PASSWORD) -> str:
    """A new operator of ``tenant`` with ``role``, added with the CLI; their email."""
    email = new_email(role)
    done = balsong(
        stack, "operator", "add", tenant, email, "--role", role, "--password-stdin", stdin=password
    )
    assert done.returncode == 0, done.stderr
    return email


def sign_in(stack: Stack, email: str, password: str = PASSWORD, address: str | None = None) -> httpx.Response:
    with browser(stack, address or client_address()) as client:
        return client.post("/console/login", data={"email": email, "password": password})


def signed_in(stack: Stack, email: str, password: str = PASSWORD) -> httpx.Client:
    """A console client signed in as the operator (close it when done)."""
    client = browser(stack, client_address())
    response = client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text[:300]
    stack.clients.append(client)
    return client


def reservation(client: httpx.Client, phone: str) -> int:
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


def audit_rows(console: httpx.Client, **filters: str) -> list[dict[str, str]]:
    """The audit log as the admin's CSV download gives it (filtered), one dict per row."""
    response = console.get("/console/audit/export", params=filters)
    assert response.status_code == 200, response.text[:300]
    assert response.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_cli_adds_lists_and_changes_operators_and_refuses_weak_passwords(stack: Stack) -> None:
    # Given a tenant
    tenant = unique("operators-cli")
    stack.new_tenant(tenant)
    email = new_email("kim")

    # When an operator is added with a password too short, or their own email as password
    short = balsong(
        stack, "operator", "add", tenant, email, "--role", "sender", "--password-stdin", stdin="short1"
    )
    own = balsong(
        stack, "operator", "add", tenant, email, "--role", "sender", "--password-stdin", stdin=email
    )
    # Then each is refused, saying why, and no account is made
    assert short.returncode == 2 and "10자 이상" in short.stderr
    assert own.returncode == 2 and "이메일" in own.stderr
    assert sign_in(stack, email, "short1").status_code == 401

    # When they are added with a good password, Then they are listed, active, never signed in
    done = balsong(
        stack, "operator", "add", tenant, email, "--role", "sender", "--password-stdin", stdin=PASSWORD
    )
    assert done.returncode == 0, done.stderr
    listing = balsong(stack, "operator", "list", tenant)
    assert listing.returncode == 0
    (line,) = [row for row in listing.stdout.splitlines() if row.startswith(email)]
    assert line.split()[1:3] == ["sender", "active"] and line.endswith("never")
    # And the same email cannot have a second account, in this tenant or another
    other = unique("operators-cli-other")
    stack.new_tenant(other)
    again = balsong(
        stack, "operator", "add", other, email, "--role", "viewer", "--password-stdin", stdin=PASSWORD
    )
    assert again.returncode == 2 and "이미 있습니다" in again.stderr

    # When their role is changed and they are disabled, Then the list says so
    assert balsong(stack, "operator", "role", tenant, email, "viewer").returncode == 0
    assert balsong(stack, "operator", "disable", tenant, email).returncode == 0
    (line,) = [row for row in balsong(stack, "operator", "list", tenant).stdout.splitlines() if email in row]
    assert line.split()[1:3] == ["viewer", "disabled"]
    # And an unknown operator is an error, not a silent success
    missing = balsong(stack, "operator", "disable", tenant, new_email("nobody"))
    assert missing.returncode == 3 and "no operator" in missing.stderr


def test_an_operator_signs_in_with_email_and_password_and_a_wrong_one_is_refused(stack: Stack) -> None:
    # Given a sender operator
    tenant = unique("operators-sign-in")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "sender")

    # When they sign in with a wrong password, or someone with an email nobody has
    wrong = sign_in(stack, email, PASSWORD + "x")
    nobody = sign_in(stack, new_email("nobody"), PASSWORD)
    # Then both are refused alike, in Korean, without a session
    for response in (wrong, nobody):
        assert response.status_code == 401
        assert "이메일 또는 비밀번호가 올바르지 않습니다" in response.text
        assert "balsong_console" not in response.headers.get("set-cookie", "")

    # When they sign in with the right one (the email in another case, with spaces)
    with browser(stack, client_address()) as client:
        response = client.post("/console/login", data={"email": f" {email.upper()} ", "password": PASSWORD})
        # Then they get a session, and every page says who they are and in what role
        assert response.status_code == 303 and response.headers["location"] == "/console/jobs"
        page = client.get("/console/jobs")
        assert page.status_code == 200
        assert f'id="signed-in-as">{email} · 발송 담당<' in page.text
        # And a sender has no link to the audit log
        assert "/console/audit" not in page.text


def test_repeated_failures_lock_the_account_until_the_cli_unlocks_it(stack: Stack) -> None:
    # Given an operator, and someone guessing their password from one address
    tenant = unique("operators-lock")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "viewer")
    address = client_address()

    # When four wrong passwords are tried, Then each is refused as wrong
    for attempt in range(operators.LOCK_AFTER_FAILURES - 1):
        assert sign_in(stack, email, f"guess-{attempt}-password", address).status_code == 401
    # When the fifth is tried, Then the account locks, and the guesser is told so in Korean
    locked = sign_in(stack, email, "guess-last-password", address)
    assert locked.status_code == 423
    assert "계정이 잠겼습니다" in locked.text and "관리자에게 잠금 해제를 요청하세요" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= operators.LOCK_SECONDS
    # And even the right password, from anywhere, does not open it while it is locked
    assert sign_in(stack, email, PASSWORD).status_code == 423

    # When an administrator unlocks it with the CLI, Then the right password works again
    done = balsong(stack, "operator", "unlock", tenant, email)
    assert done.returncode == 0, done.stderr
    assert sign_in(stack, email, PASSWORD).status_code == 303

    # And the lock and the unlock are in the tenant's audit log
    admin = signed_in(stack, add_operator(stack, tenant, "admin"))
    rows = audit_rows(admin, actor=address)
    assert [row["작업 코드"] for row in rows] == ["operator.locked"]
    assert rows[0]["대상"] == f"operator:{email}"
    (unlock,) = audit_rows(admin, action="operator.unlock")
    assert unlock["작업자"].startswith("CLI") and unlock["대상"] == f"operator:{email}"


def test_a_lock_ends_by_itself_after_its_time(stack: Stack) -> None:
    # Given an operator locked out at a moment of the (injected) clock
    tenant = unique("operators-lock-time")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "viewer")
    now = datetime.now(UTC)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:

        def connect() -> nullcontext[psycopg.Connection]:
            return nullcontext(conn)

        for _ in range(operators.LOCK_AFTER_FAILURES - 1):
            assert operators.sign_in(connect, email, "wrong-password", now) is None
        with pytest.raises(AccountLocked) as locked:
            operators.sign_in(connect, email, "wrong-password", now)
        assert locked.value.until == now + timedelta(seconds=operators.LOCK_SECONDS)

        # When the right password comes a second before the lock ends, Then it is refused
        with pytest.raises(AccountLocked):
            operators.sign_in(connect, email, PASSWORD, locked.value.until - timedelta(seconds=1))
        # When it comes once the lock has ended, Then it works, with the failures forgotten
        found = operators.sign_in(connect, email, PASSWORD, locked.value.until)
        assert found is not None and found.email == email
        later = locked.value.until + timedelta(seconds=1)
        for _ in range(operators.LOCK_AFTER_FAILURES - 1):
            assert operators.sign_in(connect, email, "wrong-password", later) is None
        assert operators.sign_in(connect, email, PASSWORD, later) is not None


def test_a_viewer_reads_but_cannot_cancel_or_resend_until_made_a_sender(stack: Stack) -> None:
    # Given a tenant's reservation and its finished job, and a viewer signed in
    tenant = unique("operators-viewer")
    client = stack.new_tenant(tenant)
    reserved = reservation(client, "010-9410-0001")
    finished = submit_sms(client, "조회 전용", ["010-9410-0002", "010-12"])
    wait_finished(stack, client, finished)
    email = add_operator(stack, tenant, "viewer")
    console = signed_in(stack, email)

    # When they open the job pages, Then they see the jobs without the forms they may not use
    page = console.get(f"/console/jobs/{finished}")
    assert page.status_code == 200 and "010-****-0002" in page.text
    assert 'id="resend-form"' not in page.text
    reserved_page = console.get(f"/console/jobs/{reserved}")
    assert reserved_page.status_code == 200 and 'id="cancel-form"' not in reserved_page.text
    token = csrf_token(console, finished)

    # When they post cancel and resend anyway, with the session's CSRF token
    cancel = console.post(f"/console/jobs/{reserved}/cancel", data={"csrf_token": token})
    resend = console.post(f"/console/jobs/{finished}/resend", data={"csrf_token": token})
    # Then both are refused with 403, naming their role and the 'send' permission it lacks
    for response in (cancel, resend):
        assert response.status_code == 403
        assert "발송(send)" in response.text and "조회 전용" in response.text
    # And the audit log is an admin's only
    audit = console.get("/console/audit")
    assert audit.status_code == 403 and "관리(admin)" in audit.text
    assert client.get(f"/v1/jobs/{reserved}").json()["status"] == "scheduled"

    # When an administrator makes them a sender, Then the same session may cancel at once
    assert balsong(stack, "operator", "role", tenant, email, "sender").returncode == 0
    assert 'id="cancel-form"' in console.get(f"/console/jobs/{reserved}").text
    cancelled = console.post(f"/console/jobs/{reserved}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303 and cancelled.headers["location"].endswith("notice=cancelled")
    assert client.get(f"/v1/jobs/{reserved}").json()["status"] == "cancelled"

    # And the audit log says who cancelled it, and who changed their role
    admin = signed_in(stack, add_operator(stack, tenant, "admin"))
    (entry,) = audit_rows(admin, action="job.cancel")
    assert (entry["작업자"], entry["작업"], entry["대상"]) == (email, "발송 취소", f"job:{reserved}")
    (role,) = audit_rows(admin, action="operator.role")
    assert role["작업자"].startswith("CLI") and '"to":"sender"' in role["상세"]


def test_disabling_an_operator_or_resetting_their_password_ends_their_session(stack: Stack) -> None:
    # Given an operator signed in
    tenant = unique("operators-disable")
    stack.new_tenant(tenant)
    email = add_operator(stack, tenant, "sender")
    console = signed_in(stack, email)
    assert console.get("/console/jobs").status_code == 200

    # When an administrator disables them
    assert balsong(stack, "operator", "disable", tenant, email).returncode == 0
    # Then their next request is sent to the sign-in page, and their cookie is worth nothing
    response = console.get("/console/jobs")
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    # And signing in again, with the right password, is refused as disabled
    refused = sign_in(stack, email)
    assert refused.status_code == 403 and "사용이 중지된 계정" in refused.text
    # While a wrong password is refused as wrong (a disabled account tells nothing more)
    assert sign_in(stack, email, "not-the-password").status_code == 401

    # When they are enabled again, Then they sign in
    assert balsong(stack, "operator", "enable", tenant, email).returncode == 0
    console = signed_in(stack, email)
    assert console.get("/console/jobs").status_code == 200

    # When their password is reset, Then the session made with the old one ends too
    new_password = "새 비밀번호는 길게 쓴다"
    reset = balsong(stack, "operator", "password", tenant, email, "--password-stdin", stdin=new_password)
    assert reset.returncode == 0, reset.stderr
    assert console.get("/console/jobs").status_code == 303
    assert sign_in(stack, email).status_code == 401
    assert sign_in(stack, email, new_password).status_code == 303


def test_every_kind_of_action_is_audited_under_who_did_it(stack: Stack) -> None:
    # Given a tenant with an admin key (the API), an admin operator (the console) and the CLI
    tenant = unique("operators-audit")
    api = stack.new_tenant(tenant, scopes=("admin",))
    prefix = api.get("/v1/keys").json()["keys"][0]["prefix"]
    assert key_of(api).startswith(prefix)
    key_actor = f"API key {prefix}"
    admin_email = add_operator(stack, tenant, "admin")
    console = signed_in(stack, admin_email)

    # When the API submits a job with failures, and resends them once it has finished
    stack.simulator.configure(failure_mix={"3015": 0.5}, seed=3)
    try:
        job_id = submit_sms(api, "감사 로그", [f"010-9420-{i:04d}" for i in range(10)])
        wait_finished(stack, api, job_id)
    finally:
        stack.simulator.configure(failure_mix={})
    resend = api.post(f"/v1/jobs/{job_id}/resend", headers={"Idempotency-Key": "once"})
    assert resend.status_code == 202, resend.text
    resend_id = resend.json()["job_id"]
    # and the same resend again, by its Idempotency-Key (no second job, so no second entry)
    again = api.post(f"/v1/jobs/{job_id}/resend", headers={"Idempotency-Key": "once"})
    assert again.status_code == 200 and again.json()["job_id"] == resend_id
    # and the API downloads whole numbers, and asks for a sender number
    assert api.get(f"/v1/jobs/{job_id}/export", params={"unmasked": "true"}).status_code == 200
    assert api.post("/v1/senders", json={"number": "02-555-0100"}).status_code == 201
    # and the console cancels a reservation
    reserved = reservation(api, "010-9420-9999")
    token = csrf_token(console, reserved)
    assert console.post(f"/console/jobs/{reserved}/cancel", data={"csrf_token": token}).status_code == 303
    # and the platform tops the tenant up, and the CLI adjusts its balance and approves the sender
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        platform_key = create_platform_key(conn, "billing-service")
    with httpx.Client(
        base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {platform_key}"}
    ) as platform:
        topped = platform.post(
            "/v1/balance/top-ups", json={"tenant": tenant, "amount": "5000", "memo": "12월"}
        )
        assert topped.status_code == 201, topped.text
    assert balsong(stack, "tenant", "adjust", tenant, "-120.50", "오발송 보상").returncode == 0
    assert balsong(stack, "sender", "approve", tenant, "02-555-0100").returncode == 0

    # Then the audit log holds each, newest first, under who did it
    rows = audit_rows(console)
    seen = [(row["작업 코드"], row["작업자"], row["대상"]) for row in rows]
    cli = next(actor for code, actor, _ in seen if code == "sender.approve")
    assert cli.startswith("CLI")
    assert seen == [
        ("sender.approve", cli, "sender:025550100"),
        ("balance.adjust", cli, ""),
        ("balance.top_up", f"platform key billing-service ({platform_key[:10]})", ""),
        ("job.cancel", admin_email, f"job:{reserved}"),
        ("job.submit", key_actor, f"job:{reserved}"),
        ("sender.request", key_actor, "sender:025550100"),
        ("export.unmasked", key_actor, f"job:{job_id}"),
        ("job.resend", key_actor, f"job:{job_id}"),
        ("job.submit", key_actor, f"job:{job_id}"),
        (
            "operator.add",
            next(actor for code, actor, _ in seen if code == "operator.add"),
            f"operator:{admin_email}",
        ),
    ]
    # And the details say what was done: the resend's new job, the amounts and memos
    by_code = {row["작업 코드"]: row for row in rows}
    assert f'"resend_job_id":{resend_id}' in by_code["job.resend"]["상세"]
    assert '"amount":"-120.50"' in by_code["balance.adjust"]["상세"]
    assert "오발송 보상" in by_code["balance.adjust"]["상세"]
    assert '"amount":"5000.00"' in by_code["balance.top_up"]["상세"]
    # And the balance moved by exactly those amounts (the entries were not made instead of them)
    with psycopg.connect(stack.settings.database_url) as conn:
        tenant_id = tenant_id_by_name(conn, tenant)
        amounts = conn.execute(
            "SELECT amount FROM ledger WHERE tenant_id = %s AND kind IN ('top_up', 'adjustment')"
            " ORDER BY id DESC LIMIT 2",
            (tenant_id,),
        ).fetchall()
    assert sorted(a for (a,) in amounts) == [Decimal("-120.50"), Decimal("5000")]


def test_the_audit_page_filters_by_day_actor_and_action_and_pages(stack: Stack) -> None:
    # Given a tenant whose audit log has entries by two operators (made by the CLI and the console)
    tenant = unique("operators-audit-page")
    api = stack.new_tenant(tenant)
    admin_email = add_operator(stack, tenant, "admin")
    sender_email = add_operator(stack, tenant, "sender")
    console = signed_in(stack, admin_email)
    sender = signed_in(stack, sender_email)
    reserved = [reservation(api, f"010-9430-{i:04d}") for i in range(3)]
    for job_id in reserved:
        token = csrf_token(sender, job_id)
        assert sender.post(f"/console/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 303

    # When the admin opens the audit page, Then it lists entries newest first, with Korean labels
    page = console.get("/console/audit")
    assert page.status_code == 200 and "<h1>감사 로그</h1>" in page.text
    assert 'id="nav-audit"' in page.text
    positions = [page.text.index(f'data-subject="job:{job_id}"') for job_id in reversed(reserved)]
    assert positions == sorted(positions)
    assert (
        "발송 취소" in page.text
        and f'<a href="/console/jobs/{reserved[0]}">작업 #{reserved[0]}</a>' in page.text
    )

    # When it is filtered by actor (any part of it) and action, Then only those entries are left
    by_sender = console.get("/console/audit", params={"actor": sender_email.split("@")[0].upper()})
    assert by_sender.text.count('data-action="job.cancel"') == 3
    assert 'data-action="operator.add"' not in by_sender.text
    added = console.get("/console/audit", params={"action": "operator.add"})
    assert added.text.count('data-action="operator.add"') == 2
    assert 'data-action="job.cancel"' not in added.text
    # and by today's date (KST), Then all are there (two added, three submitted and cancelled);
    # by yesterday's, none
    today = datetime.now(KST).date()
    yesterday = today - timedelta(days=1)
    assert console.get("/console/audit", params={"created_from": str(today)}).text.count("data-action=") == 8
    empty = console.get(
        "/console/audit", params={"created_from": str(yesterday), "created_to": str(yesterday)}
    )
    assert "조건에 맞는 감사 기록이 없습니다" in empty.text
    # And a filter that is no filter is refused in Korean, naming the field
    bad = console.get("/console/audit", params={"created_from": "yesterday"})
    assert bad.status_code == 422 and "created_from" in bad.text
    assert console.get("/console/audit", params={"action": "job.explode"}).status_code == 422

    # And the CSV has the same rows the filters select, with Korean headers, for Excel
    download = console.get("/console/audit/export", params={"actor": sender_email})
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0] == ["일시(KST)", "작업자", "작업", "작업 코드", "대상", "상세"]
    assert [row[4] for row in rows[1:]] == [f"job:{job_id}" for job_id in reversed(reserved)]
    # And the CSV is the admins' only, like the page
    assert sender.get("/console/audit/export").status_code == 403


def test_the_audit_csv_guards_formulas_and_the_log_is_append_only(conn: psycopg.Connection) -> None:
    # Given an entry whose actor and details a spreadsheet would read as formulas
    from engine.accounts import audit
    from engine.accounts.tenants import create_tenant
    from engine.reporting import audit_log

    tenant_id = create_tenant(conn, unique("audit-csv-guard"))
    audit.record(
        conn,
        tenant_id=tenant_id,
        actor='=HYPERLINK("http://evil")@acme.kr',
        action=audit.AuditAction.BALANCE_ADJUST,
        details={"memo": "-1+1"},
    )

    # When the log is downloaded as CSV
    content = b"".join(audit_log.csv_chunks(conn, tenant_id, audit_log.AuditFilter()))

    # Then it is UTF-8 with a BOM, and no cell starts with a formula character
    assert content.startswith("\ufeff".encode())
    (header, row) = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert header[1] == "작업자" and row[1].startswith("'=HYPERLINK")
    assert row[2:4] == ["포인트 조정", "balance.adjust"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)

    # And the log cannot be changed or emptied afterwards
    for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(statement + " WHERE tenant_id = %s", (tenant_id,))
    # And an action that is none is refused rather than written
    with pytest.raises(ValueError):
        audit.record(conn, tenant_id=tenant_id, actor="CLI", action="job.explode")
