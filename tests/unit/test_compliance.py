"""Advertising rules (정보통신망법 제50조): the label, the free opt-out line, the quiet hours."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine.clock import KST
from engine.errors import ValidationError
from engine.intake.compliance import (
    check_advertisement,
    check_send_time,
    in_quiet_hours,
    quiet_hours_end,
    with_advertising_marks,
)

AD = "(광고) 겨울 세일 30%\n무료수신거부 080-123-4567"


def test_a_labelled_message_with_a_free_opt_out_line_passes() -> None:
    check_advertisement(AD, "sms")
    check_advertisement("  (광고)세일\n무료 수신거부: 0801234567", "lms")
    check_advertisement("(광고)세일\n무료거부 080-1234-5678", "auto")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("겨울 세일\n무료수신거부 080-123-4567", "advertising_label_missing"),
        ("세일 (광고)\n무료수신거부 080-123-4567", "advertising_label_missing"),
        ("(광고) 겨울 세일", "advertising_opt_out_missing"),
        ("(광고) 겨울 세일\n수신거부 02-123-4567", "advertising_opt_out_missing"),
    ],
)
def test_what_an_advertising_message_lacks_is_named(body: str, code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        check_advertisement(body, "sms")
    assert raised.value.field == "body"
    assert raised.value.code == code


def test_alimtalk_carries_no_advertising() -> None:
    with pytest.raises(ValidationError) as raised:
        check_advertisement(AD, "kakao")
    assert raised.value.field == "advertisement"


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        ("20:59:59", False),
        ("21:00:00", True),
        ("23:30:00", True),
        ("03:00:00", True),
        ("07:59:59", True),
        ("08:00:00", False),
        ("12:00:00", False),
    ],
)
def test_quiet_hours_run_from_nine_in_the_evening_to_eight_in_the_morning_kst(
    clock: str, quiet: bool
) -> None:
    moment = datetime.fromisoformat(f"2026-11-23T{clock}").replace(tzinfo=KST)
    assert in_quiet_hours(moment) is quiet
    if quiet:
        with pytest.raises(ValidationError):
            check_send_time(moment, "scheduled_at")
    else:
        check_send_time(moment, "scheduled_at")


def test_the_quiet_hours_end_at_the_next_eight_oclock() -> None:
    evening = datetime(2026, 11, 23, 22, 0, tzinfo=KST)
    night = datetime(2026, 11, 24, 3, 0, tzinfo=KST)
    assert quiet_hours_end(evening) == datetime(2026, 11, 24, 8, 0, tzinfo=KST)
    assert quiet_hours_end(night) == datetime(2026, 11, 24, 8, 0, tzinfo=KST)


def test_the_advertising_marks_are_added_where_missing_and_then_pass_the_check() -> None:
    # Given a plain message and the tenant's 080 number, When the marks are added
    marked = with_advertising_marks("  겨울 세일 50%!  ", "080-123-4567")

    # Then it starts with the label, ends with the opt-out line, and the engine's check passes
    assert marked == "(광고)겨울 세일 50%!\n무료수신거부 080-123-4567"
    check_advertisement(marked, "sms")
    # And a message that has them already is left as it is
    assert with_advertising_marks(marked, "080-999-9999") == marked
    # And without a number the line is not made up: the check names what is missing
    with pytest.raises(ValidationError) as refused:
        check_advertisement(with_advertising_marks("세일", ""), "sms")
    assert refused.value.code == "advertising_opt_out_missing"
