"""Bearer API-key authentication; every route depends on it.

A key not in this process's cache is looked up in PostgreSQL only if the sign-in throttle
(`engine.accounts.sign_in_limits`) admits the attempt: guessing keys gets 429, not database work.
"""

from __future__ import annotations

import time
from threading import Lock

from fastapi import Request

from engine.accounts.platform_keys import PlatformPrincipal, authenticate_platform
from engine.accounts.sign_in_limits import SignInLimits, SignInThrottle
from engine.accounts.tenants import Principal, authenticate
from engine.runtime import get_runtime

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


def _bearer(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorised("send 'Authorization: Bearer <api key>'")
    return key.strip()


def principal(request: Request) -> Principal:
    key = _bearer(request)
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


def platform_principal(request: Request) -> PlatformPrincipal:
    """The caller of a platform route: a platform key (looked up every time, so revoking one
    works at once; these calls are rare). A tenant's key, whatever its scopes, gets 403."""
    key = _bearer(request)
    attempt = sign_in_throttle().admit(client_address(request), key)
    with get_runtime().pool.connection() as conn:
        found = authenticate_platform(conn, key)
        if found is None and authenticate(conn, key) is not None:
            attempt.failed()  # a tenant's key where the platform's belongs counts against it
            raise AuthError(
                403,
                "forbidden",
                "this needs the 'platform' scope: only the platform operator's keys hold it"
                " (balsong platform-key create), never a tenant's, admin or not",
            )
    if found is None:
        attempt.failed()
        raise _unauthorised("unknown or revoked API key")
    attempt.succeeded()
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
