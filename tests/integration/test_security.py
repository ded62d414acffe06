"""Security through the running API: scopes, tenant isolation, key rotation, intake limits.

Given the whole of balsong running, when callers use keys without the scope a route needs,
another tenant's objects, rotated or revoked keys, oversized bodies, or more submissions than
their limits allow, then each is refused with the right status and nothing leaks.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

from engine.accounts.tenants import create_api_key, tenant_id_by_name
from engine.intake.intake_limits import set_limits
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration

#: Console pages that take a job id (the console is left out of the OpenAPI document).
CONSOLE_JOB_PAGES = (
    "/console/jobs/{job_id}",
    "/console/jobs/{job_id}/progress",
    "/console/jobs/{job_id}/export",
    "/console/jobs/{job_id}/statement",
)


def openapi_routes(client: httpx.Client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def call(client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    return client.request(method, path, **kw)


def test_every_route_with_an_object_id_hides_other_tenants_objects(stack: Stack) -> None:
    # Given tenant B's finished job and API key, and tenant A with every scope
    owner = stack.new_tenant("iso-owner", scopes=("send", "read", "admin", "export:unmasked"))
    job_id = submit_sms(owner, "격리", ["010-9100-0001", "010-12"])
    wait_finished(stack, owner, job_id)
    owner_key_id = owner.get("/v1/keys").json()["keys"][0]["id"]
    intruder = stack.new_tenant("iso-intruder", scopes=("send", "read", "admin", "export:unmasked"))

    # When A calls every API route that names an object, with B's ids
    routes = [(m, p) for m, p in openapi_routes(intruder) if "{" in p]
    assert routes, "the OpenAPI document lists no route with an object id"
    checked = []
    for method, template in routes:
        path = template.replace("{job_id}", str(job_id)).replace("{key_id}", str(owner_key_id))
        if "{" in path:
            continue  # not a tenant's object (e.g. a phone number on A's own opt-out list)
        response = call(intruder, method, path, json={})
        checked.append((method, template, response.status_code))
        # Then each answers 404, as if the object did not exist
        assert response.status_code == 404, (method, template, response.text)
    assert any("{job_id}" in t for _, t, _ in checked) and any("{key_id}" in t for _, t, _ in checked)

    # And the console, signed in as A, finds none of B's job pages
    key = str(intruder.headers["Authorization"]).removeprefix("Bearer ")
    with httpx.Client(base_url=stack.settings.api_url, timeout=30) as browser:
        signed_in = browser.post("/console/login", data={"api_key": key}, follow_redirects=False)
        assert signed_in.status_code == 303
        for template in CONSOLE_JOB_PAGES:
            response = browser.get(template.format(job_id=job_id))
            assert response.status_code == 404, (template, response.text[:200])
    # And B's key still works (A could not revoke or rotate it)
    assert owner.get(f"/v1/jobs/{job_id}").status_code == 200


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        (("read",), "POST", "/v1/jobs", False),
        (("send",), "GET", "/v1/jobs", False),
        (("send", "read"), "POST", "/v1/balance/top-ups", False),
        (("send", "read"), "GET", "/v1/keys", False),
        (("send", "read"), "POST", "/v1/senders", False),
        (("read",), "POST", "/v1/opt-outs", False),
        (("send", "read"), "GET", "/v1/jobs/{job_id}/export?unmasked=true", False),
        (("read", "export:unmasked"), "GET", "/v1/jobs/{job_id}/export?unmasked=true", True),
        (("admin",), "POST", "/v1/balance/top-ups", False),
        (("admin",), "POST", "/v1/senders", True),
    ],
)
def test_each_route_needs_its_scope(
    stack: Stack, scopes: tuple[str, ...], method: str, path: str, allowed: bool
) -> None:
    # Given a job of the tenant, and a key of that tenant with only some scopes
    name = f"scopes-{uuid.uuid4().hex[:8]}"
    full = stack.new_tenant(name, scopes=("admin",))
    job_id = submit_sms(full, "권한", ["010-9200-0001"])
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        key = create_api_key(conn, tenant_id_by_name(conn, name), scopes)
    with httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {key}"}) as limited:
        body = {"amount": "1"} if "top-ups" in path else {"phones": ["010-9200-0002"]}
        if path == "/v1/jobs" and method == "POST":
            body = {
                "channel": "sms",
                "sender": SENDER,
                "body": "x",
                "recipients": [{"phone": "010-9200-0003"}],
            }
        if path == "/v1/senders":
            body = {"number": "02-999-9999"}
        response = call(limited, method, path.format(job_id=job_id), json=body)

    # Then the key is refused with 403 exactly when it lacks the scope
    if allowed:
        assert response.status_code < 400, response.text
    else:
        assert response.status_code == 403, response.text
        assert "scope" in problem(response)["detail"]


def test_a_rotated_key_stops_working_and_its_replacement_works(stack: Stack) -> None:
    # Given a tenant's admin key and a second key
    admin = stack.new_tenant("rotation", scopes=("admin",))
    made = admin.post("/v1/keys", json={"scopes": ["send", "read"]})
    assert made.status_code == 201, made.text
    old_key = made.json()["key"]
    old_id = next(k["id"] for k in admin.get("/v1/keys").json()["keys"] if old_key.startswith(k["prefix"]))
    with httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {old_key}"}) as old:
        assert old.get("/v1/jobs").status_code == 200

        # When the second key is rotated
        rotated = admin.post(f"/v1/keys/{old_id}/rotate")
        assert rotated.status_code == 201, rotated.text
        new_key = rotated.json()["key"]

        # Then the old key is refused and the new one works with the same scopes
        assert old.get("/v1/jobs").status_code == 401
    with httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {new_key}"}) as new:
        assert new.get("/v1/jobs").status_code == 200
        assert new.post("/v1/balance/top-ups", json={"amount": "1"}).status_code == 403
        # When it is revoked, then it is refused too
        new_id = next(
            k["id"] for k in admin.get("/v1/keys").json()["keys"] if new_key.startswith(k["prefix"])
        )
        assert admin.delete(f"/v1/keys/{new_id}").status_code == 200
        assert new.get("/v1/jobs").status_code == 401
    # And no key is ever shown again
    assert all("key" not in k for k in admin.get("/v1/keys").json()["keys"])


def test_oversized_bodies_are_refused_before_they_are_read_whole(stack: Stack) -> None:
    client = stack.new_tenant("oversized")
    big = b'{"phones": ["' + b"0" * (2 * 1024 * 1024) + b'"]}'
    response = client.post("/v1/opt-outs", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert problem(response)["code"] == "request_too_large"

    # And without a Content-Length (chunked), it is cut off as it arrives
    def chunks() -> Any:
        for _ in range(64):
            yield b"x" * 65536

    chunked = client.post("/v1/opt-outs", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413


def test_a_tenant_over_its_intake_limits_is_told_to_wait(stack: Stack) -> None:
    # Given a tenant limited to 2 submissions per second and 5 recipients per day
    client = stack.new_tenant("limited")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        set_limits(conn, tenant_id_by_name(conn, "limited"), requests_per_second=2, recipients_per_day=5)

    # When it submits a job of 3, then another of 3, then it passes its daily recipients
    first = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "한도",
            "recipients": [{"phone": f"010-9300-000{i}"} for i in range(3)],
        },
    )
    assert first.status_code == 202, first.text
    second = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "한도",
            "recipients": [{"phone": f"010-9300-001{i}"} for i in range(3)],
        },
    )
    assert second.status_code == 429
    assert problem(second)["code"] == "daily_recipient_limit"
    assert int(second.headers["Retry-After"]) > 0

    # When it fires ten submissions at once, then those past 2 per second are told to slow down
    codes = [client.post("/v1/jobs", json={}).status_code for _ in range(10)]
    assert 429 in codes
    assert codes.count(422) <= 4  # at most 2 per second reached validation (the loop spans < 2 s)
