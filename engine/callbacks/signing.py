"""The signature every callback carries, and how a receiver checks it.

``Balsong-Signature: t=<unix seconds>,v1=<hex>`` where the hex is HMAC-SHA256, keyed with the
tenant's callback secret, of ``"<t>.<raw body>"``: the time is signed with the body, so a
captured callback cannot be replayed later than the receiver's tolerance. During a rotation the
header carries one ``v1`` per valid secret (the new one first); a receiver accepts the request if
any of them matches a secret it knows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

#: The request header that carries the signature.
HEADER = "Balsong-Signature"
#: How far a signed time may lie from the receiver's clock, by default (seconds).
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh callback secret: 32 random bytes, URL-safe text, prefixed so it is recognisable."""
    return "whsec_" + secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_in_force: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp``, one ``v1`` per secret in force."""
    if not secrets_in_force:
        raise ValueError("a callback needs at least one secret to be signed with")
    return ",".join([f"t={timestamp}", *(f"v1={_mac(s, timestamp, body)}" for s in secrets_in_force)])


def verify(
    header: str, body: bytes, secret: str, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` at a time within ``tolerance_seconds`` of
    ``now`` (what a receiver does; the README shows the same in a few lines)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
