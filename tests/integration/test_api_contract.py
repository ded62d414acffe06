"""The API's contract: every error is an RFC 9457 problem with the schema the OpenAPI document
publishes, every answer carries a request id (logged too), and no request body field is ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import psycopg
import pytest

from engine.accounts.platform_keys import create_platform_key
from tests.support.problems import PROBLEM_TYPE, problem
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(stack: Stack) -> httpx.Client:
    return stack.new_tenant("contract", scopes=("send", "read", "admin"))


@pytest.fixture(scope="module")
def problem_schema(stack: Stack) -> dict[str, Any]:
    spec = httpx.get(f"{stack.settings.api_url}/openapi.json").json()
    return dict(spec["components"]["schemas"]["Problem"])


def job(**change: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "sender": SENDER,
        "body": "안녕하세요",
        "recipients": [{"phone": "01012345678"}],
    } | change


# -- problems -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/no-such-thing", 404, "not_found"),
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/v1/jobs", 405, "method_not_allowed"),
        ("PUT", "/v1/jobs/1", 405, "method_not_allowed"),
        ("GET", "/v1/jobs/not-a-number", 422, "invalid"),
        ("GET", "/v1/jobs/999999999", 404, "not_found"),
    ],
)
def test_unknown_routes_wrong_methods_and_bad_parameters_answer_a_problem(
    client: httpx.Client, problem_schema: dict[str, Any], method: str, path: str, status: int, code: str
) -> None:
    """Given a signed-in tenant
    When it calls a route that does not exist, with a method the route does not take, or with a
    path parameter of the wrong type
    Then the answer is an application/problem+json problem of the published schema, with code"""
    response = client.request(method, path)
    assert response.status_code == status, response.text
    body = problem(response)
    jsonschema.validate(body, problem_schema)
    assert body["code"] == code and body["title"]
    if status == 405:
        # Every method of the path, not just the first route's
        assert response.headers["allow"] == ("GET, POST" if path == "/v1/jobs" else "GET")
    if path == "/v1/jobs/not-a-number":
        assert body["field"] == "job_id"


def test_a_missing_key_and_a_refused_field_answer_problems(stack: Stack, client: httpx.Client) -> None:
    """Given no key, then a job with a bad sender
    When they are sent
    Then 401 (WWW-Authenticate: Bearer) and 422 are problems naming what is wrong"""
    anonymous = httpx.get(f"{stack.settings.api_url}/v1/jobs")
    assert anonymous.status_code == 401
    assert problem(anonymous)["code"] == "unauthorised" and anonymous.headers["www-authenticate"] == "Bearer"
    invalid = client.post("/v1/jobs", json=job(sender="not a number"))
    assert invalid.status_code == 422
    assert problem(invalid)["field"] == "sender"


def test_the_console_keeps_its_html_pages(stack: Stack) -> None:
    """Given the operator console
    When a path under /console that is no page is asked for
    Then the console's own HTML "not found" page answers, not a problem"""
    response = httpx.get(f"{stack.settings.api_url}/console/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_the_openapi_document_publishes_the_problem_for_every_error(stack: Stack) -> None:
    """Given the OpenAPI document
    When every operation's answers are read
    Then each error status, 402 and 409 where an operation answers them, is a Problem in
    application/problem+json, 429 and 503 with Retry-After, and FastAPI's own error shape is gone"""
    spec = httpx.get(f"{stack.settings.api_url}/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    operations = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    assert len(operations) > 10
    for method, path, operation in operations:
        responses = operation["responses"]
        for status in ("401", "403", "404", "413", "422", "429", "503"):
            content = responses[status]["content"]
            assert content == {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                method,
                path,
                status,
            )
        assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["503"]["headers"]
        for status, response in responses.items():
            assert "X-Request-Id" in response["headers"], (method, path, status)
    submit = spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"402", "409"} <= submit.keys()
    assert "409" in spec["paths"]["/v1/jobs/{job_id}/cancel"]["post"]["responses"]


def test_an_uncovered_balance_is_a_402_problem_with_the_amounts(stack: Stack) -> None:
    """Given a tenant with no points
    When it submits a job
    Then 402, a problem with the points needed and available as decimal strings"""
    poor = stack.new_tenant("contract-poor", balance=Decimal(0))
    response = poor.post("/v1/jobs", json=job())
    assert response.status_code == 402, response.text
    body = problem(response)
    assert body["code"] == "insufficient_balance"
    assert isinstance(body["needed"], str) and body["available"] in ("0", "0.00")


# -- request ids ----------------------------------------------------------------------------------


def test_a_request_id_is_echoed_or_made_and_logged(stack: Stack, client: httpx.Client) -> None:
    """Given requests with a sane X-Request-Id, an unacceptable one and none
    When they are answered
    Then the sane one is echoed, the others get a new id (32 hex digits), and the API's log lines
    of the request carry the id"""
    given = f"contract-{uuid.uuid4().hex}"
    job_id = int(client.post("/v1/jobs", json=job(), headers={"X-Request-Id": given}).json()["job_id"])
    assert client.get(f"/v1/jobs/{job_id}", headers={"X-Request-Id": given}).headers["x-request-id"] == given
    for unacceptable in ("a" * 129, "has space", "semi;colon", ""):
        made = client.get("/v1/jobs", headers={"X-Request-Id": unacceptable}).headers["x-request-id"]
        assert len(made) == 32 and int(made, 16) >= 0
    made = client.get("/v1/jobs").headers["x-request-id"]
    assert made != client.get("/v1/jobs").headers["x-request-id"]
    log = stack.processes.log_dir / "api.log"
    deadline = time.monotonic() + 10
    while True:
        records = [
            json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("{")
        ]
        mine = [r for r in records if r.get("request_id") == given]
        if any(r.get("job_id") == job_id for r in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(r.get("job_id") == job_id and r["message"] == "job accepted" for r in mine), mine


# -- unknown fields -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job(callbackUrl="https://example.com/hook"), "callbackUrl"),
        (
            {k: v for k, v in job().items() if k != "recipients"} | {"recipient": [{"phone": "01012345678"}]},
            "recipient",
        ),
        (job(recipients=[{"phone": "01012345678"}, {"phon": "01012345679"}]), "recipients[1].phon"),
        (job(recipients=[{"phone": "01012345678", "name": "홍길동", "age": 3}]), "recipients[0].age"),
        (
            {
                "channel": "kakao",
                "sender": SENDER,
                "template_code": "ORDER_SHIPPED",
                "fallback": {"channel": "lms", "body": "배송 안내", "titel": "안내"},
                "recipients": [{"phone": "01012345678"}],
            },
            "fallback.titel",
        ),
    ],
)
def test_a_job_with_an_unknown_field_is_refused_naming_it(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    """Given a job request with a field balsong does not know (a typo, or a feature it lacks)
    When it is submitted
    Then it is refused, 422 unknown_field naming the first such field, and no job is made"""
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    refused = problem(response)
    assert (refused["code"], refused["field"]) == ("unknown_field", field)
    if field == "recipients[0].age":
        assert "age, name" in refused["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/senders", {"number": "02-555-1234", "memo": "x"}, "memo"),
        ("/v1/opt-outs", {"phones": ["01012345678"], "source": "shop"}, "source"),
        ("/v1/keys", {"scopes": ["read"], "name": "ci"}, "name"),
        ("/v1/orders", {"orders": [], "shop": "a"}, "shop"),
        (
            "/v1/orders",
            {
                "order_number": "O-1",
                "member_id": "M",
                "ordered_at": "2026-11-23T09:00:00",
                "amount": 1,
                "total": 1,
            },
            "total",
        ),
        (
            "/v1/orders",
            {
                "order_number": "O-1",
                "member_id": "M",
                "ordered_at": "2026-11-23T09:00:00",
                "amount": 1,
                "lines": [{"product_number": "P", "price": 1, "sku": "S"}],
            },
            "lines[0].sku",
        ),
    ],
)
def test_every_other_body_refuses_unknown_fields(
    client: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    """Given a request body with a field its route does not take
    When it is sent
    Then 422 unknown_field names it, and nothing is done"""
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert (problem(response)["code"], problem(response)["field"]) == ("unknown_field", field)


def test_resends_and_top_ups_refuse_unknown_fields(stack: Stack, client: httpx.Client) -> None:
    """Given a finished job's resend with a typo, and a platform top-up with an extra field
    When they are sent
    Then both are 422 unknown_field naming it"""
    job_id = submit_sms(client, "재발송", ["01055550001"])
    resend = client.post(f"/v1/jobs/{job_id}/resend", json={"reason": ["carrier_3015"]})
    assert resend.status_code == 422, resend.text
    assert (problem(resend)["code"], problem(resend)["field"]) == ("unknown_field", "reason")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        platform_key = create_platform_key(conn, f"contract-{uuid.uuid4().hex[:6]}")
    top_up = httpx.post(
        f"{stack.settings.api_url}/v1/balance/top-ups",
        json={"tenant": "contract", "amount": "10", "currency": "KRW"},
        headers={"Authorization": f"Bearer {platform_key}"},
    )
    assert top_up.status_code == 422, top_up.text
    assert (problem(top_up)["code"], problem(top_up)["field"]) == ("unknown_field", "currency")
