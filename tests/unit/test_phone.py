"""Phone numbers as people write them, normalised, refused, formatted and masked."""

from __future__ import annotations

import pytest

from engine.intake.phone import InvalidPhone, format_phone, mask_phone, normalize_recipient, normalize_sender

# -- accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # mobile, as typed
        ("01012345678", "01012345678"),
        ("010-1234-5678", "01012345678"),
        ("010 1234 5678", "01012345678"),
        ("010.1234.5678", "01012345678"),
        ("(010) 1234-5678", "01012345678"),
        ("  010-1234-5678\t", "01012345678"),
        ("011-123-4567", "0111234567"),
        ("016-1234-5678", "01612345678"),
        ("017-123-4567", "0171234567"),
        ("018-1234-5678", "01812345678"),
        ("019-123-4567", "0191234567"),
        # international forms of Korean numbers
        ("+82 10-1234-5678", "01012345678"),
        ("+821012345678", "01012345678"),
        ("82-10-1234-5678", "01012345678"),
        ("821012345678", "01012345678"),
        ("+82 (0)10 1234 5678", "01012345678"),
        ("+82 010 1234 5678", "01012345678"),
        ("0082 10 1234 5678", "01012345678"),
        ("00821012345678", "01012345678"),
        ("+82 2 123 4567", "021234567"),
        ("+82-31-123-4567", "0311234567"),
        # landlines
        ("02-123-4567", "021234567"),
        ("02-1234-5678", "0212345678"),
        ("(02) 1234-5678", "0212345678"),
        ("031-123-4567", "0311234567"),
        ("032-1234-5678", "03212345678"),
        ("033-123-4567", "0331234567"),
        ("041-123-4567", "0411234567"),
        ("044-1234-5678", "04412345678"),
        ("051-123-4567", "0511234567"),
        ("055-123-4567", "0551234567"),
        ("061-123-4567", "0611234567"),
        ("064-1234-5678", "06412345678"),
        # internet phone and personal numbers
        ("070-1234-5678", "07012345678"),
        ("0502-123-4567", "05021234567"),
        ("0504-1234-5678", "050412345678"),
        ("0505-123-4567", "05051234567"),
        ("0508-1234-5678", "050812345678"),
        # what spreadsheets, web pages and Korean IMEs hand us
        ("\ufeff010-1234-5678", "01012345678"),
        ("010\u00a01234\u00a05678", "01012345678"),
        ("010\u20131234\u20135678", "01012345678"),
        ("０１０－１２３４－５６７８", "01012345678"),
        ("＋８２ １０ １２３４ ５６７８", "01012345678"),
    ],
)
def test_recipient_forms_are_normalised(raw: str, expected: str) -> None:
    # Given a Korean number written one of the ways people write it
    # When it is normalised as a recipient
    # Then the domestic digits-only form comes back
    assert normalize_recipient(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1588-1234", "15881234"),
        ("1544 1234", "15441234"),
        ("1600-1234", "16001234"),
        ("1899-1234", "18991234"),
        ("02-1234-5678", "0212345678"),
        ("010-1234-5678", "01012345678"),
        ("+82 10 1234 5678", "01012345678"),
    ],
)
def test_sender_forms_include_representative_numbers(raw: str, expected: str) -> None:
    # Given a sender number, representative numbers (15xx/16xx/18xx) included
    # When it is normalised as a sender
    # Then the digits-only form comes back
    assert normalize_sender(raw) == expected


def test_already_normalised_recipient_is_returned_as_is() -> None:
    # Given the common case, a number already in domestic digits
    number = "01098765432"
    # When it is normalised
    # Then it comes back unchanged (the fast path hands back the same string)
    assert normalize_recipient(number) is number


# -- refused --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        ("", "empty", "no phone number given"),
        ("   ", "empty", "no phone number given"),
        ("- ()", "empty", "no phone number given"),
        ("010-1234-567a", "invalid_character", "the letter 'a' at position 12 is not part of a phone number"),
        ("call me", "invalid_character", "the letter 'c' at position 0"),
        ("010/1234/5678", "invalid_character", "the character '/' at position 3"),
        ("010+1234+5678", "invalid_character", "the character '+' at position 3"),
        ("++82 10 1234 5678", "invalid_character", "the character '+' at position 1"),
        ("010-1234-567٨", "invalid_character", "the character '٨' at position 12"),
        ("010-1234-567", "too_short", "numbers starting 010 have 11 digits, this one has 10"),
        ("010-1234-56789", "too_long", "numbers starting 010 have 11 digits, this one has 12"),
        ("011-12-4567", "too_short", "numbers starting 011 have 10 or 11 digits, this one has 9"),
        ("02-12-4567", "too_short", "numbers starting 02 have 9 or 10 digits, this one has 8"),
        ("02-12345-6789", "too_long", "numbers starting 02 have 9 or 10 digits, this one has 11"),
        ("031-12-4567", "too_short", "numbers starting 031 have 10 or 11 digits, this one has 9"),
        ("070-123-4567", "too_short", "numbers starting 070 have 11 digits, this one has 10"),
        ("0504-1234-56789", "too_long", "numbers starting 0504 have 11 or 12 digits, this one has 13"),
        ("0", "too_short", "phone numbers have at least 8 digits, this one has 1"),
        ("+", "too_short", "no digits after +"),
        ("+82", "too_short", "only the country code +82 was given"),
        ("+82 (0)", "too_short", "only the country code +82 was given"),
        ("034-123-4567", "unknown_prefix", "034 is not a Korean mobile, area or internet-phone prefix"),
        ("012-1234-5678", "unknown_prefix", "012 is not a Korean mobile"),
        ("080-123-4567", "unknown_prefix", "toll-free 080 numbers cannot take SMS/LMS"),
        ("060-123-4567", "unknown_prefix", "premium-rate 060 numbers cannot take SMS/LMS"),
        ("0501-123-4567", "unknown_prefix", "0501 is not a personal-number prefix (0502-0508)"),
        ("9123-4567", "unknown_prefix", "Korean numbers start with 0, 15, 16 or 18, not 91"),
        ("83-10-1234-5678", "unknown_prefix", "Korean numbers start with 0, 15, 16 or 18, not 83"),
        ("1012345678", "unknown_prefix", "the leading 0 seems lost"),
        ("212345678", "unknown_prefix", "the leading 0 seems lost"),
        ("+1 212 555 0100", "not_korean", "only Korean numbers (+82) are accepted"),
        ("+81 90-1234-5678", "not_korean", "only Korean numbers (+82) are accepted"),
        ("001-1-212-555-0100", "not_korean", "only Korean numbers (+82) are accepted"),
        ("0044 20 7946 0000", "not_korean", "only Korean numbers (+82) are accepted"),
        ("1588-1234", "sender_only", "representative numbers can send but cannot receive"),
    ],
)
def test_invalid_recipients_are_refused_with_a_precise_reason(raw: str, code: str, reason: str) -> None:
    # Given text that is not a Korean number able to receive messages
    # When it is normalised as a recipient
    with pytest.raises(InvalidPhone) as caught:
        normalize_recipient(raw)
    # Then the error says what is wrong, with a stable code
    assert caught.value.code == code
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("raw", ["1588-123", "1588-12345", "1234-5678", "010-1234-567"])
def test_invalid_senders_are_refused(raw: str) -> None:
    # Given a malformed sender number
    # When it is normalised as a sender
    # Then it is refused
    with pytest.raises(InvalidPhone):
        normalize_sender(raw)


@pytest.mark.parametrize("raw", ["010-1234-567", "+82 10 9876 543", "0212345", "1012345678", "abc 9876"])
def test_error_messages_never_contain_the_number(raw: str) -> None:
    # Given an invalid number (whose digits are personal data)
    # When it is refused
    with pytest.raises(InvalidPhone) as caught:
        normalize_recipient(raw)
    # Then the message can be logged: it holds no run of the number's digits
    digits = "".join(ch for ch in raw if ch.isdigit())
    assert digits[-4:] not in str(caught.value)


# -- display --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("01012345678", "010-1234-5678"),
        ("0111234567", "011-123-4567"),
        ("021234567", "02-123-4567"),
        ("0212345678", "02-1234-5678"),
        ("0311234567", "031-123-4567"),
        ("03112345678", "031-1234-5678"),
        ("07012345678", "070-1234-5678"),
        ("05051234567", "0505-123-4567"),
        ("050412345678", "0504-1234-5678"),
        ("15881234", "1588-1234"),
        ("+82 10 1234 5678", "010-1234-5678"),
    ],
)
def test_format_phone_gives_the_dashed_display_form(phone: str, expected: str) -> None:
    # Given a number (normalised or not)
    # When it is formatted for display
    # Then the groups are separated by dashes the Korean way
    assert format_phone(phone) == expected


def test_format_phone_refuses_what_is_not_a_number() -> None:
    # Given garbage
    # When it is formatted
    # Then InvalidPhone says why
    with pytest.raises(InvalidPhone, match="letter"):
        format_phone("hello")


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("01012345678", "010-****-5678"),
        ("010-1234-5678", "010-****-5678"),
        ("+82 10 1234 5678", "010-****-5678"),
        ("0111234567", "011-***-4567"),
        ("0212345678", "02-****-5678"),
        ("021234567", "02-***-4567"),
        ("0311234567", "031-***-4567"),
        ("050412345678", "0504-****-5678"),
        ("15881234", "1588-****"),
        # anything that is not a number is masked whole, whatever its length
        ("", "****"),
        ("12", "****"),
        ("010-1234-567", "****"),
        ("hello, world", "****"),
        ("+1 212 555 0100", "****"),
    ],
)
def test_mask_phone_hides_the_middle_digits(phone: str, expected: str) -> None:
    # Given any text that may hold a phone number
    # When it is masked for a log line
    # Then the middle digits (or everything, for non-numbers) are starred out
    assert mask_phone(phone) == expected
