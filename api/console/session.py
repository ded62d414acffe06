"""Console sign-in: an operator signs in once with an API key and gets a session cookie.

The key itself never goes into the cookie or the browser's storage. The cookie holds a random
token; Redis holds, under the token's SHA-256, the id of the key it was made from and a CSRF
token for the session's forms. Every request looks the key up again by id, so revoking the key
ends its console sessions at once. Sessions expire after ``SESSION_SECONDS`` of inactivity.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson
from fastapi import Request

from engine.runtime import get_runtime
from engine.tenants import Principal, authenticate, principal_by_key_id

#: Name of the session cookie.
COOKIE = "balsong_console"
#: Idle seconds after which a session ends.
SESSION_SECONDS = 8 * 3600


class SignInRequired(Exception):
    """No valid console session: the operator is sent to the sign-in page."""


class CsrfRejected(Exception):
    """A console form came without this session's CSRF token."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    principal: Principal
    csrf_token: str


def _token_key(token: str) -> str:
    return get_runtime().keys.console_session(hashlib.sha256(token.encode()).hexdigest())


def sign_in(api_key: str) -> str | None:
    """A new session token for the key's holder, or None if the key is unknown or revoked."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        found = authenticate(conn, api_key.strip())
    if found is None:
        return None
    token = secrets.token_urlsafe(32)
    record = {"key_id": found.key_id, "csrf": secrets.token_urlsafe(32)}
    rt.redis.set(_token_key(token), orjson.dumps(record), ex=SESSION_SECONDS)
    return token


def sign_out(request: Request) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        get_runtime().redis.delete(_token_key(token))


def current_session(request: Request) -> ConsoleSession:
    """The signed-in operator's session; SignInRequired if there is none (FastAPI dependency)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired
    rt = get_runtime()
    key = _token_key(token)
    raw = rt.redis.get(key)
    if raw is None:
        raise SignInRequired
    record = orjson.loads(raw)  # type: ignore[arg-type]
    with rt.pool.connection() as conn:
        found = principal_by_key_id(conn, int(record["key_id"]))
    if found is None:
        rt.redis.delete(key)
        raise SignInRequired
    rt.redis.expire(key, SESSION_SECONDS)
    return ConsoleSession(found, str(record["csrf"]))


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """Raise CsrfRejected unless a form carried this session's token (compared in constant time)."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfRejected
