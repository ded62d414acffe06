"""Last-touch attribution of orders on the real PostgreSQL: window edges, the latest delivered
message, fallbacks, tenants, cancelled and repeated order events, late delivery reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from engine.accounts.tenants import create_tenant
from engine.attribution import attribution, revenue
from engine.attribution.orders import parse_orders, store_orders
from engine.config import Settings
from tests.support.deliveries import seed_job_to_members, seed_kakao_fallback, seed_message

pytestmark = pytest.mark.integration

#: When the orders of these tests are placed (a fixed instant: deliveries are placed around it).
ORDERED = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)


_tenants = iter(range(1_000_000))


def new_tenant(conn: psycopg.Connection) -> int:
    return create_tenant(conn, f"attribution-{next(_tenants)}-{datetime.now(UTC).timestamp()}")


def place(conn: psycopg.Connection, tenant_id: int, **fields: Any) -> dict[str, Any]:
    """Store one order event (defaults filled in) as the API would; how it now stands."""
    event = {
        "order_number": "A-1",
        "member_id": "M1",
        "ordered_at": ORDERED.isoformat(),
        "amount": 10000,
        "lines": [{"product_number": "P1", "product_name": "양말", "price": 5000, "quantity": 2}],
        **fields,
    }
    return store_orders(conn, tenant_id, parse_orders(event), ORDERED + timedelta(minutes=1))[0]


def credited(conn: psycopg.Connection, tenant_id: int, number: str) -> tuple[int | None, int | None]:
    row = conn.execute(
        "SELECT attributed_job_id, attributed_seq FROM orders WHERE tenant_id = %s AND order_number = %s",
        (tenant_id, number),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_window_edges_are_inclusive_and_later_deliveries_do_not_count(conn: psycopg.Connection) -> None:
    # Given four members, each delivered one message: exactly 3 days before the order, one second
    # more than that, at the order's instant, and one second after it
    tenant = new_tenant(conn)
    at_edge = seed_message(conn, tenant, "edge", ORDERED - WINDOW)
    seed_message(conn, tenant, "outside", ORDERED - WINDOW - timedelta(seconds=1))
    same_instant = seed_message(conn, tenant, "same", ORDERED)
    seed_message(conn, tenant, "after", ORDERED + timedelta(seconds=1))

    # When each member orders at ORDERED
    for member in ("edge", "outside", "same", "after"):
        place(conn, tenant, order_number=member, member_id=member)

    # Then the window's two ends count, and a delivery before it or after the order does not
    assert credited(conn, tenant, "edge") == at_edge
    assert credited(conn, tenant, "outside") == (None, None)
    assert credited(conn, tenant, "same") == same_instant
    assert credited(conn, tenant, "after") == (None, None)


def test_the_latest_delivered_message_wins_and_failed_ones_are_ignored(conn: psycopg.Connection) -> None:
    # Given a member delivered two messages (2 days and 1 hour before the order), and sent a
    # third 10 minutes before it that failed
    tenant = new_tenant(conn)
    seed_message(conn, tenant, "M1", ORDERED - timedelta(days=2))
    latest = seed_message(conn, tenant, "M1", ORDERED - timedelta(hours=1))
    seed_message(conn, tenant, "M1", ORDERED - timedelta(minutes=10), status="failed")

    # When the member orders
    result = place(conn, tenant)

    # Then the order is credited to the message delivered 1 hour before
    assert result["attributed_job_id"] == latest[0]
    assert credited(conn, tenant, "A-1") == latest


def test_a_kakao_message_delivered_by_fallback_is_credited_with_its_fallback_row(
    conn: psycopg.Connection,
) -> None:
    # Given a KakaoTalk message that failed and was delivered by SMS fallback a day before
    tenant = new_tenant(conn)
    fallback = seed_kakao_fallback(conn, tenant, "M1", ORDERED - timedelta(days=1))

    # When the member orders, Then the fallback SMS row is credited
    place(conn, tenant)
    assert credited(conn, tenant, "A-1") == fallback


def test_another_tenants_message_to_the_same_member_id_is_not_credited(conn: psycopg.Connection) -> None:
    # Given tenant B delivered to member M1 an hour before, and tenant A a day before
    tenant_a, tenant_b = new_tenant(conn), new_tenant(conn)
    own = seed_message(conn, tenant_a, "M1", ORDERED - timedelta(days=1))
    seed_message(conn, tenant_b, "M1", ORDERED - timedelta(hours=1))

    # When A's member M1 orders, Then A's own message is credited
    place(conn, tenant_a)
    assert credited(conn, tenant_a, "A-1") == own


def test_a_tenants_own_window_applies(conn: psycopg.Connection) -> None:
    # Given a tenant with a 1-hour window, and a message delivered 2 hours before the order
    tenant = new_tenant(conn)
    conn.execute("UPDATE tenants SET attribution_window_seconds = 3600 WHERE id = %s", (tenant,))
    seed_message(conn, tenant, "M1", ORDERED - timedelta(hours=2))

    # When the member orders, Then the order is unattributed
    assert place(conn, tenant)["attributed_job_id"] is None


def test_the_same_order_event_twice_is_one_order(conn: psycopg.Connection) -> None:
    # Given a message delivered to M1
    tenant = new_tenant(conn)
    job_id, _ = seed_message(conn, tenant, "M1", ORDERED - timedelta(hours=1))

    # When the shop sends the same order event twice
    first = place(conn, tenant)
    second = place(conn, tenant)

    # Then there is one order, counted once in the job's revenue
    assert first == second
    count = conn.execute("SELECT count(*) FROM orders WHERE tenant_id = %s", (tenant,)).fetchone()
    assert count == (1,)
    summary = revenue.job_attribution(conn, job_id, delivered=1)
    assert (summary["orders"], summary["revenue"], summary["ordering_members"]) == (1, "10000.00", 1)
    assert summary["conversion_rate"] == 1.0


def test_a_cancelled_order_leaves_revenue_and_a_late_placed_event_does_not_bring_it_back(
    conn: psycopg.Connection,
) -> None:
    # Given two orders credited to one job
    tenant = new_tenant(conn)
    job_id, _ = seed_message(conn, tenant, "M1", ORDERED - timedelta(hours=1))
    place(conn, tenant, order_number="A-1", amount=10000)
    place(conn, tenant, order_number="A-2", amount=2500)

    # When A-1 is sent again cancelled, and then its "placed" event arrives late once more
    assert place(conn, tenant, order_number="A-1", amount=10000, status="cancelled")["status"] == "cancelled"
    assert place(conn, tenant, order_number="A-1", amount=10000)["status"] == "cancelled"

    # Then only A-2 counts; A-1 is still listed, with its status
    summary = revenue.job_attribution(conn, job_id, delivered=4)
    assert summary == {
        "orders": 1,
        "cancelled_orders": 1,
        "revenue": "2500.00",
        "ordering_members": 1,
        "conversion_rate": 0.25,
    }
    page = revenue.job_orders(conn, tenant, job_id)
    [member] = page["members"]
    assert member["revenue"] == "2500.00"
    assert {(o["order_number"], o["status"]) for o in member["orders"]} == {
        ("A-1", "cancelled"),
        ("A-2", "placed"),
    }


def test_a_delivery_reported_after_the_order_is_credited_by_the_sweep(conn: psycopg.Connection) -> None:
    # Given an order placed while its message was still in flight (no delivery known yet)
    tenant = new_tenant(conn)
    job_id, seq = seed_message(conn, tenant, "M1", ORDERED - timedelta(minutes=5), status="submitted")
    assert place(conn, tenant)["attributed_job_id"] is None

    # When the delivery report arrives and the scheduler's sweep runs
    conn.execute("UPDATE recipients SET status = 'delivered' WHERE job_id = %s AND seq = %s", (job_id, seq))
    changed = attribution.reattribute_recent(conn, ORDERED + timedelta(hours=1))

    # Then the order is credited to the message; a second sweep changes nothing
    assert changed >= 1
    assert credited(conn, tenant, "A-1") == (job_id, seq)
    attribution.reattribute_recent(conn, ORDERED + timedelta(hours=1))
    assert credited(conn, tenant, "A-1") == (job_id, seq)


def test_members_who_ordered_come_a_page_at_a_time_by_member_id(conn: psycopg.Connection) -> None:
    # Given one job delivered to four members, three of whom ordered (M2 twice)
    tenant = new_tenant(conn)
    job_id = seed_job_to_members(conn, tenant, ["M1", "M2", "M3", "M4"], ORDERED - timedelta(hours=1))
    for number, member, minutes in (("A-1", "M3", 1), ("A-2", "M2", 2), ("A-3", "M2", 3), ("A-4", "M1", 4)):
        place(
            conn,
            tenant,
            order_number=number,
            member_id=member,
            amount="1.50",
            ordered_at=(ORDERED + timedelta(minutes=minutes)).isoformat(),
        )

    # When the job's orders are read two members at a time
    first = revenue.job_orders(conn, tenant, job_id, limit=2)
    second = revenue.job_orders(conn, tenant, job_id, after=first["next_cursor"], limit=2)

    # Then the members come in member id order, each with its orders newest first, then no more
    assert [m["member_id"] for m in first["members"]] == ["M1", "M2"]
    assert [o["order_number"] for o in first["members"][1]["orders"]] == ["A-3", "A-2"]
    assert first["members"][1]["revenue"] == "3.00"
    assert [m["member_id"] for m in second["members"]] == ["M3"]
    assert second["next_cursor"] is None
    # And the conversion rate is ordering members over delivered recipients
    assert revenue.job_attribution(conn, job_id, delivered=4)["conversion_rate"] == 0.75


def test_the_sweep_passes_over_an_order_being_stored_instead_of_waiting(
    conn: psycopg.Connection, settings: Settings
) -> None:
    # Given an order whose delivery is now known, locked by a transaction still storing it
    tenant = new_tenant(conn)
    job_id, seq = seed_message(conn, tenant, "M1", ORDERED - timedelta(minutes=5), status="submitted")
    place(conn, tenant)
    conn.execute("UPDATE recipients SET status = 'delivered' WHERE job_id = %s AND seq = %s", (job_id, seq))
    with psycopg.connect(settings.database_url) as storing:
        storing.execute(
            "SELECT 1 FROM orders WHERE tenant_id = %s AND order_number = 'A-1' FOR UPDATE", (tenant,)
        )

        # When the sweep runs, refusing to wait for any lock
        conn.execute("SET lock_timeout = '1ms'")
        attribution.reattribute_recent(conn, ORDERED + timedelta(hours=1))

        # Then it passed over the locked order
        assert credited(conn, tenant, "A-1") == (None, None)
        storing.rollback()

    # And the next sweep credits it
    attribution.reattribute_recent(conn, ORDERED + timedelta(hours=1))
    conn.execute("RESET lock_timeout")
    assert credited(conn, tenant, "A-1") == (job_id, seq)
