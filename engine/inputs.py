"""What balsong refuses in any input, whatever route or parser brings it: control characters,
dates outside the years it serves, JSON nested deeper than any request needs.

Each check raises ``ValidationError`` naming the field, so the API answers 422 with the field
instead of letting PostgreSQL (which cannot store a NUL), ``datetime`` (which overflows past
year 9999) or a recursive walk fail as a 500 later.

Control characters are Unicode's ``Cc`` category: C0 (U+0000-U+001F), DEL and C1
(U+007F-U+009F). Message text (a body, a variable's value, a memo) may carry tab, line feed and
carriage return, which people type and carriers deliver; an identifier, a title, a query or path
parameter may carry none.

Imports nothing of balsong's but ``engine.errors`` and ``engine.clock``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from datetime import date, datetime, tzinfo
from typing import Any

from engine.clock import KST
from engine.errors import ValidationError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_YEAR",
    "MIN_YEAR",
    "check_json",
    "check_line",
    "check_text",
    "control_character",
    "control_error",
    "parse_day",
    "parse_instant",
    "refuse_unknown",
]

#: Earliest and latest year any date or time balsong reads may lie in. Far wider than any job,
#: statement or filter needs, and far inside what ``datetime`` can shift by a time zone.
MIN_YEAR = 2000
MAX_YEAR = 2100
#: Deepest nesting of arrays and objects accepted in a JSON body; balsong's deepest request
#: (an order's lines) nests 4.
MAX_JSON_DEPTH = 16

#: Any control character.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: A control character other than tab, line feed and carriage return.
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first control character in ``value`` (``multiline``: besides tab, LF, CR), or None.

    ``str.isprintable`` (a C loop) answers for almost every real string, so the regular
    expression runs only for text with line breaks or unusual spaces."""
    if value.isprintable():
        return None
    found = (_CONTROL_IN_TEXT if multiline else _CONTROL).search(value)
    return found[0] if found else None


def control_error(field: str, character: str) -> ValidationError:
    """The error for ``character``, a control character found in ``field``."""
    return ValidationError(
        field, f"must not contain control characters (found U+{ord(character):04X})", code="control_character"
    )


def check_text(value: str, field: str) -> str:
    """``value`` if it has no control character but tab, LF and CR (message text)."""
    found = control_character(value, multiline=True)
    if found is not None:
        raise control_error(field, found)
    return value


def check_line(value: str, field: str) -> str:
    """``value`` if it has no control character at all (an identifier, a title, a parameter)."""
    found = control_character(value)
    if found is not None:
        raise control_error(field, found)
    return value


def check_json(value: Any, field: str = "", *, max_depth: int = MAX_JSON_DEPTH, texts: bool = True) -> None:
    """Refuse a decoded JSON document nested deeper than ``max_depth`` or (with ``texts``) with a
    control character (but tab, LF, CR) in any key or string; the error names the JSON path.

    Iterative, so a deep document cannot exhaust the stack; it stops at ``max_depth`` before
    looking further down."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        node, path, depth = stack.pop()
        if type(node) is str:
            if texts:
                check_text(node, path or "body")
        elif type(node) is dict or type(node) is list:
            if depth >= max_depth:
                raise ValidationError(path or "body", f"nested deeper than {max_depth} levels")
            for child_path, child in _children(node, path, texts):
                stack.append((child, child_path, depth + 1))


def _children(node: dict[str, Any] | list[Any], path: str, texts: bool) -> Iterator[tuple[str, Any]]:
    if type(node) is list:
        for index, item in enumerate(node):
            yield f"{path}[{index}]", item
        return
    assert type(node) is dict
    for key, item in node.items():
        found = control_character(key, multiline=True) if texts else None
        if found is not None:
            raise control_error(f"{path}.{key!r}" if path else repr(key), found)
        yield (f"{path}.{key}" if path else key), item


def refuse_unknown(given: Mapping[str, Any], known: Collection[str], what: str, prefix: str = "") -> None:
    """Refuse an object with a field not in ``known``: a ``ValidationError`` (code
    ``unknown_field``) naming the first such field (``prefix`` + name) and listing them all, so a
    typo (``recipient`` for ``recipients``) is an error rather than a field silently ignored.

    Parameters:
      given: the decoded JSON object.
      known: every field it may have.
      what: what it is, for the message ("a recipient").
      prefix: its path in the request (``recipients[3].``).
    """
    unknown = sorted(str(name)[:64] for name in given if name not in known)
    if unknown:
        raise ValidationError(
            prefix + unknown[0],
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: {what} takes"
            f" {', '.join(sorted(known))}",
            code="unknown_field",
        )


def _in_range(field: str, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(field, f"must lie between the years {MIN_YEAR} and {MAX_YEAR}")


def parse_day(field: str, value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` value as a date between MIN_YEAR and MAX_YEAR, or a ValidationError."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be a date written YYYY-MM-DD (KST)") from None
    _in_range(field, day.year)
    return day


def parse_instant(field: str, value: str, *, naive_zone: tzinfo = KST) -> datetime:
    """An ISO 8601 value as an aware instant between MIN_YEAR and MAX_YEAR; without an offset
    it is read in ``naive_zone``. The year is checked before any time-zone arithmetic, which
    overflows near year 1 and year 9999."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be ISO 8601, e.g. 2026-11-23T09:00:00+09:00") from None
    _in_range(field, moment.year)
    return moment if moment.tzinfo else moment.replace(tzinfo=naive_zone)
