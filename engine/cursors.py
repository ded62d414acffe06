"""Page cursors that only this server can make: ``base64url(position) "." base64url(MAC)``.

A list's position (a row id, a seq, a member id, a time and id) goes out signed with HMAC-SHA256
under ``Settings.cursor_secret`` and over the list it belongs to (its scope: the route, the
tenant, the job). A cursor that was forged, altered, made for another list or another tenant,
too long or not ASCII is refused as a ``ValidationError`` on ``cursor`` before its position is
read, so a position reaches SQL only as this server wrote it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from engine.errors import ValidationError

#: Longest cursor accepted, in characters; those we make are far shorter.
MAX_CURSOR_LENGTH = 512
#: Bytes of the MAC kept (128 bits).
_MAC_BYTES = 16


class CursorCodec:
    """Signs and opens the cursors of every paginated list.

    Parameters:
      secret: the server-side key (``Settings.cursor_secret``); cursors made under one secret
        are refused under another.
    """

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        if not secret:
            # An empty key signs cursors anyone can forge (production requires the secret).
            raise ValueError("BALSONG_CURSOR_SECRET: must not be empty")
        self._key = secret.encode()

    def _mac(self, scope: str, position: bytes) -> bytes:
        message = scope.encode() + b"\x00" + position
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, scope: str, position: str) -> str:
        """The cursor for ``position`` in the list ``scope`` (e.g. ``"recipients:7:42"``)."""
        raw = position.encode()
        return f"{_b64(raw)}.{_b64(self._mac(scope, raw))}"

    def open(self, scope: str, cursor: str) -> str:
        """The position a cursor of the list ``scope`` carries.

        Raises:
          ValidationError: on ``cursor``: not one this server made for this list.
        """
        if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
            raise _refused()
        encoded_position, dot, encoded_mac = cursor.partition(".")
        if not dot:
            raise _refused()
        try:
            position = _unb64(encoded_position)
            mac = _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            raise _refused() from None
        # Only the canonical spelling opens: base64's unused low bits cannot vary a cursor.
        if _b64(position) != encoded_position or _b64(mac) != encoded_mac:
            raise _refused()
        if not hmac.compare_digest(mac, self._mac(scope, position)):
            raise _refused()
        return position.decode()


def _refused() -> ValidationError:
    return ValidationError("cursor", "not a cursor this API returned for this list", code="invalid_cursor")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
