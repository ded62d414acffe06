"""Choosing SMS or LMS from the message size, and refusing what fits neither."""

from __future__ import annotations

import pytest

from carriers.base import Channel
from engine.intake.channels import (
    LMS_MAX_BYTES,
    LMS_TITLE_MAX_BYTES,
    SMS_MAX_BYTES,
    ContentTooLong,
    choose_channel,
    default_title,
)
from engine.intake.encoding import encoded_length


def test_limits_are_the_carriers() -> None:
    # Given the Korean carriers' published limits
    # Then the constants hold them
    assert (SMS_MAX_BYTES, LMS_MAX_BYTES, LMS_TITLE_MAX_BYTES) == (90, 2000, 40)


@pytest.mark.parametrize(
    ("requested", "body_bytes", "title_bytes", "expected"),
    [
        ("sms", 0, 0, Channel.SMS),
        ("sms", 90, 0, Channel.SMS),
        ("sms", 50, 100, Channel.SMS),  # SMS has no title: it does not count
        ("lms", 10, 0, Channel.LMS),  # a short LMS stays LMS when asked for
        ("lms", 2000, 40, Channel.LMS),
        ("auto", 0, 0, Channel.SMS),
        ("auto", 90, 0, Channel.SMS),
        ("auto", 90, 100, Channel.SMS),  # goes as SMS, so the title does not matter
        ("auto", 91, 0, Channel.LMS),
        ("auto", 2000, 40, Channel.LMS),
        (Channel.SMS, 90, 0, Channel.SMS),
        (Channel.LMS, 91, 0, Channel.LMS),
    ],
)
def test_channel_follows_the_request_and_the_size(
    requested: str, body_bytes: int, title_bytes: int, expected: Channel
) -> None:
    # Given a requested channel and a message of some size
    # When the channel is chosen
    # Then it is the requested one, or for auto the cheapest that fits
    assert choose_channel(requested, body_bytes, title_bytes) is expected


@pytest.mark.parametrize(
    ("requested", "body_bytes", "title_bytes", "field", "limit", "message"),
    [
        ("sms", 91, 0, "body", 90, "body is 91 bytes in EUC-KR; SMS allows 90"),
        ("sms", 120, 0, "body", 90, "body is 120 bytes in EUC-KR; SMS allows 90"),
        ("lms", 2001, 0, "body", 2000, "body is 2001 bytes in EUC-KR; LMS allows 2000"),
        ("lms", 100, 41, "title", 40, "title is 41 bytes in EUC-KR; LMS allows 40"),
        ("auto", 2001, 0, "body", 2000, "body is 2001 bytes in EUC-KR; LMS allows 2000"),
        ("auto", 91, 41, "title", 40, "title is 41 bytes in EUC-KR; LMS allows 40"),
        ("lms", 2001, 41, "body", 2000, "body is 2001 bytes in EUC-KR; LMS allows 2000"),
    ],
)
def test_content_over_the_limit_is_refused(
    requested: str, body_bytes: int, title_bytes: int, field: str, limit: int, message: str
) -> None:
    # Given a message too long for the channel it would go by
    # When the channel is chosen
    with pytest.raises(ContentTooLong) as caught:
        choose_channel(requested, body_bytes, title_bytes)
    # Then the error says which field, how long it is and what the limit is
    assert (caught.value.field, caught.value.length, caught.value.limit) == (
        field,
        body_bytes if field == "body" else title_bytes,
        limit,
    )
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_unknown_channel_is_refused() -> None:
    # Given a channel name that does not exist
    # When the channel is chosen
    # Then ValueError names it
    with pytest.raises(ValueError, match="unknown channel 'mms'"):
        choose_channel("mms", 10)


def test_an_lms_without_a_title_takes_the_first_line_of_its_text() -> None:
    # The provider refuses an LMS without a title; the first words of the message stand in.
    assert default_title("\n  [쇼핑몰]  주문 안내\n두 번째 줄") == "[쇼핑몰] 주문 안내"
    assert default_title("#{name}님, 안녕하세요") == "님, 안녕하세요"
    assert default_title("#{name}") == "안내"


def test_a_default_title_is_cut_to_forty_bytes_on_a_character_boundary() -> None:
    title = default_title("가" * 30)
    assert title == "가" * 20
    assert encoded_length(title) == 40
