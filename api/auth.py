"""Bearer API-key authentication; every route depends on it.

A key not in this process's cache is looked up in PostgreSQL only if the sign-in throttle
(`engine.sign_in_limits`) admits the attempt: guessing keys gets 429, not database work.
"""

from __future__ import annotations

import time
from threading import Lock

from fastapi import Request

from engine.runtime import get_runtime
from engine.sign_in_limits import SignInLimits, SignInThrottle
from engine.tenants import Principal, authenticate

#: Seconds an authenticated key is trusted without asking PostgreSQL again (revocation delay).
CACHE_SECONDS = 10.0

_cache: dict[str, tuple[float, Principal]] = {}
_cache_lock = Lock()


class AuthError(Exception):
    """The caller is not authenticated (401) or not allowed (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _unauthorised(detail: str) -> AuthError:
    return AuthError(401, "unauthorised", detail)


def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorised("send 'Authorization: Bearer <api key>'")
    key = key.strip()
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    attempt = sign_in_throttle().admit(client_address(request), key)
    with get_runtime().pool.connection() as conn:
        found = authenticate(conn, key)
    if found is None:
        attempt.failed()
        raise _unauthorised("unknown or revoked API key")
    attempt.succeeded()
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, found)
    return found


def client_address(request: Request) -> str | None:
    """The caller's IP address (uvicorn takes it from X-Forwarded-For only when the peer is one of
    its FORWARDED_ALLOW_IPS, a trusted proxy)."""
    return request.client.host if request.client else None


def sign_in_throttle() -> SignInThrottle:
    """The throttle of key lookups, shared by API authentication and console sign-in."""
    rt = get_runtime()
    return SignInThrottle(rt.redis, rt.keys, SignInLimits.from_settings(rt.settings))


def forget_key(key_id: int) -> None:
    """Drop a revoked key from this process's cache at once (other processes: within CACHE_SECONDS)."""
    with _cache_lock:
        for key, (_, who) in list(_cache.items()):
            if who.key_id == key_id:
                del _cache[key]


def require(scope: str, who: Principal) -> None:
    if not who.allows(scope):
        raise AuthError(403, "forbidden", f"this API key lacks the '{scope}' scope")
