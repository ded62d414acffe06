"""A tenant's callback settings on its row: the default URL its jobs' callbacks go to, and the
secrets they are signed with.

Rotation: `rotate_secret` makes a new secret current and keeps the old one valid for
`ROTATION_OVERLAP` (both sign every callback meanwhile, see `engine.callbacks.signing`), so a
receiver can switch to the new secret without dropping a callback.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

from engine.callbacks.delivery_state import enable_endpoint
from engine.callbacks.signing import new_secret

#: How long the previous secret stays valid after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


def set_callback_url(conn: Connection[Any], tenant_id: int, url: str | None) -> None:
    """Set (or with None clear) the tenant's default callback URL; the caller checked it
    (`engine.callbacks.urls.check_callback_url`). Setting a URL again enables it after a 410
    and lifts its back-off. Jobs already accepted keep the URL they were accepted with."""
    conn.execute("UPDATE tenants SET callback_url = %s WHERE id = %s", (url, tenant_id))
    if url is not None:
        enable_endpoint(conn, tenant_id, url)


def callback_url(conn: Connection[Any], tenant_id: int) -> str | None:
    row = conn.execute("SELECT callback_url FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    return None if row is None else row[0]


def current_secret(conn: Connection[Any], tenant_id: int) -> str:
    """The tenant's callback secret, made on first use."""
    made = new_secret()
    row = conn.execute(
        "UPDATE tenants SET callback_secret = coalesce(callback_secret, %s) WHERE id = %s"
        " RETURNING callback_secret",
        (made, tenant_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no tenant {tenant_id}")
    return str(row[0])


def rotate_secret(conn: Connection[Any], tenant_id: int, now: datetime) -> str:
    """A new current secret; the old one stays valid for `ROTATION_OVERLAP`. Returns the new one."""
    made = new_secret()
    row = conn.execute(
        """
        UPDATE tenants SET callback_previous_secret = callback_secret,
                           callback_previous_until = CASE WHEN callback_secret IS NULL THEN NULL ELSE %s END,
                           callback_secret = %s
        WHERE id = %s RETURNING callback_secret
        """,
        (now + ROTATION_OVERLAP, made, tenant_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no tenant {tenant_id}")
    return str(row[0])


def secrets_in_force(conn: Connection[Any], tenant_id: int, now: datetime) -> list[str]:
    """The secrets a callback is signed with now: the current one (made if none), then the
    previous one while its overlap lasts."""
    current = current_secret(conn, tenant_id)
    row = conn.execute(
        "SELECT callback_previous_secret, callback_previous_until FROM tenants WHERE id = %s", (tenant_id,)
    ).fetchone()
    previous, until = row if row is not None else (None, None)
    return [current, previous] if previous and until is not None and until > now else [current]
