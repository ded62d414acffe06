"""Intake validation: what a job request becomes before it is stored."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ValidationError
from engine.intake.intake import prepare_job


def job(**change: Any) -> dict[str, Any]:
    return {
        "channel": "auto",
        "sender": "02-1234-5678",
        "body": "안녕하세요 #{name}님",
        "recipients": [{"phone": "010-1234-5678", "variables": {"name": "홍길동"}}],
        **change,
    }


def test_recipients_are_normalised_deduplicated_and_ordered_sms_lms_invalid() -> None:
    # Given recipients in mixed forms, a duplicate, a bad number and one name long enough for LMS
    recipients = [
        {"phone": "+82 10-1111-2222", "variables": {"name": "가" * 60}},
        {"phone": "010-3333-4444", "variables": {"name": "홍길동"}, "member_id": "m2"},
        {"phone": "010 12", "variables": {"name": "x"}},
        {"phone": "01033334444", "variables": {"name": "dup"}},
    ]
    # When the job is prepared
    prepared = prepare_job(job(recipients=recipients), max_recipients=10)
    # Then SMS come first, then LMS, then intake failures; the duplicate is counted, not kept
    assert [r.phone for r in prepared.sms] == ["01033334444"]
    assert prepared.sms[0].member_id == "m2"
    assert [r.phone for r in prepared.lms] == ["01011112222"]
    assert [(r.phone, r.reason_code) for r in prepared.invalid] == [("010 12", "too_short")]
    assert prepared.duplicates_removed == 1
    assert [r.phone for r in prepared.rows_in_send_order()] == ["01033334444", "01011112222", "010 12"]


def test_a_recipient_missing_a_variable_fails_alone() -> None:
    prepared = prepare_job(
        job(
            recipients=[
                {"phone": "01012345678", "variables": {}},
                {"phone": "01012345679", "variables": {"name": 7}},
            ]
        ),
        max_recipients=10,
    )
    assert [(r.reason_code, r.reason_text) for r in prepared.invalid] == [
        ("missing_variable", "variable 'name' is missing")
    ]
    # Numbers are sent as their text
    assert prepared.sms[0].values == ("7",)


def test_an_emoji_in_a_value_fails_that_recipient_and_names_the_character() -> None:
    prepared = prepare_job(
        job(recipients=[{"phone": "01012345678", "variables": {"name": "😀"}}]), max_recipients=10
    )
    (row,) = prepared.invalid
    assert row.reason_code == "unencodable_text"
    assert "😀" in (row.reason_text or "")


def test_a_personalised_sms_too_long_for_one_recipient_fails_that_recipient_only() -> None:
    recipients = [
        {"phone": "01012345678", "variables": {"name": "가" * 50}},
        {"phone": "01012345679", "variables": {"name": "나"}},
    ]
    prepared = prepare_job(job(channel="sms", recipients=recipients), max_recipients=10)
    assert [r.reason_code for r in prepared.invalid] == ["content_too_long"]
    assert len(prepared.sms) == 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"body": "이모지 😀"}, "body", "unencodable_text"),
        ({"channel": "sms", "body": "가" * 46}, "body", "content_too_long"),
        ({"channel": "lms", "body": "x", "title": "가" * 21}, "title", "content_too_long"),
        ({"channel": "sms", "title": "t"}, "title", "invalid"),
        ({"sender": "12"}, "sender", "invalid_sender"),
        ({"sender": None}, "sender", "invalid"),
        ({"recipients": "010"}, "recipients", "invalid"),
        ({"recipients": ["010"]}, "recipients[0]", "invalid"),
        ({"priority": "urgent"}, "priority", "invalid"),
        ({"body": "  "}, "body", "invalid"),
    ],
)
def test_job_level_problems_reject_the_request_naming_the_field(
    change: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        prepare_job(job(**change), max_recipients=10)
    assert (caught.value.field, caught.value.code) == (field, code)


def test_too_many_recipients_is_refused() -> None:
    with pytest.raises(ValidationError, match="at most 1 recipients"):
        prepare_job(job(recipients=[{"phone": "01012345678"}] * 2), max_recipients=1)


def test_auto_without_variables_sends_everyone_by_the_same_channel() -> None:
    prepared = prepare_job(
        {
            "channel": "auto",
            "sender": "0212345678",
            "body": "가" * 46,
            "recipients": [{"phone": "01012345678"}, {"phone": "01012345679"}],
        },
        max_recipients=10,
    )
    assert len(prepared.lms) == 2 and not prepared.sms
