"""Order events as a shop sends them: what is accepted, and how bad ones are named."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.attribution.orders import parse_orders
from engine.errors import ValidationError


def order(**change: Any) -> dict[str, Any]:
    return {
        "order_number": "A-1",
        "member_id": "M1",
        "ordered_at": "2026-11-23T12:00:00",
        "amount": 39000,
        "lines": [
            {
                "product_number": "P1",
                "product_name": "티셔츠",
                "price": "19500",
                "option": "XL",
                "quantity": 2,
            }
        ],
        **change,
    }


def test_one_order_or_a_list_is_accepted_with_kst_times_and_exact_amounts() -> None:
    # Given one order alone, and two orders in a list (one cancelled, amount as a decimal string)
    single = parse_orders(order())
    many = parse_orders({"orders": [order(), order(order_number="A-2", amount="10.50", status="cancelled")]})

    # Then times without an offset are KST, amounts exact, status placed unless said otherwise
    assert single[0].ordered_at == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert single[0].amount == Decimal(39000) and single[0].status == "placed"
    assert single[0].lines[0] == {
        "product_number": "P1",
        "product_name": "티셔츠",
        "price": "19500",
        "option": "XL",
        "quantity": 2,
    }
    assert [(o.order_number, o.amount, o.status) for o in many] == [
        ("A-1", Decimal(39000), "placed"),
        ("A-2", Decimal("10.50"), "cancelled"),
    ]


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        (order(amount=-1), "amount"),
        (order(amount="1.005"), "amount"),
        (order(amount=True), "amount"),
        (order(ordered_at="yesterday"), "ordered_at"),
        (order(member_id=""), "member_id"),
        (order(order_number=None), "order_number"),
        (order(status="refunded"), "status"),
        (order(lines=[{"product_number": "P1", "price": 1, "quantity": 0}]), "lines[0].quantity"),
        (order(lines=[{"price": 1}]), "lines[0].product_number"),
        ({"orders": [order(), order(amount="x")]}, "orders[1].amount"),
        ({"orders": [order(), order()]}, "orders"),
        ({"orders": []}, "orders"),
        ([order()], "body"),
    ],
)
def test_bad_orders_are_refused_naming_the_field(request_body: Any, field: str) -> None:
    # When a bad order event is parsed, Then it is refused naming the field at fault
    with pytest.raises(ValidationError) as caught:
        parse_orders(request_body)
    assert caught.value.field == field
