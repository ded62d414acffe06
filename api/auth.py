"""Bearer API-key authentication; every route depends on it."""

from __future__ import annotations

import time
from threading import Lock

from fastapi import Request

from engine.platform_keys import PlatformPrincipal, authenticate_platform
from engine.runtime import get_runtime
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
    with get_runtime().pool.connection() as conn:
        found = authenticate(conn, key)
    if found is None:
        raise _unauthorised("unknown or revoked API key")
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + CACHE_SECONDS, found)
    return found


def platform_principal(request: Request) -> PlatformPrincipal:
    """The caller of a platform route: a platform key (looked up every time, so revoking one
    works at once; these calls are rare). A tenant's key, whatever its scopes, gets 403."""
    key = _bearer(request)
    with get_runtime().pool.connection() as conn:
        found = authenticate_platform(conn, key)
        if found is None and authenticate(conn, key) is not None:
            raise AuthError(
                403,
                "forbidden",
                "this needs the 'platform' scope: only the platform operator's keys hold it"
                " (balsong platform-key create), never a tenant's, admin or not",
            )
    if found is None:
        raise _unauthorised("unknown or revoked API key")
    return found


def forget_key(key_id: int) -> None:
    """Drop a revoked key from this process's cache at once (other processes: within CACHE_SECONDS)."""
    with _cache_lock:
        for key, (_, who) in list(_cache.items()):
            if who.key_id == key_id:
                del _cache[key]


def require(scope: str, who: Principal) -> None:
    if not who.allows(scope):
        raise AuthError(403, "forbidden", f"this API key lacks the '{scope}' scope")
