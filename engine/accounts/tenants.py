"""Tenants, their API keys and their registered sender numbers."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection

from engine.accounts.audit import key_actor
from engine.errors import NotFound, SenderNotRegistered
from engine.intake.phone import normalize_sender

#: Every scope a key can carry; new keys get DEFAULT_SCOPES unless told otherwise.
ALL_SCOPES = ("send", "read", "export:unmasked", "admin")
DEFAULT_SCOPES = ("send", "read")
#: Visible start of every key, so a leaked key is recognisable in a secret scanner.
KEY_PREFIX = "bsk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant, what the caller may do, and who it is for the audit log.

    An API key's principal has the key's id and scopes; an operator's (a console session signed
    in with an email) has no key id and its role's scopes (`engine.accounts.operators`).
    """

    tenant_id: int
    key_id: int | None
    scopes: frozenset[str]
    #: Who, as the audit log names them (`engine.accounts.audit`): ``API key bsk_…`` or an email.
    actor: str = ""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def key_prefix(key: str) -> str:
    """The visible start of a key (``api_keys.key_prefix``): what a key list shows of it."""
    return key[:10]


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create_tenant(conn: Connection, name: str) -> int:
    row = conn.execute("INSERT INTO tenants (name) VALUES (%s) RETURNING id", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def tenant_id_by_name(conn: Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM tenants WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no tenant named {name!r}")
    return int(row[0])


def create_api_key(conn: Connection, tenant_id: int, scopes: tuple[str, ...] = DEFAULT_SCOPES) -> str:
    """A new API key for the tenant. Only its hash is stored: the key is shown this once."""
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (tenant_id, key_hash, key_prefix, scopes) VALUES (%s, %s, %s, %s)",
        (tenant_id, hash_key(key), key_prefix(key), list(scopes)),
    )
    return key


def list_api_keys(conn: Connection, tenant_id: int) -> list[dict[str, object]]:
    """The tenant's keys (never the keys themselves: their visible prefix, scopes and dates)."""
    rows = conn.execute(
        """
        SELECT id, key_prefix, scopes, created_at, revoked_at FROM api_keys
        WHERE tenant_id = %s ORDER BY id
        """,
        (tenant_id,),
    ).fetchall()
    return [
        {"id": id_, "prefix": prefix, "scopes": list(scopes), "created_at": created, "revoked_at": revoked}
        for id_, prefix, scopes, created, revoked in rows
    ]


def revoke_api_key(conn: Connection, tenant_id: int, key_id: int) -> None:
    """Revoke one of the tenant's keys (again is harmless); NotFound if it has no such key."""
    updated = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND tenant_id = %s",
        (key_id, tenant_id),
    ).rowcount
    if not updated:
        raise NotFound(f"API key {key_id} not found")


def rotate_api_key(conn: Connection, tenant_id: int, key_id: int) -> str:
    """A new key with the scopes of ``key_id``, which is revoked in the same transaction.

    Raises:
      NotFound: the tenant has no such key, or it is revoked already (rotate a live key).
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT scopes FROM api_keys WHERE id = %s AND tenant_id = %s AND revoked_at IS NULL FOR UPDATE",
            (key_id, tenant_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found or already revoked")
        key = create_api_key(conn, tenant_id, tuple(row[0]))
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
    return key


def authenticate(conn: Connection, key: str) -> Principal | None:
    """The principal behind an API key, or None if the key is unknown or revoked."""
    row = conn.execute(
        "SELECT id, tenant_id, scopes, key_prefix FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(key),),
    ).fetchone()
    if row is None:
        return None
    return Principal(
        tenant_id=int(row[1]), key_id=int(row[0]), scopes=frozenset(row[2]), actor=key_actor(str(row[3]))
    )


def principal_by_key_id(conn: Connection, key_id: int) -> Principal | None:
    """The principal of a key known by id (a console session), or None once the key is revoked."""
    row = conn.execute(
        "SELECT tenant_id, scopes, key_prefix FROM api_keys WHERE id = %s AND revoked_at IS NULL", (key_id,)
    ).fetchone()
    if row is None:
        return None
    return Principal(
        tenant_id=int(row[0]), key_id=key_id, scopes=frozenset(row[1]), actor=key_actor(str(row[2]))
    )


def tenant_name(conn: Connection, tenant_id: int) -> str:
    row = conn.execute("SELECT name FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    return str(row[0])


#: States of a sender number; only ``approved`` numbers may send.
SENDER_STATES = ("pending", "approved", "blocked")


def add_sender(conn: Connection, tenant_id: int, number: str, state: str = "approved") -> str:
    """Register a sender number (normalised) for the tenant in ``state``; returns the stored form.

    The CLI registers numbers an operator has verified (approved); the API registers a tenant's
    request as ``pending`` until an operator approves it (`set_sender_state`).
    """
    if state not in SENDER_STATES:
        raise ValueError(f"state must be one of {', '.join(SENDER_STATES)}")
    normalised = normalize_sender(number)
    conn.execute(
        """
        INSERT INTO sender_numbers (tenant_id, number, state, reviewed_at)
        VALUES (%s, %s, %s, CASE WHEN %s = 'pending' THEN NULL ELSE now() END)
        ON CONFLICT (tenant_id, number)
        DO UPDATE SET state = EXCLUDED.state, reviewed_at = EXCLUDED.reviewed_at
        """,
        (tenant_id, normalised, state, state),
    )
    return normalised


def request_sender(conn: Connection, tenant_id: int, number: str) -> tuple[str, str]:
    """A tenant asks to send from ``number``: registered as pending unless it is known already.
    Returns (stored number, its state) — a blocked number stays blocked."""
    normalised = normalize_sender(number)
    conn.execute(
        """
        INSERT INTO sender_numbers (tenant_id, number, state) VALUES (%s, %s, 'pending')
        ON CONFLICT (tenant_id, number) DO NOTHING
        """,
        (tenant_id, normalised),
    )
    row = conn.execute(
        "SELECT state FROM sender_numbers WHERE tenant_id = %s AND number = %s", (tenant_id, normalised)
    ).fetchone()
    assert row is not None
    return normalised, str(row[0])


def set_sender_state(conn: Connection, tenant_id: int, number: str, state: str) -> None:
    """An operator's review: approve or block a registered number (NotFound if not registered)."""
    if state not in SENDER_STATES:
        raise ValueError(f"state must be one of {', '.join(SENDER_STATES)}")
    updated = conn.execute(
        "UPDATE sender_numbers SET state = %s, reviewed_at = now() WHERE tenant_id = %s AND number = %s",
        (state, tenant_id, normalize_sender(number)),
    ).rowcount
    if not updated:
        raise NotFound(f"sender {number} is not registered for this tenant")


@dataclass(frozen=True, slots=True)
class SenderNumber:
    """A tenant's sender number and its review."""

    number: str
    #: One of `SENDER_STATES`.
    state: str
    #: When it was registered or requested.
    requested_at: datetime
    #: When an operator last approved or blocked it (None while it waits).
    reviewed_at: datetime | None

    @property
    def changed_at(self) -> datetime:
        """When its state last changed."""
        return self.reviewed_at or self.requested_at


def senders(conn: Connection, tenant_id: int) -> list[SenderNumber]:
    """The tenant's sender numbers, oldest first, with their states and when they changed."""
    rows = conn.execute(
        """
        SELECT number, state, created_at, reviewed_at FROM sender_numbers
        WHERE tenant_id = %s ORDER BY created_at, number
        """,
        (tenant_id,),
    ).fetchall()
    return [SenderNumber(str(n), str(s), created, reviewed) for n, s, created, reviewed in rows]


def list_senders(conn: Connection, tenant_id: int) -> list[tuple[str, str]]:
    """The tenant's sender numbers and their states."""
    return [(sender.number, sender.state) for sender in senders(conn, tenant_id)]


def require_sender(conn: Connection, tenant_id: int, number: str) -> None:
    """Raise SenderNotRegistered unless ``number`` is an approved sender of the tenant."""
    row = conn.execute(
        "SELECT state FROM sender_numbers WHERE tenant_id = %s AND number = %s", (tenant_id, number)
    ).fetchone()
    if row is None:
        raise SenderNotRegistered(number)
    if row[0] != "approved":
        raise SenderNotRegistered(number, state=str(row[0]))
