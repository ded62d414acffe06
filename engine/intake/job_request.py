"""A job request's JSON, read as it arrives: bounded memory, early refusal, one pass.

`JobRequestReader` is fed the request body chunk by chunk (``feed``) and reads the top-level
object as it goes. It owns the body's *syntax and shape*, not its meaning (that is
`engine.intake.intake`):

- An unknown top-level field is refused (``ValidationError``, code ``unknown_field``) as soon
  as its name has arrived, before its value is read; a known field other than ``recipients``
  may be at most `FIELD_MAX_BYTES` long, so no field is ever buffered past that.
- ``recipients`` is kept as its raw JSON text, cut at element boundaries into segments of about
  `SEGMENT_BYTES`. `RecipientSegments` yields the decoded recipients one segment at a time,
  dropping each segment as it goes, so the decoded form of the whole list never exists at once;
  it counts them exactly as it decodes them (``max_recipients``).
- The SHA-256 of the body (`engine.intake.intake.request_hash`, for idempotent retries) is computed
  from the chunks as they pass, so no whole copy of the body is kept.

Raw text is the most compact form a recipient has before it is classified (about 60 bytes
against ~600 for a decoded dict), and, unlike classifying as we read, it does not depend on
``channel``, ``body`` or ``title`` coming before ``recipients`` in the object.

Finding an element boundary without a Python loop over every byte, two ways:

- Fast, for compact JSON (``},{`` or ``}, {`` between recipients, as orjson, JSON.stringify, Go,
  Jackson and Python's json write it): the last such pair in the text, if byte counts prove it is
  outside every string and nested array (`JobRequestReader._cut_between`). Nothing is parsed;
  the pairs stand for the count of recipients until they are decoded and counted exactly.
- Checked, for the rest (pretty-printed JSON, recipients with ``[`` or ``\\`` in them) and for
  a chunk holding a ``]`` (the list may end there, and a field after it must be read as it
  arrives): a cut just after a ``}`` that is followed by ``,`` or ``]`` is tried with orjson on
  ``[`` + text + ``]``. A cut inside a string or a nested object makes that text fail at its very
  end (the ``]`` added, or the end of input); a failure anywhere earlier is a real syntax error,
  refused at once, and the count is exact: a job over ``max_recipients`` is refused before the
  rest of it is read. Each recipient must be an object, so every element ends with ``}``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.errors import ValidationError

#: Every top-level field of a job request (the API's JOB_REQUEST_SCHEMA documents them).
FIELDS = frozenset(
    {
        "channel",
        "sender",
        "body",
        "title",
        "template_code",
        "fallback",
        "priority",
        "kind",
        "scheduled_at",
        "track_links",
        "advertisement",
        "reference",
        "callback_url",
        "recipients",
    }
)
#: Every field of a recipient, and of ``fallback`` (`engine.intake.intake` refuses any other).
RECIPIENT_FIELDS = frozenset({"phone", "variables", "member_id", "reference"})
FALLBACK_FIELDS = frozenset({"channel", "body", "title"})
#: Longest value of a top-level field other than ``recipients``, in bytes of JSON text. An LMS
#: body is at most 2000 bytes in EUC-KR (~4 KB of JSON with escapes); this leaves room.
FIELD_MAX_BYTES = 64 * 1024
#: Longest field name read before it is refused as unknown, in bytes.
NAME_MAX_BYTES = 64
#: Recipients' text is cut into segments of about this many bytes (one orjson call each).
SEGMENT_BYTES = 1024 * 1024
#: Boundaries tried per cut (from the end), each one orjson call over the segment.
CUT_TRIES = 4
#: A single recipient longer than this (bytes of JSON text) is refused.
RECIPIENT_MAX_BYTES = 1024 * 1024

_WHITESPACE = b" \t\r\n"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NESTED_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|["\[\]{}]')
_SCALAR = re.compile(rb"[^,}\]" + re.escape(_WHITESPACE) + rb"]*")
_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
_NOT_AN_OBJECT = "must be an object {phone, variables?, member_id?, reference?}"

# Reader states: where in the top-level object the next byte belongs.
_OPEN, _FIRST_NAME, _NAME, _COLON, _VALUE, _AFTER_VALUE, _RECIPIENTS_OPEN, _ELEMENT, _ELEMENTS, _DONE = range(
    10
)


@dataclass(slots=True)
class RecipientSegments(Collection[Any]):
    """The recipients' raw JSON text, cut at element boundaries; iterated once, it yields each
    recipient decoded (segment by segment, each dropped once decoded)."""

    max_recipients: int
    segments: list[bytes] = field(default_factory=list)
    #: Recipients in each segment: exact where orjson checked the cut, else counted by separators.
    counts: list[int] = field(default_factory=list)
    #: Whether every count is exact (every cut checked by orjson).
    exact: bool = True

    def __len__(self) -> int:
        """How many recipients there are; exact where the cuts were checked, else counted by the
        separators between them (which a separator inside a string would add to)."""
        return sum(self.counts)

    def __contains__(self, item: object) -> bool:
        raise TypeError("recipients streamed from a request are only iterated, once")

    def __iter__(self) -> Iterator[Any]:
        """Each recipient, decoded.

        Raises:
          ValidationError: the text is not valid JSON, or holds more than ``max_recipients``.
        """
        segments = self.segments
        decoded = 0
        while segments:
            try:
                items = orjson.loads(b"[" + segments.pop(0) + b"]")
            except orjson.JSONDecodeError as exc:
                raise ValidationError("recipients", f"not valid JSON: {exc.msg}") from None
            decoded += len(items)
            if decoded > self.max_recipients:
                raise ValidationError("recipients", f"at most {self.max_recipients} recipients per job")
            yield from items

    def add(self, segment: bytes, count: int, *, exact: bool) -> None:
        self.segments.append(segment)
        self.counts.append(count)
        self.exact = self.exact and exact


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job request read whole: its top-level fields (``recipients`` as `RecipientSegments`)
    and the SHA-256 of its body."""

    fields: dict[str, Any]
    body_sha256: bytes
    body_bytes: int


class JobRequestReader:
    """Reads a job request's JSON body from chunks fed in order; see the module docstring.

    Parameters:
      max_recipients: more recipients than this are refused as soon as they are counted.
    """

    def __init__(self, max_recipients: int) -> None:
        self.max_recipients = max_recipients
        self._hash = hashlib.sha256()
        self._size = 0
        #: Bytes received and not yet consumed; ``_offset`` is their position in the body.
        self._buffer = b""
        self._offset = 0
        self._state = _OPEN
        self._name = ""
        self._fields: dict[str, Any] = {}
        self._recipients = RecipientSegments(max_recipients)
        #: Recipients' text not yet cut, as it arrived, and its length.
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: Pending text is cut once it holds this many bytes.
        self._next_cut_bytes = SEGMENT_BYTES

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body.

        Raises:
          ValidationError: the body is already known to be unacceptable; names the field.
        """
        if not chunk:
            return
        self._hash.update(chunk)
        self._size += len(chunk)
        if self._state == _ELEMENTS:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            # A ']' may end the list: look at once, so a field after it is read as it arrives.
            if b"]" in chunk:
                self._cut(final=False)
                self._advance(final=False)
            elif self._pending_bytes >= self._next_cut_bytes:
                self._cut_between()
            return
        self._buffer = self._buffer + chunk if self._buffer else chunk
        self._advance(final=False)

    def finish(self) -> JobRequest:
        """The request, once the whole body has been fed.

        Raises:
          ValidationError: the body is not a whole, acceptable job request JSON object.
        """
        if self._state == _ELEMENTS:
            self._cut(final=True)
        self._advance(final=True)
        if self._state != _DONE:
            self._syntax("the body ends before its JSON object does")
        return JobRequest(self._fields, self._hash.digest(), self._size)

    # -- the top-level object -------------------------------------------------------------

    def _advance(self, *, final: bool) -> None:
        """Consume what the buffer holds, state by state, until it needs more bytes."""
        while True:
            if self._state == _ELEMENTS:
                return
            if not self._skip_whitespace():
                if self._state == _DONE or not final:
                    return
                self._syntax("the body ends before its JSON object does")
            byte = self._buffer[0]
            state = self._state
            if state == _OPEN:
                if byte != ord("{"):
                    raise ValidationError("body", "the request body must be a JSON object")
                self._consume(1)
                self._state = _FIRST_NAME
            elif state == _FIRST_NAME and byte == ord("}"):
                self._consume(1)
                self._state = _DONE
            elif state in (_FIRST_NAME, _NAME):
                if not self._read_name(final=final):
                    return
            elif state == _COLON:
                if byte != ord(":"):
                    self._syntax("expected ':' after a field name")
                self._consume(1)
                self._state = _RECIPIENTS_OPEN if self._name == "recipients" else _VALUE
            elif state == _VALUE:
                if not self._read_value(final=final):
                    return
            elif state == _RECIPIENTS_OPEN:
                if byte != ord("["):
                    # Not a list: read as any value, for intake to say what it must be.
                    self._state = _VALUE
                    continue
                self._consume(1)
                self._state = _ELEMENT
            elif state == _ELEMENT:
                if byte == ord("]") and not len(self._recipients):
                    self._consume(1)
                    self._fields["recipients"] = self._recipients
                    self._state = _AFTER_VALUE
                elif byte != ord("{"):
                    raise ValidationError(f"recipients[{len(self._recipients)}]", _NOT_AN_OBJECT)
                else:
                    self._state = _ELEMENTS
                    self._pending, self._pending_bytes = [self._buffer], len(self._buffer)
                    self._buffer = b""
                    if self._pending_bytes >= self._next_cut_bytes or final or b"]" in self._pending[0]:
                        self._cut(final=final)
            elif state == _AFTER_VALUE:
                self._consume(1)
                if byte == ord(","):
                    self._state = _NAME
                elif byte == ord("}"):
                    self._state = _DONE
                else:
                    self._syntax("expected ',' or '}' after a field's value")
            elif state == _DONE:
                self._syntax("unexpected text after the JSON object")

    def _read_name(self, *, final: bool) -> bool:
        if self._buffer[0] != ord('"'):
            self._syntax("expected a field name")
        match = _STRING.match(self._buffer)
        if match is None:
            if len(self._buffer) > NAME_MAX_BYTES:
                shown = self._buffer[1:NAME_MAX_BYTES].decode("utf-8", "replace")
                raise ValidationError(shown, "is not a field of a job request", code="unknown_field")
            if final:
                self._syntax("the body ends inside a field name")
            return False
        try:
            name = orjson.loads(match.group())
        except orjson.JSONDecodeError:
            self._syntax("a field name is not a valid JSON string")
        if name not in FIELDS:
            raise ValidationError(
                str(name)[:NAME_MAX_BYTES], "is not a field of a job request", code="unknown_field"
            )
        if name in self._fields:
            raise ValidationError(name, "is given twice")
        self._name = name
        self._consume(match.end())
        self._state = _COLON
        return True

    def _read_value(self, *, final: bool) -> bool:
        end = _value_end(self._buffer)
        if end is None:
            if len(self._buffer) > FIELD_MAX_BYTES:
                raise ValidationError(self._name, f"longer than {FIELD_MAX_BYTES} bytes")
            if final:
                self._syntax(f"the body ends inside field {self._name!r}")
            return False
        if end > FIELD_MAX_BYTES:
            raise ValidationError(self._name, f"longer than {FIELD_MAX_BYTES} bytes")
        try:
            self._fields[self._name] = orjson.loads(self._buffer[:end])
        except orjson.JSONDecodeError as exc:
            raise ValidationError(self._name, f"not valid JSON: {exc}") from None
        self._consume(end)
        self._state = _AFTER_VALUE
        return True

    # -- recipients ------------------------------------------------------------------------

    def _cut_between(self) -> None:
        """Move the pending recipients' text, up to the last ``},{`` (or ``}, {``) in it, into
        a segment without parsing it: the fast way for compact JSON (orjson, JSON.stringify, Go,
        Jackson) and Python's default separators.

        The text starts at a boundary, so the pair is one too if it is outside any string (an
        even number of unescaped quotes before it; no ``\\`` before it, so each ``\"`` is an
        escaped quote) and not in an array nested in a recipient (no ``[`` before it: inside an
        object, ``,`` is followed by a name, never by ``{``). Otherwise the text is cut where
        orjson says (`_cut`), as is pretty-printed JSON."""
        text = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        end = max(text.rfind(b"},{"), text.rfind(b"}, {"))
        head = text[: end + 1]
        if end < 0 or b"[" in head or b"\\\\" in head or (head.count(b'"') - head.count(b'\\"')) % 2:
            self._cut(final=False)
            return
        count = text.count(b"},{", 0, end + 1) + text.count(b"}, {", 0, end + 1) + 1
        self._recipients.add(text[: end + 1], count, exact=False)
        rest = text[end + 2 :]  # past the comma
        self._offset += end + 2
        self._pending, self._pending_bytes = [rest], len(rest)
        self._next_cut_bytes = SEGMENT_BYTES

    def _cut(self, *, final: bool) -> None:
        """Move the pending recipients' text, up to its last whole element, into a segment;
        at the list's end, go back to the top-level object."""
        text = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        cut = self._last_boundary(text)
        if cut is None:
            if len(text) > RECIPIENT_MAX_BYTES + SEGMENT_BYTES:
                raise ValidationError(
                    f"recipients[{len(self._recipients)}]", f"longer than {RECIPIENT_MAX_BYTES} bytes"
                )
            if final:
                self._syntax("the body ends inside the recipients")
            # Try again only once another segment's worth has come: each try parses the text.
            self._pending, self._pending_bytes = [text], len(text)
            self._next_cut_bytes = len(text) + SEGMENT_BYTES
            return
        end, count = cut
        self._recipients.add(text[:end], count, exact=True)
        if self._recipients.exact and len(self._recipients) > self.max_recipients:
            raise ValidationError("recipients", f"at most {self.max_recipients} recipients per job")
        rest = text[end:].lstrip(_WHITESPACE)
        if rest[:1] == b"]":
            # The list ends here: back to the top-level object.
            self._offset += len(text) - len(rest) + 1
            self._fields["recipients"] = self._recipients
            self._pending, self._pending_bytes = [], 0
            self._buffer = rest[1:]
            self._state = _AFTER_VALUE
            return
        rest = rest[1:].lstrip(_WHITESPACE)  # past the ',' the boundary was chosen to have
        self._offset += len(text) - len(rest)
        self._next_cut_bytes = SEGMENT_BYTES
        if not rest:
            if final:
                self._syntax("the body ends inside the recipients")
            self._pending, self._pending_bytes = [], 0
            self._state = _ELEMENT
            return
        if rest[0] != ord("{"):
            raise ValidationError(f"recipients[{len(self._recipients)}]", _NOT_AN_OBJECT)
        self._pending, self._pending_bytes = [rest], len(rest)
        if final:
            self._cut(final=True)

    def _last_boundary(self, text: bytes) -> tuple[int, int] | None:
        """(end of the last whole element in ``text``, elements up to it), or None if the last
        `CUT_TRIES` candidates are no boundary (``text`` holds no whole element yet)."""
        position = len(text)
        for _ in range(CUT_TRIES):
            while True:
                brace = text.rfind(b"}", 0, position)
                if brace < 0:
                    return None
                position = brace
                follower = text[brace + 1 : brace + 65].lstrip(_WHITESPACE)[:1]
                if follower in (b",", b"]"):
                    break
            candidate = b"[" + text[: brace + 1] + b"]"
            try:
                return brace + 1, len(orjson.loads(candidate))
            except orjson.JSONDecodeError as exc:
                if exc.msg.startswith("unexpected content after document"):
                    # The list ended before this brace: its last element is the '}' before its ']'.
                    closed = len(candidate.decode()[: exc.pos].encode())
                    last = text.rfind(b"}", 0, candidate.rfind(b"]", 0, closed) - 1)
                    if last < 0:
                        return None
                    return last + 1, len(orjson.loads(b"[" + text[: last + 1] + b"]"))
                # orjson counts characters: a failure before the last one is in the text itself.
                if exc.pos < len(candidate.translate(None, _UTF8_CONTINUATION)) - 1:
                    raise ValidationError("recipients", f"not valid JSON: {exc.msg}") from None
        return None

    # -- bytes -----------------------------------------------------------------------------

    def _skip_whitespace(self) -> bool:
        """Drop leading whitespace; True if a byte is left."""
        stripped = self._buffer.lstrip(_WHITESPACE)
        self._offset += len(self._buffer) - len(stripped)
        self._buffer = stripped
        return bool(stripped)

    def _consume(self, count: int) -> None:
        self._buffer = self._buffer[count:]
        self._offset += count

    def _syntax(self, reason: str) -> None:
        raise ValidationError("body", f"not valid JSON: {reason} (byte {self._offset})")


def _value_end(text: bytes) -> int | None:
    """Where the JSON value at the start of ``text`` ends, or None if it has not ended yet
    (a value that ends early because ``text`` is cut inside a string fails orjson later)."""
    first = text[0]
    if first == ord('"'):
        match = _STRING.match(text)
        return match.end() if match else None
    if first in b"{[":
        depth = 0
        for token in _NESTED_TOKEN.finditer(text):
            value = token.group()
            if value == b'"':
                return None  # a string not whole yet
            if value in (b"{", b"["):
                depth += 1
            elif value in (b"}", b"]"):
                depth -= 1
                if depth == 0:
                    return token.end()
        return None
    scalar = _SCALAR.match(text)
    assert scalar is not None  # the pattern matches the empty string
    return scalar.end() if scalar.end() < len(text) else None
