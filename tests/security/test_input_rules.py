"""The rules behind the API's 422s, in-process: control characters, date bounds, JSON depth, cursors.

Given balsong's input rules (`engine.inputs`, `engine.cursors`), when they meet hostile values,
then each refusal is a ValidationError naming the field, and what is fine passes untouched.
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.inputs import ParameterGuard
from engine.cursors import MAX_CURSOR_LENGTH, CursorCodec
from engine.errors import ValidationError
from engine.inputs import (
    MAX_JSON_DEPTH,
    check_json,
    check_line,
    check_text,
    control_character,
    parse_day,
    parse_instant,
)
from engine.intake.intake import prepare_job

LINE_BREAKS = "\t\n\r"


@given(st.text())
def test_a_string_is_refused_exactly_when_it_has_a_control_character(value: str) -> None:
    # Given any string; Then check_line refuses it iff it has a Cc character, check_text iff
    # it has one other than tab, LF, CR
    controls = [c for c in value if unicodedata.category(c) == "Cc"]
    assert (control_character(value) is not None) == bool(controls)
    assert (control_character(value, multiline=True) is not None) == any(
        c not in LINE_BREAKS for c in controls
    )


@pytest.mark.parametrize("character", ["\x00", "\x08", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_control_character_is_refused_naming_the_field(character: str) -> None:
    for check in (check_line, check_text):
        with pytest.raises(ValidationError) as refused:
            check(f"가{character}", "memo")
        assert refused.value.field == "memo"
        assert refused.value.code == "control_character"


def test_message_text_keeps_tab_and_line_breaks_but_a_line_does_not() -> None:
    assert check_text("첫 줄\r\n둘째\t줄", "body") == "첫 줄\r\n둘째\t줄"
    with pytest.raises(ValidationError):
        check_line("제목\n", "title")


def test_json_too_deep_is_refused_where_it_gets_too_deep() -> None:
    # Given a document nested one level deeper than the bound, under "a"
    value: Any = "x"
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    with pytest.raises(ValidationError) as refused:
        check_json({"a": value})
    # Then the error names the path where the bound was reached
    assert refused.value.field == "a" + "[0]" * (MAX_JSON_DEPTH - 1)
    check_json({"a": value[0]})  # one level less passes


def test_json_control_characters_are_named_by_their_path() -> None:
    with pytest.raises(ValidationError) as refused:
        check_json({"orders": [{"lines": [{"name": "ok"}, {"name": "a\x00"}]}]})
    assert refused.value.field == "orders[0].lines[1].name"
    with pytest.raises(ValidationError) as in_key:
        check_json({"a": {"b\x00": 1}})
    assert in_key.value.field == "a.'b\\x00'"


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-09:00", "1999-12-31T23:59:59", "2101-01-01"]
)
def test_instants_outside_the_served_years_are_refused_before_any_arithmetic(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_instant("sent_from", value)
    assert refused.value.field == "sent_from"


def test_days_outside_the_served_years_are_refused() -> None:
    for value in ("9999-12-31", "0001-01-01"):
        with pytest.raises(ValidationError):
            parse_day("created_to", value)
    assert parse_day("created_to", "2026-12-07") is not None


def job(**fields: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "sender": "02-1234-5678",
        "body": "#{name}님",
        "recipients": [{"phone": "010-1234-5678", "variables": {"name": "홍"}}],
        **fields,
    }


@pytest.mark.parametrize("value", [[["x"]], {"a": 1}, True, None])
def test_a_variable_that_is_not_text_or_a_number_is_the_requests_error(value: Any) -> None:
    request = job(recipients=[{"phone": "010-1234-5678", "variables": {"name": value}}])
    with pytest.raises(ValidationError) as refused:
        prepare_job(request, max_recipients=10)
    assert refused.value.field == "recipients[0].variables.name"


def test_a_kakao_variable_with_a_control_character_is_refused_too() -> None:
    class Template:
        content = "#{name}님 주문 완료"
        variables = ("name",)
        approved = True

    request = {
        "channel": "kakao",
        "sender": "02-1234-5678",
        "template_code": "T1",
        "recipients": [{"phone": "010-1234-5678", "variables": {"name": "a\x00"}}],
    }
    with pytest.raises(ValidationError) as refused:
        prepare_job(request, max_recipients=10, kakao_template=lambda code: Template())
    assert refused.value.field == "recipients[0].variables.name"


def test_a_cursor_opens_only_for_its_list_under_its_secret() -> None:
    codec = CursorCodec("secret")
    cursor = codec.sign("jobs:1", "2026-12-07T00:00:00+00:00|42")
    assert codec.open("jobs:1", cursor) == "2026-12-07T00:00:00+00:00|42"
    for scope, opener in (("jobs:2", codec), ("recipients:1:5", codec), ("jobs:1", CursorCodec("other"))):
        with pytest.raises(ValidationError) as refused:
            opener.open(scope, cursor)
        assert refused.value.field == "cursor"


@given(st.text(max_size=MAX_CURSOR_LENGTH + 10))
def test_no_made_up_cursor_opens(cursor: str) -> None:
    with pytest.raises(ValidationError):
        CursorCodec("secret").open("jobs:1", cursor)


@given(st.text(min_size=1), st.integers(min_value=0, max_value=len("abcdefghij") - 1))
def test_an_altered_cursor_does_not_open(position: str, at: int) -> None:
    codec = CursorCodec("secret")
    cursor = codec.sign("opt-outs:1", position)
    index = at % len(cursor)
    altered = cursor[:index] + ("A" if cursor[index] != "A" else "B") + cursor[index + 1 :]
    with pytest.raises(ValidationError):
        codec.open("opt-outs:1", altered)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (b"status=%00", "status"),
        (b"a=1&reason=x%1Fy", "reason"),
        (b"phone=\xc2\x85", "phone"),  # a raw (not percent-encoded) C1 character
        (b"cursor=%C2%9F", "cursor"),
        (b"st%00atus=1", "'st\\x00atus'"),
    ],
)
def test_the_parameter_guard_refuses_a_control_character_naming_the_parameter(
    query: bytes, field: str
) -> None:
    reached: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/v1/jobs", "query_string": query, "headers": []}
    # When a request with that query string comes in
    asyncio.run(ParameterGuard(app)(scope, receive, send))
    # Then it never reaches the app: 422 naming the parameter
    assert not reached
    assert sent[0]["status"] == 422
    assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["field"] == field
