"""Message templates with ``#{name}`` placeholders, parsed once and filled per recipient.

A job's body is parsed once; each of its (up to hundreds of thousands of) recipients then gets
its text from :meth:`Template.render`, which copies a precomputed list of literal parts, drops
the values into their slots and joins once. No regular expression runs per recipient.

Syntax: ``#{name}`` where the name is ASCII letters, digits, underscore or Hangul
(``#{고객명}``, the form KakaoTalk AlimTalk templates use too). Anything else, ``#{`` without a
closing ``}``, ``#{}``, ``#{two words}``, is literal text. Values are inserted verbatim: a value
that itself contains ``#{x}`` stays literal, so a recipient's data can never pull in another
variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

__all__ = ["MissingVariable", "Template"]

#: A placeholder: ``#{`` name ``}``; the name is letters, digits, underscore, Hangul jamo and syllables.
_PLACEHOLDER = re.compile(r"#\{([0-9A-Za-z_\u3131-\u318e\uac00-\ud7a3]+)\}")


class MissingVariable(KeyError, ValueError):
    """A template variable has no value.

    A ``KeyError`` (a value was looked up by name and is absent) and a ``ValueError`` (the
    request is invalid), so either kind of handler catches it.

    Attributes:
      name: the variable without a value.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        # KeyError's own __str__ would print only the quoted name.
        return f"no value for template variable {self.name!r}"


class Template:
    """A parsed message body.

    Build with :meth:`parse`; immutable afterwards, so one instance serves every recipient and
    thread.
    """

    __slots__ = ("_get_values", "_parts", "_slots", "body", "variables")

    #: The body as written.
    body: str
    #: Distinct variable names in order of first appearance; ``render`` takes values in this order.
    variables: tuple[str, ...]
    #: Literal parts with an empty string where each placeholder goes.
    _parts: list[str]
    #: ``(index in _parts, index in variables)`` of each placeholder.
    _slots: tuple[tuple[int, int], ...]
    _get_values: Callable[[Mapping[str, str]], tuple[str, ...]]

    def __init__(
        self, body: str, parts: list[str], slots: tuple[tuple[int, int], ...], variables: tuple[str, ...]
    ) -> None:
        self.body = body
        self.variables = variables
        self._parts = parts
        self._slots = slots
        self._get_values = _values_getter(variables)

    @classmethod
    def parse(cls, body: str) -> Template:
        """Parse ``body`` once; placeholders that are not ``#{name}`` are kept as literal text."""
        parts: list[str] = []
        slots: list[tuple[int, int]] = []
        index_of: dict[str, int] = {}
        start = 0
        for match in _PLACEHOLDER.finditer(body):
            if match.start() > start:
                parts.append(body[start : match.start()])
            index = index_of.setdefault(match[1], len(index_of))
            slots.append((len(parts), index))
            parts.append("")
            start = match.end()
        if start < len(body):
            parts.append(body[start:])
        return cls(body, parts, tuple(slots), tuple(index_of))

    @property
    def has_variables(self) -> bool:
        """Whether the body has any placeholder (if not, every recipient gets the same text)."""
        return bool(self.variables)

    def render(self, values: Sequence[str]) -> str:
        """The body with each placeholder replaced by its value.

        Parameters:
          values: one value per name in :attr:`variables`, in that order; inserted verbatim.

        Raises:
          ValueError: the number of values differs from the number of variables.
        """
        if len(values) != len(self.variables):
            names = ", ".join(self.variables)
            raise ValueError(f"template takes {len(self.variables)} values ({names}), got {len(values)}")
        if not self._slots:
            return self.body
        parts = self._parts.copy()
        for position, index in self._slots:
            parts[position] = values[index]
        return "".join(parts)

    def values_from(self, mapping: Mapping[str, str]) -> tuple[str, ...]:
        """The values of :attr:`variables`, in order, taken from ``mapping`` by name.

        Raises:
          MissingVariable: for the first variable absent from ``mapping``.
        """
        try:
            return self._get_values(mapping)
        except KeyError as error:
            raise MissingVariable(error.args[0]) from None

    def render_mapping(self, mapping: Mapping[str, str]) -> str:
        """The body filled from ``mapping`` (name -> value); extra names are ignored.

        Raises:
          MissingVariable: for the first variable absent from ``mapping``.
        """
        return self.render(self.values_from(mapping))

    def __repr__(self) -> str:
        return f"Template({self.body!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.body == self.body

    def __hash__(self) -> int:
        return hash(self.body)


def _values_getter(names: tuple[str, ...]) -> Callable[[Mapping[str, str]], tuple[str, ...]]:
    """A C-level getter of ``names`` from a mapping that always returns a tuple."""
    if not names:
        return _no_values
    if len(names) == 1:
        name = names[0]
        return lambda mapping: (mapping[name],)
    getter: Callable[[Mapping[str, Any]], tuple[str, ...]] = itemgetter(*names)
    return getter


def _no_values(mapping: Mapping[str, str]) -> tuple[str, ...]:
    return ()
