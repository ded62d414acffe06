"""The console enforces the API's scopes, over HTTP against the running API.

Given a tenant's finished job, when an operator signs in to the console with a key that lacks
the scope the API would ask for the same thing (``read`` to see jobs, results, exports,
statements; ``send`` to cancel, resume or resend), then every such console page and form answers
403 with a Korean page naming the missing permission, and shows none of the job's data.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from api import console
from api.console import search
from api.console.routes import router
from tests.security.support import another_key, csrf_token, signed_in, unique
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

#: Console routes open to anyone (sign-in) or to any signed-in key (sign-out, the bare redirect).
UNSCOPED = {
    ("GET", "/console"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("POST", "/console/logout"),
}
#: The routers of the job pages' concern: the history, the job pages, the recipient search.
ROUTES = [*router.routes, *search.router.routes]
#: Query strings that reach other formats of the same pages.
VARIANTS = {
    "/console/jobs/{job_id}/export": ("?format=csv", "?format=xlsx"),
    "/console/jobs/{job_id}/statement": ("", "?format=pdf"),
    "/console/recipients": ("", "?phone=010-9300-1111"),
}


def console_routes(method: str) -> list[str]:
    """Every console route of ``method`` that needs a scope, as the router declares them (so a
    page added later is checked too)."""
    return [
        route.path
        for route in ROUTES
        if isinstance(route, APIRoute) and method in route.methods and (method, route.path) not in UNSCOPED
    ]


def finished_job(stack: Stack, tenant: str) -> tuple[httpx.Client, int]:
    """A new tenant (every scope) and its finished job of two recipients with member ids."""
    owner = stack.new_tenant(tenant, scopes=("admin",))
    response = owner.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "권한 확인",
            "recipients": [
                {"phone": "010-9300-1111", "member_id": "member-secret-1"},
                {"phone": "010-9300-2222", "member_id": "member-secret-2"},
            ],
        },
    )
    assert response.status_code == 202, response.text
    job_id = int(response.json()["job_id"])
    wait_finished(stack, owner, job_id)
    return owner, job_id


def test_a_send_only_key_sees_no_console_page_that_shows_data(stack: Stack) -> None:
    # Given a tenant's finished job, and a key of the tenant with the 'send' scope only
    tenant = unique("scope-send-only")
    _, job_id = finished_job(stack, tenant)
    key = another_key(stack, tenant, ("send",))
    pages = [
        path.format(job_id=job_id) + query
        for path in console_routes("GET")
        for query in VARIANTS.get(path, ("",))
    ]
    assert "/console/jobs" in pages and f"/console/jobs/{job_id}/progress" in pages

    # When the key signs in to the console and opens every page that reads something
    with signed_in(stack, key) as console:
        for page in pages:
            response = console.get(page)

            # Then each is refused with 403, naming the missing 'read' permission in Korean
            assert response.status_code == 403, (page, response.status_code, response.text[:200])
            if page.endswith("/progress"):
                assert problem(response)["code"] == "forbidden"
            else:
                assert "권한이 없습니다" in response.text and "조회(read)" in response.text, page
            # And none of the job's data is in it: no number, masked or not, no member id
            assert "9300" not in response.text and "****" not in response.text, page
            assert "member-secret" not in response.text, page

    # And the API refuses the same key the same data, as it always did
    with httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {key}"}) as api:
        assert api.get(f"/v1/jobs/{job_id}").status_code == 403
        assert api.get(f"/v1/jobs/{job_id}/recipients").status_code == 403


def test_a_read_only_key_reads_but_cannot_cancel_resume_or_resend(stack: Stack) -> None:
    # Given a tenant's finished job, and a key of the tenant with the 'read' scope only
    tenant = unique("scope-read-only")
    owner, job_id = finished_job(stack, tenant)
    key = another_key(stack, tenant, ("read",))
    jobs_before = len(owner.get("/v1/jobs").json()["jobs"])

    with signed_in(stack, key) as console:
        # When it opens the job page, Then it sees the job (masked), without the forms it may not use
        page = console.get(f"/console/jobs/{job_id}")
        assert page.status_code == 200 and "010-****-1111" in page.text
        assert 'id="resend-form"' not in page.text and 'id="cancel-form"' not in page.text
        token = csrf_token(console, job_id)

        # When it posts every form that changes a job anyway, with the session's CSRF token
        actions = console_routes("POST")
        assert {f"/console/jobs/{{job_id}}/{a}" for a in ("cancel", "resume", "resend")} <= set(actions)
        for action in actions:
            response = console.post(action.format(job_id=job_id), data={"csrf_token": token})

            # Then each is refused with 403, naming the missing 'send' permission in Korean
            assert response.status_code == 403, (action, response.text[:200])
            assert "발송(send)" in response.text

    # And nothing was done: no new job (a resend), the job as it was
    assert len(owner.get("/v1/jobs").json()["jobs"]) == jobs_before
    assert owner.get(f"/v1/jobs/{job_id}").json()["status"] in ("completed", "partially_failed", "failed")


def test_every_scoped_console_page_and_form_uses_the_apis_table() -> None:
    # Given the console's routes (every router it installs, the audit log's included), When
    # their dependencies are read, Then every one that is not sign-in or sign-out asks
    # `api.scopes` (through session_for) for its actions' scopes
    app = FastAPI()
    console.install(app)
    # FastAPI includes a router as one entry, which keeps the router it was made from.
    routes = [
        route
        for entry in app.routes
        for route in (entry.original_router.routes if hasattr(entry, "original_router") else [entry])
    ]
    assert {"/console/jobs", "/console/audit"} <= {getattr(route, "path", "") for route in routes}
    for route in routes:
        if not isinstance(route, APIRoute) or (sorted(route.methods)[0], route.path) in UNSCOPED:
            continue
        names = {dependency.call.__name__ for dependency in route.dependant.dependencies if dependency.call}
        assert "scoped_session" in names, (route.path, names)
