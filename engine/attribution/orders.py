"""Order events from a tenant's shop: validated, then stored idempotently by order number.

An event is the whole order: ``order_number``, ``member_id``, ``ordered_at`` (ISO 8601; without
an offset, KST), ``amount`` and ``lines`` (``product_number``, ``product_name``, ``price``,
``option``, ``quantity``), with ``status`` ``placed`` (the default) or ``cancelled``. Any other
field, in an order or a line, is refused (422 ``unknown_field``, naming it).

Sending the same event again changes nothing. A later event for the same number replaces the
order's fields (the shop corrected it), except that a cancelled order stays cancelled: events
may arrive out of order, and a late duplicate of the "placed" event must not bring a cancelled
order back into revenue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from psycopg import Connection

from engine.attribution import attribution
from engine.errors import ValidationError
from engine.inputs import check_text, parse_instant, refuse_unknown

ORDER_STATUSES = ("placed", "cancelled")
#: Every field of an order event, and of one of its lines.
ORDER_FIELDS = frozenset({"order_number", "member_id", "ordered_at", "amount", "status", "lines"})
LINE_FIELDS = frozenset({"product_number", "product_name", "price", "option", "quantity"})
#: Most orders in one request; larger backfills are sent in several.
MAX_ORDERS_PER_REQUEST = 1000
#: Most lines in one order.
MAX_LINES_PER_ORDER = 200
#: Longest order number, member id, product number, product name or option kept.
MAX_TEXT = 200
#: Largest amount or price (numeric(14, 2)).
MAX_AMOUNT = Decimal("999999999999.99")


@dataclass(frozen=True, slots=True)
class Order:
    """One validated order event."""

    order_number: str
    member_id: str
    ordered_at: datetime
    amount: Decimal
    status: str
    #: Each line as stored (JSON object with text price, for exact decimals).
    lines: tuple[dict[str, Any], ...]


def parse_orders(request: Any) -> list[Order]:
    """The orders of a request: one order object, or ``{"orders": [...]}``.

    Raises:
      ValidationError: names the first field at fault (``orders[3].amount``); nothing is stored.
    """
    if isinstance(request, Mapping) and "orders" in request:
        refuse_unknown(request, ("orders",), 'a request of several orders, {"orders": [...]},')
        items = request["orders"]
        if not isinstance(items, list) or not items:
            raise ValidationError("orders", "must be a non-empty list of orders")
        if len(items) > MAX_ORDERS_PER_REQUEST:
            raise ValidationError(
                "orders", f"at most {MAX_ORDERS_PER_REQUEST} orders per request, got {len(items)}"
            )
        prefixes = [f"orders[{i}]." for i in range(len(items))]
    elif isinstance(request, Mapping):
        items, prefixes = [request], [""]
    else:
        raise ValidationError("body", 'must be an order object or {"orders": [...]}')
    orders = [_order(item, prefix) for item, prefix in zip(items, prefixes, strict=True)]
    numbers = [o.order_number for o in orders]
    if len(set(numbers)) != len(numbers):
        duplicate = next(n for n in numbers if numbers.count(n) > 1)
        raise ValidationError("orders", f"order {duplicate!r} appears twice in one request")
    return orders


def store_orders(
    conn: Connection, tenant_id: int, orders: Sequence[Order], now: datetime
) -> list[dict[str, Any]]:
    """Upsert ``orders`` and attribute them, in one transaction; each order as it now stands
    (``order_number``, ``status``, ``attributed_job_id``)."""
    # Rows are locked in order-number order: two requests with the same orders cannot deadlock.
    ordered = sorted(orders, key=lambda o: o.order_number)
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO orders AS o (tenant_id, order_number, member_id, ordered_at, amount, status, lines,
                                     received_at, updated_at)
            SELECT %(tenant)s, e.number, e.member, e.ordered_at, e.amount, e.status, e.lines,
                   %(now)s, %(now)s
            FROM unnest(%(numbers)s::text[], %(members)s::text[], %(times)s::timestamptz[],
                        %(amounts)s::numeric[], %(statuses)s::text[], %(lines)s::jsonb[])
                 AS e (number, member, ordered_at, amount, status, lines)
            ON CONFLICT (tenant_id, order_number) DO UPDATE
                SET member_id = excluded.member_id, ordered_at = excluded.ordered_at,
                    amount = excluded.amount, status = excluded.status, lines = excluded.lines,
                    updated_at = excluded.updated_at
                -- Cancelled is final; an identical event rewrites nothing.
                WHERE o.status <> 'cancelled'
                  AND (o.member_id, o.ordered_at, o.amount, o.status, o.lines)
                      IS DISTINCT FROM (excluded.member_id, excluded.ordered_at, excluded.amount,
                                        excluded.status, excluded.lines)
            """,
            {
                "tenant": tenant_id,
                "now": now,
                "numbers": [o.order_number for o in ordered],
                "members": [o.member_id for o in ordered],
                "times": [o.ordered_at for o in ordered],
                "amounts": [o.amount for o in ordered],
                "statuses": [o.status for o in ordered],
                "lines": [orjson.dumps(list(o.lines)).decode() for o in ordered],
            },
        )
        numbers = [o.order_number for o in orders]
        attribution.attribute_orders(conn, now, tenant_id=tenant_id, order_numbers=numbers)
        rows = conn.execute(
            """
            SELECT order_number, status, attributed_job_id FROM orders
            WHERE tenant_id = %s AND order_number = ANY(%s)
            """,
            (tenant_id, numbers),
        ).fetchall()
    found = {row[0]: row for row in rows}
    return [{"order_number": n, "status": found[n][1], "attributed_job_id": found[n][2]} for n in numbers]


def _order(item: Any, prefix: str) -> Order:
    if not isinstance(item, Mapping):
        raise ValidationError(prefix.rstrip(".") or "body", "must be an order object")
    refuse_unknown(item, ORDER_FIELDS, "an order", prefix)
    status = item.get("status", "placed")
    if status not in ORDER_STATUSES:
        raise ValidationError(f"{prefix}status", f"must be one of {', '.join(ORDER_STATUSES)}")
    lines = item.get("lines", [])
    if not isinstance(lines, list) or len(lines) > MAX_LINES_PER_ORDER:
        raise ValidationError(
            f"{prefix}lines", f"must be a list of at most {MAX_LINES_PER_ORDER} order lines"
        )
    return Order(
        order_number=_required_text(item, "order_number", prefix),
        member_id=_required_text(item, "member_id", prefix),
        ordered_at=_instant(item.get("ordered_at"), f"{prefix}ordered_at"),
        amount=_money(item.get("amount"), f"{prefix}amount"),
        status=str(status),
        lines=tuple(_line(line, f"{prefix}lines[{i}].") for i, line in enumerate(lines)),
    )


def _line(item: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise ValidationError(
            prefix.rstrip("."), "must be an object {product_number, product_name, price, option?, quantity}"
        )
    refuse_unknown(item, LINE_FIELDS, "an order line", prefix)
    quantity = item.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= 1_000_000:
        raise ValidationError(f"{prefix}quantity", "must be a whole number from 1 to 1000000")
    option = item.get("option")
    return {
        "product_number": _required_text(item, "product_number", prefix),
        "product_name": _optional_text(item, "product_name", prefix),
        # A string keeps the decimal exact through jsonb.
        "price": str(_money(item.get("price"), f"{prefix}price")),
        "option": _optional_text(item, "option", prefix) if option is not None else None,
        "quantity": quantity,
    }


def _required_text(item: Mapping[str, Any], name: str, prefix: str) -> str:
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{prefix}{name}", "is required: a non-empty string")
    _check_text(value, f"{prefix}{name}")
    return value


def _optional_text(item: Mapping[str, Any], name: str, prefix: str) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{prefix}{name}", "must be a string")
    _check_text(value, f"{prefix}{name}")
    return value


def _check_text(value: str, field: str) -> None:
    if len(value) > MAX_TEXT:
        raise ValidationError(field, f"longer than {MAX_TEXT} characters")
    # PostgreSQL's text and jsonb cannot hold a NUL character; no other control but line breaks.
    check_text(value, field)


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(field, "is required: ISO 8601, e.g. 2026-11-23T09:00:00+09:00")
    # Shops in Korea write local times; an offset given wins.
    return parse_instant(field, value)


def _money(value: Any, field: str) -> Decimal:
    """A non-negative amount with at most two decimals, from a JSON number or a decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(field, 'is required: a number such as 39000 or "39000.50"')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(field, f"not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValidationError(field, f"must be between 0 and {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(field, "at most two decimal places")
    return amount
