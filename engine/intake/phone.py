"""Korean phone numbers: normalise what people type, mask what we log.

Intake runs :func:`normalize_recipient` once per recipient (100,000 per job and more), so the
common case, a number already written as domestic digits (``01012345678``), returns after a few
``str`` method calls; anything else goes through one ``str.translate`` that drops separators, then
a table lookup by prefix. Nothing here touches the network or keeps state.

Accepted numbers, by prefix (digit counts include the prefix):

- mobile ``010`` (always 11 digits), ``011 016 017 018 019`` (10 or 11, the pre-010 numbers);
- Seoul ``02`` (9 or 10); the other area codes ``031-033 041-044 051-055 061-064`` (10 or 11);
- internet phone ``070`` (11);
- personal numbers ``0502``-``0508`` (11 or 12; the 12-digit form is the ``0504`` "safe number");
- senders only: representative numbers ``15xx 16xx 18xx`` (8 digits, e.g. ``1588-1234``); they
  cannot receive messages.

Not accepted: ``080`` toll-free, ``060`` premium-rate, ``030`` and other service prefixes, and
every number outside Korea. International forms of Korean numbers (``+82 10-1234-5678``,
``82-10-...``, ``0082...``, ``+82 (0)10 ...``, even ``+82 010 ...``) are folded to the domestic
form. A number whose leading ``0`` a spreadsheet has eaten (``1012345678``) is refused, with a
reason saying so, rather than guessed at.

Error messages never contain the number itself, so they can be logged and returned as they are.
"""

from __future__ import annotations

from engine.errors import ValidationError

__all__ = [
    "InvalidPhone",
    "format_phone",
    "mask_phone",
    "normalize_recipient",
    "normalize_sender",
    "search_terms",
]


class InvalidPhone(ValueError):
    """The text is not a phone number we can send to (or from).

    Attributes:
      code: short snake_case reason, stable for clients: ``empty``, ``invalid_character``,
        ``not_korean``, ``unknown_prefix``, ``too_short``, ``too_long``, ``sender_only``.
      reason: what is wrong, for people; never contains the number.
    """

    def __init__(self, reason: str, code: str = "invalid_phone") -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)


# -- rules ----------------------------------------------------------------------------------------

_MOBILE = "mobile"
_AREA = "area"
_INTERNET = "internet"
_PERSONAL = "personal"
_REPRESENTATIVE = "representative"

#: prefix -> (fewest digits, most digits, kind). Prefixes are 2, 3 or 4 digits long and no
#: prefix is the start of another, so a lookup by ``number[:3]``, then ``[:2]``, then ``[:4]``
#: finds at most one rule. Representative numbers are keyed by their first two digits.
_RULES: dict[str, tuple[int, int, str]] = {
    "010": (11, 11, _MOBILE),
    **{p: (10, 11, _MOBILE) for p in ("011", "016", "017", "018", "019")},
    "02": (9, 10, _AREA),
    **{
        p: (10, 11, _AREA)
        for p in (
            *("031", "032", "033"),
            *("041", "042", "043", "044"),
            *("051", "052", "053", "054", "055"),
            *("061", "062", "063", "064"),
        )
    },
    "070": (11, 11, _INTERNET),
    **{f"050{d}": (11, 12, _PERSONAL) for d in "2345678"},
    **{p: (8, 8, _REPRESENTATIVE) for p in ("15", "16", "18")},
}

#: Characters people (and spreadsheets, and web pages) put between digits, dropped before any
#: check; full-width digits and plus sign (from Korean IMEs) are folded to ASCII.
_SEPARATORS = (
    " \t\r\n-.()\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u3000\u200b\ufeff\uff0d\uff08\uff09\uff0e"
)
_CLEAN = str.maketrans(
    {
        **{ch: None for ch in _SEPARATORS},
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        "\uff0b": "+",
    }
)


# -- normalising ----------------------------------------------------------------------------------


def normalize_recipient(raw: str) -> str:
    """The domestic digits-only form of a Korean number that can receive SMS/LMS.

    Parameters:
      raw: the number as written (dashes, spaces, dots, parentheses and ``+82`` forms allowed).

    Returns:
      Digits only, domestic form: ``01012345678``, ``0212345678``.

    Raises:
      InvalidPhone: empty, letters or symbols, a country other than Korea, an unknown prefix,
        the wrong number of digits for its prefix, or a representative number (sender only).
    """
    # The common case first: already normalised mobile number.
    if len(raw) == 11 and raw.startswith("010") and raw.isdigit() and raw.isascii():
        return raw
    number, kind = _normalize(raw)
    if kind is _REPRESENTATIVE:
        raise InvalidPhone(
            "15xx/16xx/18xx representative numbers can send but cannot receive messages",
            "sender_only",
        )
    return number


def normalize_sender(raw: str) -> str:
    """The domestic digits-only form of a Korean number that can send SMS/LMS.

    Like :func:`normalize_recipient`, and also accepts 8-digit representative numbers
    (``1588-1234`` -> ``15881234``).

    Raises:
      InvalidPhone: as :func:`normalize_recipient`, except for representative numbers.
    """
    return _normalize(raw)[0]


def _normalize(raw: str) -> tuple[str, str]:
    """``(domestic digits, kind)`` of ``raw``, or :class:`InvalidPhone`."""
    number = raw
    if not (number.isdigit() and number.isascii()):
        # Dashes and spaces are what people type; try them before the full translation table.
        number = raw.replace("-", "").replace(" ", "")
        if not (number.isdigit() and number.isascii()):
            number = _to_digits(raw)
    if number[:1] == "8" or number.startswith("00"):
        number = _fold_country_code(number)
    rule = _rule(number)
    if rule is not None and rule[0] <= len(number) <= rule[1]:
        return number, rule[2]
    if number[0] != "0" and _rule_fits("0" + number):
        # Spreadsheets store 01012345678 as the number 1012345678.
        raise InvalidPhone(
            "the leading 0 seems lost; a spreadsheet may have stored the number as a number "
            "(format the column as text)",
            "unknown_prefix",
        )
    if rule is None:
        raise _unknown_prefix(number)
    shortest, longest, kind = rule
    expected = str(shortest) if shortest == longest else f"{shortest} or {longest}"
    raise InvalidPhone(
        f"numbers starting {_prefix(number, kind)} have {expected} digits, this one has {len(number)}",
        "too_short" if len(number) < shortest else "too_long",
    )


def _rule(number: str) -> tuple[int, int, str] | None:
    return _RULES.get(number[:3]) or _RULES.get(number[:2]) or _RULES.get(number[:4])


def _rule_fits(number: str) -> bool:
    rule = _rule(number)
    return rule is not None and rule[0] <= len(number) <= rule[1]


def _to_digits(raw: str) -> str:
    """Digits of ``raw`` with separators dropped; a leading ``+`` becomes ``00``."""
    text = raw.strip().translate(_CLEAN)
    if not text:
        raise InvalidPhone("no phone number given", "empty")
    if text[0] == "+":
        if len(text) == 1:
            raise InvalidPhone("no digits after +", "too_short")
        text = "00" + text[1:]  # "+" is how the world writes the international prefix 00
    if not (text.isdigit() and text.isascii()):
        raise _bad_character(raw)
    return text


def _fold_country_code(number: str) -> str:
    """The domestic form of ``00...`` / ``82...``; :class:`InvalidPhone` for other countries."""
    if number.startswith("00"):
        # 00 is how Koreans dial abroad, 0082 dials Korea itself.
        if not number.startswith("0082"):
            raise _foreign()
        number = number[2:]
    # Else it starts with 8, and no domestic number does: 82 can only be the country code.
    if not number.startswith("82"):
        raise _unknown_prefix(number)
    national = number[2:]
    # "+82 (0)10 ..." and the common mistake "+82 010 ..." both keep the trunk 0.
    number = national if national.startswith("0") else "0" + national
    if number == "0":
        raise InvalidPhone("only the country code +82 was given", "too_short")
    return number


def _prefix(number: str, kind: str) -> str:
    if kind is _REPRESENTATIVE:
        return number[:2] + "xx"
    if kind is _PERSONAL:
        return number[:4]
    return number[:2] if number[1] == "2" else number[:3]


#: Korean prefixes that exist but cannot take part in SMS/LMS sending.
_UNSUPPORTED = {"080": "toll-free", "060": "premium-rate", "030": "universal (030)"}


def _unknown_prefix(number: str) -> InvalidPhone:
    if number[0] != "0":
        return InvalidPhone(f"Korean numbers start with 0, 15, 16 or 18, not {number[:2]}", "unknown_prefix")
    if len(number) < 3:
        return InvalidPhone(f"phone numbers have at least 8 digits, this one has {len(number)}", "too_short")
    if number[:3] in _UNSUPPORTED:
        return InvalidPhone(
            f"{_UNSUPPORTED[number[:3]]} {number[:3]} numbers cannot take SMS/LMS", "unknown_prefix"
        )
    if number.startswith("050"):
        return InvalidPhone(f"{number[:4]} is not a personal-number prefix (0502-0508)", "unknown_prefix")
    return InvalidPhone(
        f"{number[:3]} is not a Korean mobile, area or internet-phone prefix", "unknown_prefix"
    )


def _foreign() -> InvalidPhone:
    return InvalidPhone(
        "only Korean numbers (+82) are accepted; this one has another country code", "not_korean"
    )


def _bad_character(raw: str) -> InvalidPhone:
    for position, ch in enumerate(raw):
        if ch.isascii() and ch.isdigit():
            continue
        if ch in _SEPARATORS or ("\uff10" <= ch <= "\uff19"):
            continue
        if ch in "+\uff0b" and not raw[:position].strip(_SEPARATORS):
            continue
        what = "the letter" if ch.isalpha() else "the character"
        return InvalidPhone(
            f"{what} {ch!r} at position {position} is not part of a phone number", "invalid_character"
        )
    return InvalidPhone("not a phone number", "invalid_character")  # unreachable: a caller saw one


# -- display --------------------------------------------------------------------------------------


def _parts(number: str, kind: str) -> tuple[str, str, str]:
    """``(prefix, middle, last four)`` of a normalised number; representative: ``(1588, "", 1234)``."""
    if kind is _REPRESENTATIVE:
        return number[:4], "", number[4:]
    head = len(_prefix(number, kind))
    return number[:head], number[head:-4], number[-4:]


def search_terms(field: str, value: str | None) -> tuple[str | None, str | None]:
    """What a search box for a phone number means: ``(whole normalised number, its last four
    digits)`` for a number, ``(None, last four digits)`` for four digits, ``(None, None)`` for
    None. The last four digits go with a whole number too: they let PostgreSQL use an index of
    last four digits where there is one.

    Raises:
      ValidationError: on ``field``: neither a phone number nor four digits.
    """
    if value is None:
        return None, None
    if len(value) == 4 and value.isdigit():
        return None, value
    try:
        number = normalize_recipient(value)
    except InvalidPhone as exc:
        raise ValidationError(field, f"neither a phone number nor its last four digits: {exc}") from None
    return number, number[-4:]


def format_phone(phone: str) -> str:
    """Dashed display form: ``010-1234-5678``, ``02-123-4567``, ``1588-1234``.

    Parameters:
      phone: any form :func:`normalize_sender` accepts (normalised digits are the fast case).

    Raises:
      InvalidPhone: ``phone`` is not a Korean number.
    """
    head, middle, last = _parts(*_normalize(phone))
    return f"{head}-{middle}-{last}" if middle else f"{head}-{last}"


def mask_phone(phone: str) -> str:
    """The number fit for logs: ``010-****-5678``, ``02-***-4567``, ``1588-****``.

    Never fails and never returns the middle digits: text that is not a Korean number (garbage,
    a truncated number) becomes ``****`` whole, whatever its length.
    """
    if len(phone) == 11 and phone.startswith("010") and phone.isdigit() and phone.isascii():
        # The usual case, a mobile number as stored: asked once per callback event and log line.
        return f"010-****-{phone[7:]}"
    try:
        number, kind = _normalize(phone)
    except InvalidPhone:
        return "****"
    head, middle, last = _parts(number, kind)
    if not middle:
        return f"{head}-****"
    return f"{head}-{'*' * len(middle)}-{last}"
