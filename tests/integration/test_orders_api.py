"""Orders through the real API: intake, idempotency, scopes, a job's revenue, its members who
ordered, and the orders export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from engine.accounts.tenants import tenant_id_by_name
from engine.reporting.order_exports import HEADER
from tests.support.deliveries import seed_job_to_members
from tests.support.problems import problem
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def order(number: str, member: str, at: datetime, amount: Any, **change: Any) -> dict[str, Any]:
    return {
        "order_number": number,
        "member_id": member,
        "ordered_at": at.isoformat(),
        "amount": amount,
        "lines": [
            {"product_number": "P-1", "product_name": "양말", "price": 3000, "option": "검정", "quantity": 2},
            {"product_number": "P-2", "product_name": "=HYPERLINK(1)", "price": "4000", "quantity": 1},
        ],
        **change,
    }


def seeded_tenant(stack: Stack, name: str, members: list[str]) -> tuple[Any, int, datetime]:
    """A tenant's client and a job delivered to ``members`` an hour ago; (client, job id, delivery time)."""
    client = stack.new_tenant(name)
    delivered = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = seed_job_to_members(conn, tenant_id_by_name(conn, name), members, delivered)
    return client, job_id, delivered


def test_orders_are_attributed_listed_and_counted_in_the_jobs_results(stack: Stack) -> None:
    # Given a job delivered to members M1..M4 an hour ago
    client, job_id, delivered = seeded_tenant(stack, "orders-api", ["M1", "M2", "M3", "M4"])
    later = delivered + timedelta(minutes=30)

    # When the shop sends one order alone and then two in a list (M9 got no message)
    one = client.post("/v1/orders", json=order("A-1", "M1", later, 10000))
    many = client.post(
        "/v1/orders",
        json={"orders": [order("A-2", "M2", later, "5000.50"), order("A-3", "M9", later, 700)]},
    )

    # Then each answer says how the orders now stand
    assert one.status_code == 200, one.text
    assert one.json() == {
        "orders": [{"order_number": "A-1", "status": "placed", "attributed_job_id": job_id}]
    }
    assert [o["attributed_job_id"] for o in many.json()["orders"]] == [job_id, None]

    # And the job shows 2 orders, their revenue and 2 ordering members of 4 delivered
    attribution = stack.job(client, job_id)["attribution"]
    assert attribution == {
        "orders": 2,
        "cancelled_orders": 0,
        "revenue": "15000.50",
        "ordering_members": 2,
        "conversion_rate": 0.5,
    }
    # And its orders page lists M1 and M2 with their orders and lines
    page = client.get(f"/v1/jobs/{job_id}/orders").json()
    assert [m["member_id"] for m in page["members"]] == ["M1", "M2"]
    assert page["members"][0]["orders"][0]["lines"][0]["product_name"] == "양말"


def test_repeated_and_cancelled_order_events(stack: Stack) -> None:
    # Given an order credited to a job
    client, job_id, delivered = seeded_tenant(stack, "orders-cancel", ["M1"])
    event = order("B-1", "M1", delivered + timedelta(minutes=5), 9000)
    assert client.post("/v1/orders", json=event).status_code == 200

    # When the same event comes again, Then nothing changes
    assert client.post("/v1/orders", json=event).json()["orders"][0]["status"] == "placed"
    assert stack.job(client, job_id)["attribution"]["revenue"] == "9000.00"

    # When it is sent again cancelled, Then it leaves the job's revenue
    cancelled = client.post("/v1/orders", json={**event, "status": "cancelled"})
    assert cancelled.json()["orders"][0]["status"] == "cancelled"
    attribution = stack.job(client, job_id)["attribution"]
    assert (attribution["orders"], attribution["cancelled_orders"], attribution["revenue"]) == (0, 1, "0.00")


def test_order_intake_needs_the_send_scope_and_names_bad_fields(stack: Stack) -> None:
    # Given a read-only key and a sending one
    reader = stack.new_tenant("orders-reader", scopes=("read",))
    sender = stack.new_tenant("orders-sender")
    valid = order("C-1", "M1", datetime.now(UTC), 1000)

    # When each sends orders, Then the read-only key is refused and bad input is named
    assert reader.post("/v1/orders", json=valid).status_code == 403
    bad = sender.post("/v1/orders", json={"orders": [valid, {**valid, "order_number": "C-2", "amount": -5}]})
    assert bad.status_code == 422
    assert problem(bad)["field"] == "orders[1].amount"


def test_another_tenants_job_orders_are_not_found(stack: Stack) -> None:
    # Given a job of one tenant
    _, job_id, _ = seeded_tenant(stack, "orders-owner", ["M1"])
    other = stack.new_tenant("orders-other")
    # When another tenant asks for its orders or their export, Then there is no such job
    assert other.get(f"/v1/jobs/{job_id}/orders").status_code == 404
    assert other.get(f"/v1/jobs/{job_id}/orders/export").status_code == 404


def test_orders_export_has_one_guarded_row_per_order_line(stack: Stack) -> None:
    # Given a job with one order of two lines credited to it, and a cancelled one
    client, job_id, delivered = seeded_tenant(stack, "orders-export", ["M1", "M2"])
    at = delivered + timedelta(minutes=10)
    client.post("/v1/orders", json=order("D-1", "M1", at, 10000))
    client.post("/v1/orders", json=order("D-2", "M2", at, 500, status="cancelled"))

    # When its orders are exported as CSV
    response = client.get(f"/v1/jobs/{job_id}/orders/export", params={"format": "csv"})

    # Then it is a UTF-8 CSV with BOM: the header, then one row per line of the placed order
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert f"balsong-job-{job_id}-orders.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(HEADER)
    kst = (at + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    sent = (delivered - timedelta(minutes=1) + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[1:] == [
        ["SMS", "성공", "M1", sent, "D-1", "10000.00", kst, "P-1", "양말", "3000", "검정", "2"],
        ["SMS", "성공", "M1", sent, "D-1", "10000.00", kst, "P-2", "'=HYPERLINK(1)", "4000", "", "1"],
    ]
    # And another format is refused naming the parameter
    refused = client.get(f"/v1/jobs/{job_id}/orders/export", params={"format": "xlsx"})
    assert problem(refused)["field"] == "format"


def test_the_console_job_page_shows_revenue_orders_and_the_orders_download(stack: Stack) -> None:
    # Given a job with an order of member M1 credited to it
    client, job_id, delivered = seeded_tenant(stack, "orders-console", ["M1", "M2"])
    client.post("/v1/orders", json=order("E-1", "M1", delivered + timedelta(minutes=3), 12000))

    # When an operator signs in with the tenant's key and opens the job
    key = str(client.headers["Authorization"]).removeprefix("Bearer ")
    with httpx.Client(base_url=stack.settings.api_url, follow_redirects=True) as browser:
        browser.post("/console/login", data={"api_key": key}).raise_for_status()
        html = browser.get(f"/console/jobs/{job_id}").text
        download = browser.get(f"/console/jobs/{job_id}/orders/export")

    # Then the page has the conversion section: revenue, the 50 % rate and the order with its product
    assert 'id="orders"' in html and "구매 전환" in html
    assert '<strong id="revenue">12000.00</strong>' in html
    assert '<strong id="conversion-rate">50.00%</strong>' in html
    assert "E-1" in html and "양말 (검정) × 2" in html
    # And the orders CSV downloads from the console too
    assert download.status_code == 200 and download.content.startswith(b"\xef\xbb\xbf")
    assert len(download.content.decode("utf-8-sig").splitlines()) == 3
