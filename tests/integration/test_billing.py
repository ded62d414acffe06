"""Balances, reservations and settlement on the real PostgreSQL.

Given tenants with balances and jobs stored the way intake stores them, when jobs are reserved,
finish with mixed outcomes and are settled (even twice, even at once), then every amount is the
one the price list says, and each balance is the sum of its ledger.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.accounts import billing, opt_outs
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.errors import InsufficientBalance
from engine.intake.intake import prepare_job
from engine.lifecycle.settlement import settle_job
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration

SENDER = "02-1234-5678"


def new_tenant(conn: psycopg.Connection, name: str, points: str | None = None) -> int:
    tenant_id = create_tenant(conn, f"{name}-{datetime.now(UTC).timestamp()}")
    add_sender(conn, tenant_id, SENDER)
    if points:
        billing.top_up(conn, tenant_id, Decimal(points))
    return tenant_id


def store(
    conn: psycopg.Connection, settings: Settings, tenant_id: int, request: dict[str, Any], **kw: Any
) -> int:
    job = prepare_job({"sender": SENDER, **request}, max_recipients=10_000, **kw)
    return store_prepared(conn, settings, tenant_id, job).job_id


def phones(count: int, start: int = 0) -> list[dict[str, str]]:
    return [{"phone": f"010-6000-{start + i:04d}"} for i in range(count)]


def finish(conn: psycopg.Connection, job_id: int, outcomes: dict[int, str]) -> None:
    """Give the job's recipients final statuses (by seq) and mark it finished, as the pipeline would."""
    for seq, status in outcomes.items():
        conn.execute(
            "UPDATE recipients SET status = %s WHERE job_id = %s AND seq = %s", (status, job_id, seq)
        )
    conn.execute("UPDATE jobs SET status = 'partially_failed', completed_at = now() WHERE id = %s", (job_id,))


def refund_rows(conn: psycopg.Connection, job_id: int) -> list[Decimal]:
    rows = conn.execute(
        "SELECT amount FROM ledger WHERE job_id = %s AND kind = 'refund'", (job_id,)
    ).fetchall()
    return [Decimal(r[0]) for r in rows]


def test_mixed_outcomes_are_reserved_in_full_and_refunded_for_what_was_not_delivered(
    conn: psycopg.Connection, settings: Settings
) -> None:
    # Given a tenant with 1,000 points and an auto job: 10 SMS and 5 LMS recipients, 1 invalid
    tenant_id = new_tenant(conn, "mixed", "1000")
    long_text = "긴 안내문입니다. " * 12
    recipients = [{"phone": f"010-6100-{i:04d}", "variables": {"t": ""}} for i in range(10)]
    recipients += [{"phone": f"010-6101-{i:04d}", "variables": {"t": long_text}} for i in range(5)]
    recipients += [{"phone": "010-12", "variables": {"t": ""}}]
    job_id = store(
        conn, settings, tenant_id, {"channel": "auto", "body": "안내#{t}", "recipients": recipients}
    )

    # Then intake reserved every valid recipient at its price (9 per SMS, 30 per LMS), not the invalid one
    assert billing.job_money(conn, job_id).charged == Decimal("240.00")
    assert billing.balance(conn, tenant_id).balance == Decimal("760.00")

    # When 7 SMS are delivered, 2 fail and 1 expires; 4 LMS are delivered and 1 fails
    finish(
        conn,
        job_id,
        {
            **dict.fromkeys(range(7), "delivered"),
            7: "failed",
            8: "failed",
            9: "expired",
            **dict.fromkeys(range(10, 14), "delivered"),
            14: "failed",
        },
    )
    refunded = settle_job(conn, job_id)

    # Then the failures are refunded in one row: 3 SMS and 1 LMS
    assert refunded == Decimal("57.00")
    money = billing.job_money(conn, job_id)
    assert (money.charged, money.refunded, money.net, money.settled) == (
        Decimal("240.00"),
        Decimal("57.00"),
        Decimal("183.00"),
        True,
    )
    check = billing.balance(conn, tenant_id)
    assert check.balance == Decimal("817.00")
    assert check.consistent


def test_a_short_balance_rejects_the_job_whole(conn: psycopg.Connection, settings: Settings) -> None:
    # Given a tenant with 50 points and a 10-recipient SMS job costing 90
    tenant_id = new_tenant(conn, "short", "50")
    before = conn.execute("SELECT count(*) FROM jobs WHERE tenant_id = %s", (tenant_id,)).fetchone()

    # When it is stored, then it is refused with the amounts
    with pytest.raises(InsufficientBalance) as refused:
        store(conn, settings, tenant_id, {"channel": "sms", "body": "안내", "recipients": phones(10)})
    assert (refused.value.needed, refused.value.available) == (Decimal("90.00"), Decimal("50.00"))

    # And nothing of it stays: no job, no ledger row, the balance untouched
    after = conn.execute("SELECT count(*) FROM jobs WHERE tenant_id = %s", (tenant_id,)).fetchone()
    assert before == after
    assert billing.balance(conn, tenant_id) == billing.BalanceCheck(Decimal("50.00"), Decimal("50.00"))


def test_two_jobs_racing_for_the_last_points_cannot_both_spend_them(settings: Settings) -> None:
    # Given a tenant with 100 points and two 6-recipient SMS jobs (54 points each) stored at once
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = new_tenant(conn, "race", "100")
    results: list[str] = []

    def submit(start: int) -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as own:
            try:
                store(
                    own,
                    settings,
                    tenant_id,
                    {"channel": "sms", "body": "경쟁", "recipients": phones(6, start)},
                )
                results.append("stored")
            except InsufficientBalance:
                results.append("refused")

    threads = [threading.Thread(target=submit, args=(start,)) for start in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one is stored and one refused, and the balance never went below zero
    assert sorted(results) == ["refused", "stored"]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert billing.balance(conn, tenant_id) == billing.BalanceCheck(Decimal("46.00"), Decimal("46.00"))


def test_a_job_is_settled_once_however_often_and_however_concurrently_settlement_runs(
    conn: psycopg.Connection, settings: Settings
) -> None:
    # Given a finished job with two failures
    tenant_id = new_tenant(conn, "twice", "1000")
    job_id = store(conn, settings, tenant_id, {"channel": "sms", "body": "두 번", "recipients": phones(5)})
    finish(conn, job_id, {0: "delivered", 1: "delivered", 2: "delivered", 3: "failed", 4: "failed"})

    # When settlement runs four times, two of them at the same moment
    @dataclass
    class Outcome:
        refunded: Decimal | None = None

    outcomes = [Outcome() for _ in range(2)]

    def settle(outcome: Outcome) -> None:
        with psycopg.connect(settings.database_url, autocommit=True) as own:
            outcome.refunded = settle_job(own, job_id)

    threads = [threading.Thread(target=settle, args=(o,)) for o in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    later = [settle_job(conn, job_id), settle_job(conn, job_id)]

    # Then exactly one run refunded, once
    refunds = [o.refunded for o in outcomes] + later
    assert sorted(refunds, key=lambda r: r is None) == [Decimal("18.00"), None, None, None]
    assert refund_rows(conn, job_id) == [Decimal("18.00")]
    assert billing.balance(conn, tenant_id).consistent


@dataclass(frozen=True)
class Template:
    approved: bool = True
    content: str = "#{name}님, 주문이 접수되었습니다."


def test_a_fallback_is_charged_at_its_own_price(conn: psycopg.Connection, settings: Settings) -> None:
    # Given a tenant whose Kakao costs 8 and fallback SMS 9.5, and a 4-recipient Kakao job with SMS fallback
    tenant_id = new_tenant(conn, "fallback", "1000")
    billing.set_price(conn, tenant_id, "fallback_sms", Decimal("9.5"))
    recipients = [{**p, "variables": {"name": "고객"}} for p in phones(4)]
    job_id = store(
        conn,
        settings,
        tenant_id,
        {
            "channel": "kakao",
            "template_code": "ORDER",
            "recipients": recipients,
            "fallback": {"channel": "sms", "body": "주문 접수"},
        },
        kakao_template=lambda code: Template(),
    )
    # Then each recipient reserved the dearer of Kakao and its fallback
    assert billing.job_money(conn, job_id).charged == Decimal("38.00")

    # When two Kakao messages are delivered and two fall back to SMS: one delivered, one failed
    created_at = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
    for seq, status in ((2, "delivered"), (3, "failed")):
        conn.execute(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, channel, status, fallback_of)
            SELECT job_created_at, job_id, 4 + seq, phone, 'sms', %s, seq FROM recipients
            WHERE job_id = %s AND seq = %s
            """,
            (status, job_id, seq),
        )
    assert created_at is not None
    finish(conn, job_id, {0: "delivered", 1: "delivered", 2: "fallback", 3: "fallback"})
    settle_job(conn, job_id)

    # Then the job pays 2 Kakao at 8 and 1 fallback SMS at 9.5; the rest is refunded
    money = billing.job_money(conn, job_id)
    assert (money.net, money.refunded) == (Decimal("25.50"), Decimal("12.50"))


def test_the_ledger_is_append_only_and_the_balance_is_its_sum(
    conn: psycopg.Connection, settings: Settings
) -> None:
    # Given a tenant with top-ups, a charge, a refund and an adjustment
    tenant_id = new_tenant(conn, "ledger", "500")
    billing.top_up(conn, tenant_id, Decimal("250.50"))
    job_id = store(conn, settings, tenant_id, {"channel": "sms", "body": "장부", "recipients": phones(3)})
    finish(conn, job_id, {0: "delivered", 1: "failed", 2: "failed"})
    settle_job(conn, job_id)
    billing.adjust(conn, tenant_id, Decimal("-10"), "a correction")

    # Then the balance is the sum of the ledger
    check = billing.balance(conn, tenant_id)
    assert check.consistent and check.balance == Decimal("731.50")
    # And a ledger row cannot be changed or removed
    for statement in (
        "UPDATE ledger SET amount = 0 WHERE tenant_id = %s",
        "DELETE FROM ledger WHERE tenant_id = %s",
    ):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(statement, (tenant_id,))


def test_advertising_to_an_opted_out_number_fails_alone_and_is_not_charged(
    conn: psycopg.Connection, settings: Settings
) -> None:
    # Given a tenant whose opt-out list holds one of three numbers
    tenant_id = new_tenant(conn, "opt-out", "1000")
    opt_outs.add(conn, tenant_id, ["010-6000-0001"])
    ad = "(광고) 세일\n무료수신거부 080-123-4567"

    # When an advertising job goes to all three
    job_id = store(
        conn,
        settings,
        tenant_id,
        {"channel": "sms", "advertisement": True, "body": ad, "recipients": phones(3)},
    )

    # Then that number fails with opted_out, and only two are charged
    rows = conn.execute(
        "SELECT phone, status, reason_code FROM recipients WHERE job_id = %s ORDER BY seq", (job_id,)
    ).fetchall()
    assert ("01060000001", "failed", "opted_out") in rows
    assert sum(1 for r in rows if r[1] == "queued") == 2
    assert billing.job_money(conn, job_id).charged == Decimal("18.00")

    # And an information message (not advertising) still reaches the number
    info = store(conn, settings, tenant_id, {"channel": "sms", "body": "배송 안내", "recipients": phones(3)})
    statuses = conn.execute("SELECT status FROM recipients WHERE job_id = %s", (info,)).fetchall()
    assert {s[0] for s in statuses} == {"queued"}
