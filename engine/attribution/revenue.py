"""What a job earned (read side): its attributed orders, revenue and conversion rate, and the
members who ordered, page by page. Cancelled orders are listed with their status but count in
neither orders, revenue nor ordering members."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg import Connection

from engine.clock import KST
from engine.errors import NotFound, ValidationError

#: Most members on one page of a job's orders.
MAX_MEMBERS_PAGE = 200


def job_attribution(conn: Connection, job_id: int, delivered: int) -> dict[str, Any]:
    """The job's ``attribution`` block: orders, revenue (a decimal string), ordering members and
    conversion rate (ordering members / delivered recipients, 0 when nothing was delivered)."""
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE status = 'placed'),
               count(*) FILTER (WHERE status = 'cancelled'),
               coalesce(sum(amount) FILTER (WHERE status = 'placed'), 0),
               count(DISTINCT member_id) FILTER (WHERE status = 'placed')
        FROM orders WHERE attributed_job_id = %s
        """,
        (job_id,),
    ).fetchone()
    assert row is not None
    orders, cancelled, revenue, members = row
    return {
        "orders": orders,
        "cancelled_orders": cancelled,
        "revenue": _money(revenue),
        "ordering_members": members,
        "conversion_rate": round(members / delivered, 4) if delivered else 0.0,
    }


def job_orders(
    conn: Connection, tenant_id: int, job_id: int, *, after: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """A page of the members who ordered after the job's message, by member id, each with its
    orders (newest first) and revenue; ``next_cursor`` continues after the page's last member."""
    if not 1 <= limit <= MAX_MEMBERS_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_MEMBERS_PAGE}")
    if after is not None and "\x00" in after:
        raise ValidationError("cursor", "not a cursor this API returned")
    if (
        conn.execute("SELECT 1 FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)).fetchone()
        is None
    ):
        raise NotFound(f"job {job_id} not found")
    members = [
        row[0]
        for row in conn.execute(
            """
            SELECT DISTINCT member_id FROM orders
            WHERE attributed_job_id = %s AND tenant_id = %s AND (%s::text IS NULL OR member_id > %s)
            ORDER BY member_id LIMIT %s
            """,
            (job_id, tenant_id, after, after, limit + 1),
        )
    ]
    more = len(members) > limit
    members = members[:limit]
    rows = conn.execute(
        """
        SELECT member_id, order_number, ordered_at, amount, status, lines
        FROM orders
        WHERE attributed_job_id = %s AND tenant_id = %s AND member_id = ANY(%s)
        ORDER BY member_id, ordered_at DESC, order_number
        """,
        (job_id, tenant_id, members),
    ).fetchall()
    by_member: dict[str, list[dict[str, Any]]] = {member: [] for member in members}
    for member_id, number, ordered_at, amount, status, lines in rows:
        by_member[member_id].append(
            {
                "order_number": number,
                "ordered_at": ordered_at.astimezone(KST).isoformat(),
                "amount": _money(amount),
                "status": status,
                "lines": lines,
            }
        )
    return {
        "members": [
            {
                "member_id": member,
                "revenue": _money(
                    sum((Decimal(o["amount"]) for o in orders if o["status"] == "placed"), Decimal(0))
                ),
                "orders": orders,
            }
            for member, orders in by_member.items()
        ],
        "next_cursor": members[-1] if more else None,
    }


def _money(value: Decimal) -> str:
    # Decimal strings, as the API shows points: JSON floats would round them.
    return str(value.quantize(Decimal("0.01")))
