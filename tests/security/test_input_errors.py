"""Hostile input through the running API: every input error is a 422 naming the field, never a 5xx.

Given the whole of balsong running, when every route of the FastAPI app (read from the app
itself, so a new route is walked too) is called with control characters in its query and path
parameters, dates outside the years balsong serves, forged and altered cursors, control
characters in JSON string fields and JSON nested too deep, then none answers 5xx, and each
answers 422 naming the field where the route takes that input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import psycopg
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount

from engine.accounts.platform_keys import create_platform_key
from engine.config import Settings
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration

#: Control characters refused everywhere (C0, DEL, C1), and each written as text.
CONTROL = ("\x00", "a\x01b", "\x1f", "\x7f", "\x85")
#: Date and time query parameters, with the form each takes.
DATE_PARAMETERS = {
    "created_from": "day",
    "created_to": "day",
    "sent_from": "instant",
    "sent_to": "instant",
    "month": "month",
    # The statistics' range (GET /v1/stats, /console/stats): KST days.
    "from": "day",
    "to": "day",
}
OUT_OF_RANGE = {
    "day": ("9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01"),
    "instant": ("0001-01-01T00:00:00", "9999-12-31T23:59:59-09:00", "9999-12-31T23:59:59", "1970-01-01"),
    "month": ("9999-12", "0001-01", "2101-01", "１９９９-１２"),
}
#: Values no parameter of any route may answer 5xx to.
HOSTILE = (
    "",
    "²",
    "9" * 5000,
    "-1",
    "99999999999999999999",
    "커서",
    "🙂",
    "' OR 1=1 --",
    "x" * 4000,
    *OUT_OF_RANGE["day"],
    *OUT_OF_RANGE["instant"],
    *OUT_OF_RANGE["month"],
)
#: Routes that take a JSON body, and a valid body for each (the field-level cases vary it).
JSON_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/jobs"): {
        "channel": "lms",
        "sender": SENDER,
        "title": "제목",
        "body": "#{name}님 안녕하세요",
        "recipients": [{"phone": "010-5000-0001", "variables": {"name": "홍길동"}, "member_id": "M1"}],
    },
    ("POST", "/v1/jobs/{job_id}/resend"): {"reasons": ["invalid_phone"]},
    ("POST", "/v1/balance/top-ups"): {"tenant": "input-tenant", "amount": "1", "memo": "memo"},
    ("POST", "/v1/senders"): {"number": "02-1234-9999"},
    # (No string: a public https URL cannot resolve on a machine without the internet.)
    ("PUT", "/v1/callback"): {"url": None},
    ("POST", "/v1/opt-outs"): {"phones": ["010-5000-0002"]},
    ("POST", "/v1/keys"): {"scopes": ["read"]},
    ("POST", "/v1/orders"): {
        "order_number": "O-1",
        "member_id": "M1",
        "ordered_at": "2026-11-23T09:00:00+09:00",
        "amount": 1000,
    },
    ("POST", "/v1/carriers/{carrier}/reports"): {
        "hooksId": "h",
        "event": "MESSAGE_RESULT_UPDATE",
        "hooks": [],
    },
}
#: Routes that change something and take no JSON body (the console's take forms).
NO_JSON_BODY = {
    ("POST", "/v1/jobs/{job_id}/cancel"),
    ("POST", "/v1/jobs/{job_id}/resume"),
    ("POST", "/v1/jobs/{job_id}/callbacks/replay"),
    ("POST", "/v1/keys/{key_id}/rotate"),
    ("DELETE", "/v1/keys/{key_id}"),
    ("DELETE", "/v1/opt-outs/{phone}"),
}
WEBHOOK_SIGNATURE = "balsong-local-webhook"
#: Routes only a platform key may call.
PLATFORM_ROUTES = {"/v1/balance/top-ups"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    descriptions: dict[str, str]

    @property
    def console(self) -> bool:
        return self.path.startswith("/console")


def app_routes() -> list[Route]:
    """Every route of the app the API process serves, with its path and query parameters."""
    from api.app import create_app

    found = []
    for route in _flat(create_app().routes):
        original = getattr(route, "original_route", route)
        if isinstance(original, APIRoute):
            path_params = [field.alias for field in _params(original.dependant, "path_params")]
            query = _params(original.dependant, "query_params")
            for method in sorted(route.methods):
                found.append(
                    Route(
                        method,
                        route.path,
                        tuple(dict.fromkeys(path_params)),
                        tuple(dict.fromkeys(field.alias for field in query)),
                        {field.alias: str(field.field_info.description or "") for field in query},
                    )
                )
        elif isinstance(route, Mount):
            found.append(Route("GET", route.path + "/{path}", ("path",), (), {}))
    return found


def _flat(routes: list[Any]) -> Iterator[Any]:
    """The app's routes, those of included routers too (FastAPI includes routers lazily: each
    is one entry whose ``effective_candidates`` are its routes, with their prefixed paths)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _flat(route.effective_candidates())
        else:
            yield route


def _params(dependant: Dependant, kind: str) -> list[Any]:
    """The route's parameters of ``kind``, its dependencies' included."""
    fields = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        fields.extend(_params(sub, kind))
    return fields


@pytest.fixture(scope="module")
def routes(settings: Settings) -> list[Route]:
    # After the settings fixture: building the app installs the broker from the settings.
    return app_routes()


@dataclass
class World:
    """A tenant with data on every list, a console session, and a second tenant."""

    client: httpx.Client
    console: httpx.Client
    other: httpx.Client
    #: A platform key's client: top-ups are the platform's (a tenant's key gets 403 first).
    platform: httpx.Client
    job_id: int
    key_id: int
    values: dict[str, str]

    def path(self, route: Route, **given: str) -> str:
        path = route.path
        for name in route.path_params:
            path = path.replace("{" + name + "}", given.get(name, self.values.get(name, "1")))
        return path

    def caller(self, route: Route) -> httpx.Client:
        if route.path in PLATFORM_ROUTES:
            return self.platform
        return self.console if route.console else self.client


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    client = stack.new_tenant(
        f"input-{uuid.uuid4().hex[:6]}", scopes=("send", "read", "admin", "export:unmasked")
    )
    job_id = submit_sms(client, "입력 검사", ["010-5100-0001", "010-5100-0002", "010-12"])
    submit_sms(client, "두 번째", ["010-5100-0003"])
    wait_finished(stack, client, job_id)
    assert client.post("/v1/opt-outs", json={"phones": ["010-5100-0008", "010-5100-0009"]}).status_code == 200
    spare = client.post("/v1/keys", json={"scopes": ["read"]})
    assert spare.status_code == 201
    key_id = max(key["id"] for key in client.get("/v1/keys").json()["keys"])
    other = stack.new_tenant(f"input-other-{uuid.uuid4().hex[:6]}")
    submit_sms(other, "다른 고객사", ["010-5200-0001"])
    submit_sms(other, "다른 고객사 2", ["010-5200-0002"])
    console = httpx.Client(base_url=stack.settings.api_url, timeout=60)
    signed_in = console.post(
        "/console/login", data={"api_key": client.headers["Authorization"].split()[1]}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    values = {"job_id": str(job_id), "key_id": str(key_id), "phone": "01051000007", "carrier": "nhn_sms"}
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        platform_key = create_platform_key(conn, f"input-{uuid.uuid4().hex[:6]}")
    platform = httpx.Client(
        base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {platform_key}"}, timeout=60
    )
    yield World(client, console, other, platform, job_id, key_id, values)
    console.close()
    platform.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    return problem(response)


def assert_422_naming(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, (response.request.url, response.status_code, response.text[:300])
    assert error_of(response).get("field") == field, (response.request.url, response.text[:300])


# -- query and path parameters --------------------------------------------------------------------


def test_the_walk_finds_every_kind_of_route(routes: list[Route]) -> None:
    # Given the app's routes; Then the walk sees API routes, console pages and their parameters
    routes = routes
    paths = {route.path for route in routes}
    assert {"/v1/jobs", "/v1/jobs/{job_id}/recipients", "/console/jobs/{job_id}", "/v1/opt-outs"} <= paths
    assert any("cursor" in route.query_params for route in routes if route.console)


def test_a_control_character_in_any_query_parameter_is_a_422_naming_it(
    world: World, routes: list[Route]
) -> None:
    checked = 0
    for route in routes:
        for name in route.query_params:
            for value in CONTROL:
                # When the parameter carries a control character
                response = world.caller(route).request(route.method, world.path(route), params={name: value})
                # Then the route is not reached: 422 naming the parameter
                assert_422_naming(response, name)
                assert error_of(response)["code"] == "control_character"
                checked += 1
    assert checked > 50


def test_a_control_character_in_a_query_parameters_name_is_a_422(world: World) -> None:
    response = world.client.get("/v1/jobs?st%00atus=1")
    assert response.status_code == 422
    assert "\x00" not in response.text


def test_a_control_character_in_any_path_parameter_is_a_422_naming_it(
    world: World, routes: list[Route]
) -> None:
    for route in routes:
        for name in route.path_params:
            for value in CONTROL:
                # When the path parameter carries a control character (percent-encoded, as sent)
                path = world.path(route, **{name: quote(value, safe="")})
                response = world.caller(route).request(route.method, path)
                # Then 422 naming it
                assert_422_naming(response, name)


def test_a_control_character_in_a_console_form_field_is_a_422(world: World) -> None:
    # Given the console's resend form with a NUL reason, and one with a NUL one-time token
    for fields in ({"reason": "\x00", "csrf_token": "x"}, {"request_token": "a\x00", "csrf_token": "x"}):
        response = world.console.post(f"/console/jobs/{world.job_id}/resend", data=fields)
        # Then 422 naming the field, before the page runs
        assert_422_naming(response, next(iter(fields)))


def test_a_non_ascii_csrf_token_is_refused_not_a_5xx(world: World) -> None:
    response = world.console.post(f"/console/jobs/{world.job_id}/cancel", data={"csrf_token": "토큰"})
    assert response.status_code == 403


def test_every_get_parameter_answers_hostile_values_without_a_5xx(world: World, routes: list[Route]) -> None:
    for route in routes:
        if route.method != "GET":
            continue
        for name in route.query_params:
            for value in HOSTILE:
                response = world.caller(route).get(world.path(route), params={name: value})
                assert response.status_code < 500, (route.path, name, value[:40], response.text[:300])
        for name in route.path_params:
            for value in ("9" * 30, "-1", "0", "²", "9" * 5000):
                response = world.caller(route).get(world.path(route, **{name: quote(value, safe="")}))
                assert response.status_code < 500, (route.path, name, value[:40], response.text[:300])


def test_every_date_parameter_is_known_to_this_test(routes: list[Route]) -> None:
    # Given every query parameter whose description speaks of a date or time
    for route in routes:
        for name, description in route.descriptions.items():
            if any(word in description for word in ("YYYY", "ISO 8601")):
                # Then its out-of-range values are checked below
                assert name in DATE_PARAMETERS, (route.path, name)


def test_dates_outside_the_served_years_are_a_422_naming_the_field(world: World, routes: list[Route]) -> None:
    checked = 0
    for route in routes:
        for name in route.query_params:
            if name not in DATE_PARAMETERS or route.method != "GET":
                continue
            for value in OUT_OF_RANGE[DATE_PARAMETERS[name]]:
                response = world.caller(route).get(world.path(route), params={name: value})
                if route.console:
                    # The console shows the error on its page
                    assert response.status_code == 422, (route.path, name, value)
                else:
                    assert_422_naming(response, name)
                checked += 1
    assert checked >= 30


def test_a_console_page_with_an_unknown_filter_value_is_a_422_page(world: World) -> None:
    # Given the job page and the history with a status that does not exist
    for path in (f"/console/jobs/{world.job_id}", "/console/jobs"):
        response = world.console.get(path, params={"status": "bogus"})
        # Then the page says so (422), it does not fail
        assert response.status_code == 422, response.text[:300]
        assert "status" in response.text


# -- cursors --------------------------------------------------------------------------------------


def first_page_cursor(client: httpx.Client, path: str) -> str:
    page = client.get(path, params={"limit": 1})
    assert page.status_code == 200, page.text
    cursor = page.json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def test_a_cursor_this_api_returned_pages_on(world: World) -> None:
    for path, key in (
        ("/v1/jobs", "jobs"),
        (f"/v1/jobs/{world.job_id}/recipients", "recipients"),
        ("/v1/opt-outs", "opt_outs"),
    ):
        # Given the first page's next_cursor
        first = world.client.get(path, params={"limit": 1}).json()
        # When it is sent back
        second = world.client.get(path, params={"limit": 1, "cursor": first["next_cursor"]})
        # Then the next page comes, not the first again
        assert second.status_code == 200, second.text
        assert second.json()[key] and second.json()[key] != first[key]


def test_forged_altered_and_foreign_cursors_are_a_422_naming_cursor(
    world: World, routes: list[Route]
) -> None:
    genuine = first_page_cursor(world.client, "/v1/jobs")
    position, _, mac = genuine.partition(".")
    altered_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    foreign_tenant = first_page_cursor(world.other, "/v1/jobs")
    recipients_cursor = first_page_cursor(world.client, f"/v1/jobs/{world.job_id}/recipients")
    forged = [
        "²",
        "9" * 5000,
        "1",
        "MTIz",
        "abc.def",
        "커서.커서",
        "x" * 600,
        f"{position}.{altered_mac}",
        f"{position[:-2]}.{mac}",
        foreign_tenant,
    ]
    routes = [route for route in routes if "cursor" in route.query_params and route.method == "GET"]
    assert len(routes) >= 5
    for route in routes:
        # A cursor of another list is foreign here too (the jobs list's, or the recipients')
        foreign_list = recipients_cursor if "{job_id}" not in route.path else genuine
        for cursor in [*forged, foreign_list]:
            response = world.caller(route).get(world.path(route), params={"cursor": cursor})
            if route.console:
                assert response.status_code == 422, (route.path, cursor[:40], response.text[:300])
                assert "cursor" in response.text
            else:
                assert_422_naming(response, "cursor")


# -- JSON bodies ----------------------------------------------------------------------------------


def json_routes(routes: list[Route]) -> list[Route]:
    return [r for r in routes if not r.console and r.method in ("POST", "PUT", "PATCH", "DELETE")]


def test_every_route_that_changes_something_is_known_to_this_test(routes: list[Route]) -> None:
    # Given the API's routes that change something; Then each is either walked with a JSON body
    # below, or known to take none (a new route must be added to one of the two)
    for route in json_routes(routes):
        assert (route.method, route.path) in JSON_BODIES or (route.method, route.path) in NO_JSON_BODY, route


def nested(depth: int) -> bytes:
    """A JSON array nested ``depth`` deep (orjson writes no more than 254)."""
    return b"[" * depth + b'"x"' + b"]" * depth


def post(world: World, route: Route, body: Any) -> httpx.Response:
    headers = {"X-Toast-Webhook-Signature": WEBHOOK_SIGNATURE, "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return world.caller(route).request(route.method, world.path(route), content=content, headers=headers)


def string_paths(value: Any, path: str = "") -> Iterator[tuple[str, list[str | int]]]:
    """The JSON path (as errors name it) and the key path of every string in ``value``."""

    def walk(node: Any, name: str, keys: list[str | int]) -> Iterator[tuple[str, list[str | int]]]:
        if isinstance(node, str):
            yield name, keys
        elif isinstance(node, dict):
            for key, item in node.items():
                yield from walk(item, f"{name}.{key}" if name else key, [*keys, key])
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{name}[{index}]", [*keys, index])

    yield from walk(value, path, [])


def replaced(value: Any, keys: list[str | int], new: Any) -> Any:
    if not keys:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[keys[0]] = replaced(value[keys[0]], keys[1:], new)  # type: ignore[index]
    return copy


def test_a_control_character_in_any_json_string_field_is_a_422_naming_it(
    world: World, routes: list[Route]
) -> None:
    checked = 0
    for route in json_routes(routes):
        body = JSON_BODIES.get((route.method, route.path))
        if body is None:
            continue
        for field, keys in string_paths(body):
            for character in ("\x00", "\x01", "\x7f", "\x9f"):
                # When one string of an otherwise valid body carries a control character
                response = post(world, route, replaced(body, keys, f"가{character}나"))
                # Then 422 naming that field
                assert_422_naming(response, field)
                checked += 1
    assert checked >= 40


def test_every_route_answers_a_hostile_json_body_without_a_5xx(world: World, routes: list[Route]) -> None:
    bodies: list[Any] = [
        b"\x00",
        b'"\\u0000"',
        b"[" * 1025 + b"]" * 1025,
        b'{"a": "\\ud800"}',
        {"\x00": 1},
        b'{"deep": ' + nested(1000) + b"}",
        [],
        None,
        "text",
    ]
    for route in json_routes(routes):
        for body in bodies:
            response = post(world, route, body)
            assert response.status_code < 500, (route.path, str(body)[:40], response.text[:300])
            if (route.method, route.path) in JSON_BODIES:
                assert response.status_code == 422, (route.path, str(body)[:40], response.text[:300])


def test_json_nested_deeper_than_the_bound_is_a_422_naming_where(world: World, routes: list[Route]) -> None:
    for route in json_routes(routes):
        body = JSON_BODIES.get((route.method, route.path))
        if body is None or route.path == "/v1/jobs":
            continue  # intake's own checks: below
        nested: Any = "x"
        for _ in range(20):
            nested = {"a": nested}
        response = post(world, route, {**body, "deep": nested})
        assert response.status_code == 422, (route.path, response.text[:300])
        assert error_of(response)["field"].startswith("deep.a"), response.text
        # orjson's own limit (1024) is a 422 too
        assert_422_naming(post(world, route, b"[" * 1025 + b"]" * 1025), "body")


# -- job intake -----------------------------------------------------------------------------------

JOB = JSON_BODIES[("POST", "/v1/jobs")]


def recipient(**fields: Any) -> dict[str, Any]:
    return {"phone": "010-5000-0001", "variables": {"name": "홍길동"}, **fields}


def test_job_fields_with_control_characters_are_a_422_naming_them(world: World) -> None:
    cases = [
        ({**JOB, "body": "#{name}\x00"}, "body"),
        ({**JOB, "title": "제목\n둘째 줄"}, "title"),
        ({**JOB, "recipients": [recipient(variables={"name": "홍\x00"})]}, "recipients[0].variables.name"),
        (
            {**JOB, "recipients": [recipient(variables={"name": "홍\x1b[31m"})]},
            "recipients[0].variables.name",
        ),
        ({**JOB, "recipients": [recipient(), recipient(member_id="M\x00")]}, "recipients[1].member_id"),
        ({**JOB, "recipients": [recipient(), recipient(phone="010\x005000\x000002")]}, "recipients[1].phone"),
        ({**JOB, "sender": "02\x001234"}, "sender"),
    ]
    for body, field in cases:
        assert_422_naming(world.client.post("/v1/jobs", json=body), field)


def test_message_text_keeps_its_tabs_and_line_breaks(world: World) -> None:
    # Given a body and a variable with tab, CR and LF, which people type and carriers deliver
    body = {
        **JOB,
        "body": "#{name}님\r\n안녕하세요\t!",
        "recipients": [recipient(variables={"name": "홍\n길동"})],
    }
    # Then the job is accepted
    response = world.client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text


def test_non_text_variable_values_are_a_422_naming_the_variable(world: World) -> None:
    for value in (nested(1000), b'{"a": 1}', b"[1]", b"true", b"null"):
        body = orjson.dumps({**JOB, "recipients": [recipient(variables={"name": "@"})]})
        body = body.replace(b'"@"', value)
        response = world.client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert_422_naming(response, "recipients[0].variables.name")
    # A number is still sent as its text
    numbered = {**JOB, "recipients": [recipient(variables={"name": 7})]}
    assert world.client.post("/v1/jobs", json=numbered).status_code == 202


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59-09:00",
        "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00-12:00",
        "2101-01-01T00:00:00",
        "１２３",
        "2026-12-01T09:00:00\x00",
    ],
)
def test_a_reservation_time_out_of_range_is_a_422_naming_scheduled_at(world: World, when: str) -> None:
    assert_422_naming(world.client.post("/v1/jobs", json={**JOB, "scheduled_at": when}), "scheduled_at")


def test_resend_reasons_and_top_up_memo_with_a_nul_are_a_422(world: World) -> None:
    resend = world.client.post(f"/v1/jobs/{world.job_id}/resend", json={"reasons": ["\x00"]})
    assert_422_naming(resend, "reasons[0]")
    memo = world.platform.post(
        "/v1/balance/top-ups", json={"tenant": "input-x", "amount": "1", "memo": "\x00"}
    )
    assert_422_naming(memo, "memo")


def test_out_of_range_months_and_days_named_in_the_review_are_a_422(world: World) -> None:
    assert_422_naming(world.client.get("/v1/statements/monthly", params={"month": "9999-12"}), "month")
    assert_422_naming(world.client.get("/v1/jobs", params={"created_to": "9999-12-31"}), "created_to")
    assert_422_naming(world.client.get("/v1/jobs", params={"cursor": "²"}), "cursor")
    assert_422_naming(world.client.get("/v1/jobs", params={"cursor": "9" * 5000}), "cursor")
    recipients = f"/v1/jobs/{world.job_id}/recipients"
    assert_422_naming(world.client.get(recipients, params={"reason": "\x00"}), "reason")
