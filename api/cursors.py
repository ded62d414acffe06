"""Signed page cursors at the API's edge: every paginated route opens the cursor it is given
and signs the ``next_cursor`` it returns (`engine.cursors`), so the engine only ever reads
positions this server wrote.

A cursor's scope names its list and the tenant (and the job) it pages through: a cursor of
another list, job or tenant is refused like a forged one.
"""

from __future__ import annotations

from typing import Any

from engine.runtime import get_runtime


def jobs_scope(tenant_id: int) -> str:
    return f"jobs:{tenant_id}"


def recipients_scope(tenant_id: int, job_id: int) -> str:
    return f"recipients:{tenant_id}:{job_id}"


def opt_outs_scope(tenant_id: int) -> str:
    return f"opt-outs:{tenant_id}"


def ledger_scope(tenant_id: int) -> str:
    return f"ledger:{tenant_id}"


def orders_scope(tenant_id: int, job_id: int) -> str:
    return f"orders:{tenant_id}:{job_id}"


def open_cursor(scope: str, cursor: str | None) -> str | None:
    """The position ``cursor`` carries (None for the first page); ValidationError on ``cursor``
    if this server did not make it for this list."""
    return None if cursor is None else get_runtime().cursors.open(scope, cursor)


def signed(page: dict[str, Any], scope: str) -> dict[str, Any]:
    """``page`` with its ``next_cursor`` (if any) signed for ``scope``."""
    if page.get("next_cursor") is not None:
        page["next_cursor"] = get_runtime().cursors.sign(scope, str(page["next_cursor"]))
    return page
