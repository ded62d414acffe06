"""Properties that hold for any input (hypothesis): phone numbers, EUC-KR bytes, templates."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.intake.encoding import UnencodableText, encoded_length
from engine.intake.phone import InvalidPhone, mask_phone, normalize_recipient
from engine.intake.template import Template

mobile_digits = st.from_regex(r"\A010[0-9]{8}\Z")
separators = st.sampled_from(["", "-", " ", ".", "- "])


@given(mobile_digits, separators, st.booleans())
def test_any_writing_of_a_mobile_number_normalises_to_its_digits(
    digits: str, sep: str, international: bool
) -> None:
    # Given a mobile number written with any separator, domestic or +82
    head, middle, last = digits[:3], digits[3:7], digits[7:]
    written = f"{head}{sep}{middle}{sep}{last}"
    if international:
        written = f"+82{sep}{head[1:]}{sep}{middle}{sep}{last}"
    # Then it normalises to the digits, and normalising again changes nothing
    assert normalize_recipient(written) == digits
    assert normalize_recipient(normalize_recipient(written)) == digits


@given(st.text(max_size=30))
def test_normalising_anything_gives_digits_or_a_reason_never_a_crash(raw: str) -> None:
    try:
        number = normalize_recipient(raw)
    except InvalidPhone as exc:
        # A reason for people, which never repeats the number (it may reach logs)
        digits = re.sub(r"\D", "", raw)
        assert exc.reason
        assert len(digits) < 7 or digits not in exc.reason
    else:
        assert number.isdigit() and number.startswith("0")


@given(st.one_of(mobile_digits, st.text(max_size=20)))
def test_a_masked_number_never_shows_its_middle_digits(raw: str) -> None:
    masked = mask_phone(raw)
    try:
        number = normalize_recipient(raw)
    except InvalidPhone:
        return
    head, middle, last = masked.split("-")
    assert set(middle) == {"*"}
    assert number.startswith(head) and last == number[-4:]


cp949_text = st.text(alphabet=st.characters(codec="cp949", exclude_categories=("Cs",)), max_size=200)


@given(cp949_text)
def test_encoded_length_is_the_cp949_byte_count(text: str) -> None:
    assert encoded_length(text) == len(text.encode("cp949"))


@given(cp949_text, st.sampled_from(["😀", "🎉", "\U0001f680"]), cp949_text)
def test_a_character_outside_euc_kr_is_named_with_its_position(before: str, odd: str, after: str) -> None:
    try:
        encoded_length(before + odd + after)
    except UnencodableText as exc:
        assert exc.char == odd and exc.position == len(before)
    else:
        raise AssertionError("unencodable text was counted")


names = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z")


@given(
    st.lists(st.tuples(st.text(max_size=10), names), min_size=1, max_size=5), st.text(max_size=10), st.data()
)
def test_filling_a_template_puts_each_value_in_its_place_and_nothing_else(
    pieces: list[tuple[str, str]], tail: str, data: st.DataObject
) -> None:
    # Given a body of literal text and #{name} placeholders (literal text free of placeholders)
    pieces = [(re.sub(r"#\{", "#(", text), name) for text, name in pieces]
    tail = re.sub(r"#\{", "#(", tail)
    body = "".join(f"{text}#{{{name}}}" for text, name in pieces) + tail
    template = Template.parse(body)
    # And values that may themselves look like placeholders
    values = {name: data.draw(st.text(max_size=10)) for name in template.variables}

    # When it is filled
    filled = template.render(tuple(values[name] for name in template.variables))

    # Then the result is the literal text with each value in place, values never expanded again
    assert filled == "".join(text + values[name] for text, name in pieces) + tail
