"""Console sign-in: an operator signs in once — with their account (email and password) or with
an API key — and gets a session cookie.

Neither password nor key ever goes into the cookie or the browser's storage. The cookie holds a
random token; Redis holds, under the token's SHA-256, the id of the operator (and their session
epoch) or of the key the session was made from, and a CSRF token for the session's forms. Every
request looks the operator or the key up again by id, so disabling an operator, resetting their
password or revoking the key ends its console sessions at once, and a role changed takes effect
at the next request. Sessions expire after ``SESSION_SECONDS`` of inactivity.

A sign-in by account takes a place in the per-client throttle (`engine.accounts.sign_in_limits`)
and counts towards the account's own lock-out (`engine.accounts.operators`).
Every console POST, sign-in included (login CSRF), must come from the console's own site
(`same_origin`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from fastapi import Request

from api.auth import sign_in_throttle
from api.scopes import NEEDS, Action, allowed
from engine.accounts import operators
from engine.accounts.tenants import Principal, authenticate, principal_by_key_id
from engine.runtime import get_runtime

#: Name of the session cookie.
COOKIE = "balsong_console"
#: Idle seconds after which a session ends.
SESSION_SECONDS = 8 * 3600


class SignInRequired(Exception):
    """No valid console session: the operator is sent to the sign-in page."""


class CsrfRejected(Exception):
    """A console form came without this session's CSRF token."""


class ScopeMissing(Exception):
    """The session's key or role lacks the scope a page or form needs (the API would answer 403 too)."""

    def __init__(self, session: ConsoleSession, scope: str) -> None:
        super().__init__(scope)
        self.session = session
        self.scope = scope


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in operator: what they may do (``principal``), and who they are."""

    principal: Principal
    csrf_token: str
    #: The operator account signed in, or None for a session signed in with an API key.
    operator: operators.Operator | None = None

    @property
    def actor(self) -> str:
        """Who, as the audit log names them: the operator's email, or ``API key bsk_…``."""
        return self.principal.actor

    @property
    def actor_label(self) -> str:
        """Who, as the console's header shows them: the email, or ``API 키 bsk_…``."""
        if self.operator is not None:
            return self.operator.email
        return self.actor.replace("API key ", "API 키 ", 1) + "…"

    @property
    def role(self) -> str | None:
        """The operator's role (``admin``, ``sender``, ``viewer``); None for a key's session."""
        return None if self.operator is None else self.operator.role

    @property
    def role_label(self) -> str | None:
        return None if self.role is None else operators.ROLE_LABELS[self.role]


def _token_key(token: str) -> str:
    return get_runtime().keys.console_session(hashlib.sha256(token.encode()).hexdigest())


def sign_in(api_key: str, client: str | None) -> str | None:
    """A new session token for the key's holder, or None if the key is unknown or revoked.

    Raises:
      SignInThrottled: ``client`` (an IP address) or the key's prefix failed too often lately;
        the key was not looked up.
    """
    rt = get_runtime()
    api_key = api_key.strip()
    attempt = sign_in_throttle().admit(client, api_key)
    with rt.pool.connection() as conn:
        found = authenticate(conn, api_key)
    if found is None:
        attempt.failed()
        return None
    attempt.succeeded()
    return _new_session({"key_id": found.key_id})


def sign_in_operator(email: str, password: str, client: str | None) -> str | None:
    """A new session token for the operator whose email and password these are, or None if
    there is no such account or the password is wrong.

    Raises:
      SignInThrottled: ``client`` (an IP address) failed too often lately; nothing was checked.
      AccountLocked: the account is locked (or this failure locked it).
      AccountDisabled: the password is right but the account is disabled.
    """
    rt = get_runtime()
    attempt = sign_in_throttle().admit_client(client)
    found = operators.sign_in(rt.pool.connection, email, password, rt.clock.now(), client=client)
    if found is None:
        attempt.failed()
        return None
    attempt.succeeded()
    return _new_session({"operator_id": found.id, "epoch": found.session_epoch})


def _new_session(who: dict[str, int | None]) -> str:
    token = secrets.token_urlsafe(32)
    record = {**who, "csrf": secrets.token_urlsafe(32)}
    get_runtime().redis.set(_token_key(token), orjson.dumps(record), ex=SESSION_SECONDS)
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
    operator = None
    found: Principal | None = None
    with rt.pool.connection() as conn:
        if "operator_id" in record:
            operator = operators.operator_by_id(conn, int(record["operator_id"]))
            # Disabled, or signed in before a password reset: the session is over.
            if (
                operator is not None
                and operator.disabled_at is None
                and operator.session_epoch == int(record.get("epoch", -1))
            ):
                found = operator.principal()
        else:
            found = principal_by_key_id(conn, int(record["key_id"]))
    if found is None:
        rt.redis.delete(key)
        raise SignInRequired
    rt.redis.expire(key, SESSION_SECONDS)
    return ConsoleSession(found, str(record["csrf"]), operator)


def session_for(*actions: Action) -> Callable[[Request], ConsoleSession]:
    """A FastAPI dependency: the session, if its key may do every one of ``actions`` (the
    actions whose data a page shows or that a form does, as `api.scopes` maps them for the
    API); ScopeMissing otherwise, before the page reads anything."""

    def scoped_session(request: Request) -> ConsoleSession:
        session = current_session(request)
        for action in actions:
            if not allowed(action, session.principal):
                raise ScopeMissing(session, NEEDS[action])
        return session

    return scoped_session


def same_origin(request: Request) -> None:
    """Raise CsrfRejected for a POST whose ``Origin`` (or, without one, ``Referer``) names another
    site than the console's (FastAPI dependency of every console route).

    The console's site is the host the request was sent to (``Host``), or the host of
    ``public_url`` or ``api_url`` (for a proxy that rewrites ``Host``). Hosts are compared with
    their ports, not schemes: a TLS-terminating proxy makes an ``https`` page's POST arrive as
    ``http``. Browsers send ``Origin`` with every POST, so a form another site makes a browser
    submit is always seen; a request with neither header comes from no browser (curl, a
    script), and cannot act in a victim's browser.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return
    settings = get_runtime().settings
    console_hosts = {
        host.lower()
        for host in (
            request.headers.get("host", ""),
            urlsplit(settings.public_url).netloc,
            urlsplit(settings.api_url).netloc,
        )
        if host
    }
    if source == "null" or urlsplit(source).netloc.lower() not in console_hosts:
        raise CsrfRejected


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """Raise CsrfRejected unless a form carried this session's token (compared in constant time)."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfRejected
