"""The console's money, sender-number and opt-out pages keep to the API's scopes and to the tenant.

Given a tenant with a ledger, a pending sender request and an opt-out list, when an operator
signs in with a key that lacks the scope the API would ask for the same thing (``read`` to see
money, senders and opt-outs; ``send`` to add opt-outs; ``admin`` to request a sender or remove an
opt-out), then the page or form answers 403 with a Korean page naming the missing permission and
nothing changes. Another tenant's operator never sees or changes any of it.
"""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

from api.console import money, opt_outs, senders
from engine.accounts import billing
from engine.accounts import opt_outs as opt_out_list
from engine.accounts.tenants import request_sender, tenant_id_by_name
from tests.security.support import CSRF_TOKEN, another_key, key_of, signed_in, unique
from tests.support.jobs import wait_finished
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration

ROUTERS = (money.router, senders.router, opt_outs.router)
#: Query strings the pages need to reach the data they show.
QUERIES = {"/console/statements/monthly": "?month=2026-12"}
#: A number on the owner's opt-out list, and a sender it asked for.
SECRET_OPT_OUT = "010-7400-5678"
SECRET_SENDER = "031-777-4321"


def routes(method: str) -> list[str]:
    """Every route of the three pages of ``method``, as their routers declare them."""
    return [
        route.path
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and method in (route.methods or set())
    ]


def tenant_with_data(stack: Stack, name: str) -> tuple[httpx.Client, int, int]:
    """A tenant (admin key) with a finished job, a pending sender and one opt-out: (client, job id,
    opt-out entry id)."""
    owner = stack.new_tenant(name, scopes=("admin",), balance=Decimal(1000))
    job_id = submit_sms(owner, "비밀 안내", ["010-7400-0001"])
    wait_finished(stack, owner, job_id)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        tenant_id = tenant_id_by_name(conn, name)
        request_sender(conn, tenant_id, SECRET_SENDER)
        opt_out_list.add(conn, tenant_id, [SECRET_OPT_OUT])
        entry = opt_out_list.listing(conn, tenant_id)["opt_outs"][0]  # type: ignore[index]
    return owner, job_id, int(entry["id"])


def page_token(console: httpx.Client) -> str:
    page = console.get("/console/jobs")
    found = CSRF_TOKEN.search(page.text)
    assert found, page.text[:300]
    return found[1]


def test_every_route_of_the_pages_asks_the_apis_scope_table() -> None:
    # Given the three pages' routes, When their dependencies are read, Then each asks api.scopes
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            names = {d.call.__name__ for d in route.dependant.dependencies if d.call}
            assert "scoped_session" in names, (route.path, names)


def test_a_send_only_key_sees_no_money_sender_or_opt_out_data(stack: Stack) -> None:
    # Given a tenant's money, senders and opt-outs, and a key of the tenant with 'send' only
    tenant = unique("scope-money-send")
    tenant_with_data(stack, tenant)
    key = another_key(stack, tenant, ("send",))
    pages = [path + QUERIES.get(path, "") for path in routes("GET")]
    assert {"/console/money", "/console/senders", "/console/opt-outs"} <= set(pages)

    # When it opens every page and download
    with signed_in(stack, key) as console:
        for path in pages:
            response = console.get(path)

            # Then each is refused, naming the missing 'read' permission, showing nothing
            assert response.status_code == 403, (path, response.status_code, response.text[:200])
            assert "권한이 없습니다" in response.text and "조회(read)" in response.text, path
            assert "7400" not in response.text and "777" not in response.text, path
            assert "1,000" not in response.text and "****" not in response.text, path


def test_a_read_only_key_reads_but_changes_nothing(stack: Stack) -> None:
    # Given a tenant's data and a key of the tenant with 'read' only
    tenant = unique("scope-money-read")
    owner, _, entry_id = tenant_with_data(stack, tenant)
    key = another_key(stack, tenant, ("read",))
    with signed_in(stack, key) as console:
        # When it opens the pages, Then it reads them without the forms it may not use
        listed = console.get("/console/opt-outs")
        assert listed.status_code == 200 and "010-****-5678" in listed.text
        assert 'id="opt-out-add"' not in listed.text and "remove-form" not in listed.text
        sender_page = console.get("/console/senders")
        assert sender_page.status_code == 200 and "031-777-4321" in sender_page.text
        assert 'id="sender-form"' not in sender_page.text
        money_page = console.get("/console/money")
        assert money_page.status_code == 200 and "991.00 P" in money_page.text
        # and, as every console page, with scripts from files only and no inline style or handler
        for html in (listed.text, sender_page.text, money_page.text):
            assert not re.search(r"<script(?![^>]*\bsrc=)", html)
            assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html)
        token = page_token(console)

        # When it posts every form anyway, with the session's CSRF token
        refusals = {
            "/console/senders": ({"number": "02-555-0000"}, "관리(admin)"),
            "/console/opt-outs": ({"phone": "010-7400-9999"}, "발송(send)"),
            f"/console/opt-outs/{entry_id}/remove": ({}, "관리(admin)"),
        }
        for path, (form, scope) in refusals.items():
            response = console.post(path, data={"csrf_token": token, **form})
            # Then each is refused with 403, naming the missing permission in Korean
            assert response.status_code == 403, (path, response.text[:200])
            assert scope in response.text, path
        imported = console.post(
            "/console/opt-outs/import",
            data={"csrf_token": token},
            files={"file": ("numbers.csv", b"010-7400-8888\n", "text/csv")},
        )
        assert imported.status_code == 403 and "발송(send)" in imported.text
    assert set(routes("POST")) == {
        "/console/senders",
        "/console/opt-outs",
        "/console/opt-outs/import",
        "/console/opt-outs/{entry_id}/remove",
    }

    # And nothing changed
    assert [s["number"] for s in owner.get("/v1/senders").json()["senders"]] == ["0212345678", "0317774321"]
    assert owner.get("/v1/opt-outs").json()["total"] == 1


def test_a_send_key_adds_opt_outs_but_removing_needs_admin(stack: Stack) -> None:
    # Given a tenant's opt-out and a key with 'send' and 'read'
    tenant = unique("scope-money-sendread")
    owner, _, entry_id = tenant_with_data(stack, tenant)
    key = another_key(stack, tenant, ("send", "read"))
    with signed_in(stack, key) as console:
        token = page_token(console)
        # When it adds a number, Then it is on the list
        added = console.post("/console/opt-outs", data={"csrf_token": token, "phone": "010-7400-1111"})
        assert added.status_code == 303, added.text[:200]
        # When it removes one, Then it is refused (the API's DELETE needs admin too)
        removed = console.post(f"/console/opt-outs/{entry_id}/remove", data={"csrf_token": token})
        assert removed.status_code == 403 and "관리(admin)" in removed.text
        # When a form comes without the session's CSRF token, Then it is refused
        forged = console.post("/console/opt-outs", data={"csrf_token": "forged", "phone": "010-7400-2222"})
        assert forged.status_code == 403
    assert owner.get("/v1/opt-outs").json()["total"] == 2


def test_another_tenants_money_senders_and_opt_outs_never_appear(stack: Stack) -> None:
    # Given tenant A's ledger, pending sender and opt-out, and an admin of tenant B
    owner_name = unique("owner-money")
    owner, job_id, entry_id = tenant_with_data(stack, owner_name)
    intruder_name = unique("intruder-money")
    intruder = stack.new_tenant(intruder_name, scopes=("admin",), balance=Decimal(5))

    with signed_in(stack, key_of(intruder)) as console:
        # When B reads its pages and files, Then none of A's data is in them
        for path in (
            "/console/money",
            "/console/money/ledger.csv",
            "/console/senders",
            "/console/opt-outs",
            "/console/opt-outs/export",
        ):
            response = console.get(path)
            assert response.status_code == 200, path
            assert "7400" not in response.text and "777" not in response.text, path
            assert "****" not in response.text, path
            assert f"#{job_id}<" not in response.text and "1,000.00" not in response.text, path
        assert '"충전","5.00","5.00"' in console.get("/console/money/ledger.csv").text
        # and a search by A's number, whole or its last four digits, finds nothing
        for search in ("010-7400-5678", "5678"):
            found = console.get("/console/opt-outs", params={"phone": search})
            assert found.status_code == 200 and "목록에 없습니다" in found.text
            assert "****" not in found.text

        # When B removes A's opt-out entry by its id, Then it is not found and stays on A's list
        token = page_token(console)
        removed = console.post(f"/console/opt-outs/{entry_id}/remove", data={"csrf_token": token})
        assert removed.status_code == 303 and removed.headers["location"].endswith("notice=missing")

        # When B pages with a cursor of A's ledger, Then it is refused as a foreign cursor
        with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
            owner_id = tenant_id_by_name(conn, owner_name)
            for _ in range(60):
                billing.top_up(conn, owner_id, Decimal(1), memo="page filler")
        with signed_in(stack, key_of(owner)) as owners_console:
            first = owners_console.get("/console/money")
            assert "다음 페이지" in first.text
            next_url = first.text.split('class="pager"><a href="')[1].split('"')[0].replace("&amp;", "&")
            second = owners_console.get(next_url)
            assert second.status_code == 200 and "page filler" in second.text
        foreign = console.get(next_url)
        assert foreign.status_code == 422 and "cursor" in foreign.text
    assert owner.get("/v1/opt-outs").json()["total"] == 1
