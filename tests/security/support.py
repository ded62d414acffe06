"""Helpers of the security tests: keys of a tenant with chosen scopes, signed-in console clients,
and client addresses of their own (through X-Forwarded-For, which the API trusts from loopback,
as uvicorn trusts its FORWARDED_ALLOW_IPS) so that throttling tests never share a bucket."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg

from engine.accounts.tenants import KEY_PREFIX, create_api_key, tenant_id_by_name
from tests.support.stack import Stack

#: The CSRF token of a signed-in console page's forms.
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def key_of(client: httpx.Client) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


def another_key(stack: Stack, tenant: str, scopes: tuple[str, ...]) -> str:
    """A new key of the tenant named ``tenant`` with only ``scopes``."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        return create_api_key(conn, tenant_id_by_name(conn, tenant), scopes)


def client_address() -> str:
    """A random address of 198.18.0.0/15 (reserved for benchmarks): one no other test uses."""
    raw = secrets.randbits(17)
    return f"198.{18 + (raw >> 16)}.{(raw >> 8) & 0xFF}.{raw & 0xFF}"


def wrong_key(prefix: str | None = None) -> str:
    """A key shaped like a real one that no tenant has (with ``prefix`` as its start if given)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key if prefix is None else prefix + key[len(prefix) :]


def browser(stack: Stack, address: str | None = None) -> httpx.Client:
    """A client of the console that does not follow redirects, as ``address`` if given."""
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.Client(base_url=stack.settings.api_url, headers=headers, timeout=60, follow_redirects=False)


@contextmanager
def signed_in(stack: Stack, key: str) -> Iterator[httpx.Client]:
    """A console client signed in with ``key``."""
    with browser(stack) as client:
        response = client.post("/console/login", data={"api_key": key})
        assert response.status_code == 303, response.text[:300]
        yield client


def csrf_token(client: httpx.Client, job_id: int) -> str:
    page = client.get(f"/console/jobs/{job_id}")
    assert page.status_code == 200, page.text[:300]
    found = CSRF_TOKEN.search(page.text)
    assert found, "the job page has no form with a CSRF token"
    return found[1]
