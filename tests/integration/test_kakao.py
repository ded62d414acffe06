"""KakaoTalk AlimTalk end to end, with SMS/LMS fallback for recipients Kakao cannot reach."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest

from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration


def recipients(count: int, base: int) -> list[dict[str, Any]]:
    return [
        {"phone": f"010{base + i:08d}", "variables": {"name": f"고객{i}", "invoice": f"INV{i:05d}"}}
        for i in range(count)
    ]


def test_kakao_failures_fall_back_to_sms_and_lms_once(stack: Stack) -> None:
    # Given a Kakao template, a carrier where 30 % are not KakaoTalk users, and a fallback text
    client = stack.new_tenant("kakao-shop")
    stack.simulator.configure(kakao_failure_mix={"3019": 0.3}, kakao_result_delay_ms=200, seed=5)
    try:
        response = client.post(
            "/v1/jobs",
            json={
                "channel": "kakao",
                "sender": SENDER,
                "template_code": "ORDER_SHIPPED",
                "recipients": [
                    {**r, "reference": f"order-{i}"} for i, r in enumerate(recipients(300, 50_000_000))
                ],
                "fallback": {
                    "channel": "auto",
                    "title": "배송 안내",
                    "body": "#{name}님, 주문하신 상품이 발송되었습니다. 송장번호 #{invoice}",
                },
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        # When it runs to the end
        job = wait_finished(stack, client, job_id, timeout=90)
    finally:
        stack.simulator.configure(kakao_failure_mix={})

    # Then every Kakao failure went once by SMS/LMS, and everyone was delivered one way or the other
    counts = job["counts"]
    assert 50 <= counts["fallbacks"] <= 130
    assert counts["total"] == 300
    assert counts["delivered"] == 300, counts
    ledger = [e for e in stack.simulator.ledger() if e["reference"].startswith(f"{job_id}-")]
    by_channel = Counter(e["channel"] for e in ledger)
    assert by_channel["kakao"] == 300
    assert by_channel["sms"] + by_channel["lms"] == counts["fallbacks"]
    assert all(e["submissions"] == 1 for e in ledger)
    kakao_bodies = [e["body"] for e in ledger if e["channel"] == "kakao"]
    assert "고객0님, 주문하신 상품이 발송되었습니다. 송장번호: INV00000" in kakao_bodies

    # And the recipient's result shows both outcomes
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "fallback", "limit": 3}).json()
    first = page["recipients"][0]
    assert first["channel"] == "kakao" and first["reason_code"] == "carrier_3019"
    assert first["fallback"]["status"] == "delivered"
    assert first["fallback"]["channel"] in ("sms", "lms")
    # And each fallback row keeps its recipient's reference (callbacks of the fallback carry it)
    with psycopg.connect(stack.settings.database_url) as conn:
        pairs = conn.execute(
            "SELECT f.reference, k.reference FROM recipients f JOIN recipients k"
            " ON k.job_id = f.job_id AND k.job_created_at = f.job_created_at AND k.seq = f.fallback_of"
            " WHERE f.job_id = %s",
            (job_id,),
        ).fetchall()
    assert len(pairs) == counts["fallbacks"] and all(f == k and f for f, k in pairs)


def test_an_unknown_template_is_refused_and_a_missing_variable_fails_that_recipient(stack: Stack) -> None:
    client = stack.new_tenant("kakao-strict")
    unknown = client.post(
        "/v1/jobs",
        json={
            "channel": "kakao",
            "sender": SENDER,
            "template_code": "NOPE",
            "recipients": recipients(1, 51_000_000),
        },
    )
    assert unknown.status_code == 422
    assert problem(unknown)["field"] == "template_code"
    partial = [*recipients(2, 52_000_000), {"phone": "01052999999", "variables": {"name": "x"}}]
    response = client.post(
        "/v1/jobs",
        json={"channel": "kakao", "sender": SENDER, "template_code": "ORDER_SHIPPED", "recipients": partial},
    )
    assert response.status_code == 202
    job = wait_finished(stack, client, response.json()["job_id"], timeout=60)
    assert job["counts"]["delivered"] == 2
    assert [f["reason_code"] for f in job["failures"]] == ["missing_variable"]
