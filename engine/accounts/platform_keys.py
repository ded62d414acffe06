"""Platform keys: the operator's API keys, for what only the platform may do (add money).

A platform key belongs to no tenant and carries no tenant scope: it cannot send, read or manage
a tenant's keys, and a tenant's key (even ``admin``) is never a platform key. They are kept
apart from ``api_keys`` (migration 0015) and made only by the operator's CLI
(``balsong platform-key create``); the API has no route that makes one. Only their SHA-256 is
stored, as for tenant keys.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from psycopg import Connection

from engine.accounts.tenants import hash_key
from engine.errors import NotFound

#: Visible start of every platform key (tenant keys start ``bsk_``), for secret scanners.
PLATFORM_KEY_PREFIX = "bsp_"


@dataclass(frozen=True, slots=True)
class PlatformPrincipal:
    """A caller holding a live platform key."""

    key_id: int
    name: str
    #: The key's visible start (``bsp_…``), as lists and the audit log show it.
    prefix: str = ""


def create_platform_key(conn: Connection, name: str) -> str:
    """A new platform key named ``name`` (who or what holds it); shown this once."""
    if not name.strip():
        raise ValueError("a platform key needs a name saying who holds it")
    key = PLATFORM_KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO platform_keys (name, key_hash, key_prefix) VALUES (%s, %s, %s)",
        (name, hash_key(key), key[:10]),
    )
    return key


def list_platform_keys(conn: Connection) -> list[dict[str, object]]:
    """Every platform key: id, name, visible prefix, when made and revoked (never the key)."""
    rows = conn.execute(
        "SELECT id, name, key_prefix, created_at, revoked_at FROM platform_keys ORDER BY id"
    ).fetchall()
    return [
        {"id": id_, "name": name, "prefix": prefix, "created_at": created, "revoked_at": revoked}
        for id_, name, prefix, created, revoked in rows
    ]


def revoke_platform_key(conn: Connection, key_id: int) -> None:
    """Revoke a platform key (again is harmless); NotFound if there is no such key."""
    updated = conn.execute(
        "UPDATE platform_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", (key_id,)
    ).rowcount
    if not updated:
        raise NotFound(f"platform key {key_id} not found")


def authenticate_platform(conn: Connection, key: str) -> PlatformPrincipal | None:
    """The holder of a live platform key, or None (a tenant's key is never one)."""
    row = conn.execute(
        "SELECT id, name, key_prefix FROM platform_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    ).fetchone()
    return (
        None if row is None else PlatformPrincipal(key_id=int(row[0]), name=str(row[1]), prefix=str(row[2]))
    )
