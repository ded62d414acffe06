"""How many bytes a message takes on a Korean carrier, and which characters it cannot carry.

Korean carriers limit SMS to 90 bytes and LMS to 2,000 bytes counted in "EUC-KR". In practice
they mean CP949 (Microsoft's superset of EUC-KR, Python codec ``cp949``): every one of the
11,172 modern Hangul syllables is 2 bytes, ASCII is 1 byte. Python's strict ``euc_kr`` codec
covers only the 2,350 syllables of KS X 1001 and writes any other syllable as an 8-byte
make-up sequence: "똠" is ``b'\\xa4\\xd4\\xa4\\xa8\\xa4\\xc7\\xa4\\xb1'`` (8 bytes) in ``euc_kr``
but ``b'\\x8cc'`` (2 bytes) in ``cp949``. Counting with ``euc_kr`` would overcount names such as
"똠" or "햏" fourfold and push messages from SMS to LMS, or refuse them, for nothing; so this
module counts in ``cp949`` (``tests/unit/test_encoding.py`` pins both codecs' behaviour).

What CP949 cannot encode (emoji, most accented Latin letters, the no-break space) cannot be
sent by SMS/LMS at all: :func:`encoded_length` refuses it, naming the first such character.

Intake calls :func:`encoded_length` on every rendered message, so pure-ASCII text is answered by
``len`` and everything else by one C-level ``str.encode``.
"""

from __future__ import annotations

__all__ = ["ENCODING", "UnencodableText", "encoded_length"]

#: Codec whose byte count carriers bill and limit by ("EUC-KR" in their documents).
ENCODING = "cp949"


class UnencodableText(ValueError):
    """The text holds a character that SMS/LMS cannot carry.

    Attributes:
      char: the first such character.
      position: its index in the text (in characters).
    """

    def __init__(self, char: str, position: int) -> None:
        self.char = char
        self.position = position
        super().__init__(f"{char!r} (U+{ord(char):04X}) at position {position} cannot be sent by SMS/LMS")


def encoded_length(text: str) -> int:
    """Bytes ``text`` takes in the carriers' encoding (CP949).

    Parameters:
      text: the message as it will be sent (variables already filled in).

    Returns:
      Length in bytes: 1 per ASCII character, 2 per Hangul syllable, jamo, hanja or symbol.

    Raises:
      UnencodableText: for the first character CP949 cannot encode (emoji etc.).
    """
    if text.isascii():
        return len(text)
    try:
        return len(text.encode(ENCODING))
    except UnicodeEncodeError as error:
        raise UnencodableText(text[error.start], error.start) from None
