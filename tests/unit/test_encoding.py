"""Message length in the carriers' bytes, and characters SMS/LMS cannot carry."""

from __future__ import annotations

import pytest

from engine.intake.encoding import ENCODING, UnencodableText, encoded_length


def test_cp949_not_euc_kr_is_the_carriers_encoding() -> None:
    # Given "똠", a Hangul syllable outside the 2,350 of KS X 1001
    # When it is encoded by Python's strict euc_kr and by cp949
    # Then euc_kr makes an 8-byte make-up sequence while cp949 takes 2 bytes, as carriers count
    assert "똠".encode("euc_kr") == b"\xa4\xd4\xa4\xa8\xa4\xc7\xa4\xb1"
    assert "똠".encode("cp949") == b"\x8cc"
    assert ENCODING == "cp949"
    assert encoded_length("똠") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Your code is 123456.", 20),
        ("line\nbreak\ttab", 14),
        ("가", 2),
        ("안녕하세요", 10),
        ("똠햏", 4),  # outside KS X 1001, still 2 bytes each
        ("홍길동님 hello", 14),
        ("[광고] 50% 할인", 15),
        ("ㄱㄴㄷ ㅏㅑ", 11),  # compatibility jamo
        ("漢字", 4),
        ("※★☎①·€", 12),  # symbols of KS X 1001 and the CP949 euro sign
        ("가" * 45, 90),
        ("a" * 2000, 2000),
    ],
)
def test_encoded_length_counts_cp949_bytes(text: str, expected: int) -> None:
    # Given message text
    # When its length is measured
    # Then ASCII counts 1 byte and Hangul, jamo, hanja and symbols 2
    assert encoded_length(text) == expected


@pytest.mark.parametrize(
    ("text", "char", "position", "message"),
    [
        ("hello😀", "😀", 5, "'😀' (U+1F600) at position 5 cannot be sent by SMS/LMS"),
        ("😀", "😀", 0, "'😀' (U+1F600) at position 0 cannot be sent by SMS/LMS"),
        ("안녕 👍 and 😀", "👍", 3, "'👍' (U+1F44D) at position 3 cannot be sent by SMS/LMS"),
        ("café", "é", 3, "'é' (U+00E9) at position 3 cannot be sent by SMS/LMS"),
        ("a\u00a0b", "\u00a0", 1, "'\\xa0' (U+00A0) at position 1 cannot be sent by SMS/LMS"),
        ("zero\u200bwidth", "\u200b", 4, "'\\u200b' (U+200B) at position 4 cannot be sent by SMS/LMS"),
    ],
)
def test_unencodable_text_names_the_first_offending_character(
    text: str, char: str, position: int, message: str
) -> None:
    # Given text holding a character CP949 cannot encode
    # When its length is measured
    with pytest.raises(UnencodableText) as caught:
        encoded_length(text)
    # Then the error names the first such character, its code point and where it is
    assert caught.value.char == char
    assert caught.value.position == position
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
