"""Carrier webhooks: signed, deduplicated, applied once, states only forward."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from engine.accounts.tenants import tenant_id_by_name
from tests.support.results import seed_job
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration

SIGNATURE = "balsong-local-webhook"


def result_hook(reference: str, code: str) -> dict[str, Any]:
    return {
        "kakaoMessageType": "ALIMTALK_NORMAL",
        "requestId": "r1",
        "recipientSeq": 1,
        "recipientNo": "01000000000",
        "resultCode": code,
        "receiveDate": "2026-11-23 10:00:00",
        "recipientGroupingKey": reference,
        "hookId": uuid.uuid4().hex,
    }


def post(
    stack: Stack, hooks: list[dict[str, Any]], hooks_id: str | None = None, signature: str | None = SIGNATURE
) -> httpx.Response:
    headers = {"X-Toast-Webhook-Signature": signature} if signature is not None else {}
    body = {
        "hooksId": hooks_id or uuid.uuid4().hex,
        "webhookConfigId": "w",
        "productName": "KakaoTalk Bizmessage",
        "appKey": "k",
        "event": "MESSAGE_RESULT_UPDATE",
        "hooks": hooks,
    }
    # The recipients here are SMS ones: their reports come on the SMS carrier's endpoint (one
    # on another carrier's endpoint changes nothing, see tests/security/test_poison_reports.py).
    return httpx.post(f"{stack.settings.api_url}/v1/carriers/nhn_sms/reports", json=body, headers=headers)


def wait_counts(stack: Stack, client: httpx.Client, job_id: int, **expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        counts = stack.job(client, job_id)["counts"]
        if all(counts[name] == value for name, value in expected.items()) or time.monotonic() > deadline:
            return dict(counts)
        time.sleep(0.2)


def test_unsigned_or_wrongly_signed_webhooks_are_refused(stack: Stack) -> None:
    assert post(stack, [], signature=None).status_code == 401
    assert post(stack, [], signature="forged").status_code == 401


def test_results_by_webhook_apply_once_and_only_forward(stack: Stack) -> None:
    # Given a job whose three recipients are in flight (the carrier reports nothing by itself)
    client = stack.new_tenant("webhooks")
    stack.simulator.configure(result_delay_ms=600_000)
    try:
        job_id = submit_sms(client, "웹훅", [f"010-4000-000{i}" for i in range(3)])
        assert wait_counts(stack, client, job_id, in_flight=3)["in_flight"] == 3
        delivered, failed = f"{job_id}-0", f"{job_id}-1"

        # When the carrier reports one delivered and one failed, ...
        first = post(stack, [result_hook(delivered, "1000"), result_hook(failed, "3018")], hooks_id="h-1")
        assert first.status_code == 202
        # ... the same call is replayed, the same results come again in another call, a late
        # "delivered" arrives for the failed one, and a report names a reference not ours
        assert post(stack, [result_hook(delivered, "1000")], hooks_id="h-1").status_code == 200
        post(stack, [result_hook(delivered, "1000"), result_hook(failed, "3018")])
        # (Calls are applied by several workers at once: "late" means after these were applied.)
        wait_counts(stack, client, job_id, delivered=1, failed=1)
        post(stack, [result_hook(failed, "1000"), result_hook("not-ours", "1000")])

        # Then each counted once, and the failed one stayed failed
        counts = wait_counts(stack, client, job_id, delivered=1, failed=1, in_flight=1)
    finally:
        stack.simulator.configure(result_delay_ms=300)
    assert (counts["delivered"], counts["failed"], counts["in_flight"]) == (1, 1, 1)
    time.sleep(1)
    assert stack.job(client, job_id)["counts"]["delivered"] == 1
    rows = client.get(f"/v1/jobs/{job_id}/recipients").json()["recipients"]
    assert [r["status"] for r in rows] == ["delivered", "failed", "submitted"]
    assert rows[1]["reason_code"] == "carrier_3018"
    # And with a recipient still in flight, the job is not finished
    assert stack.job(client, job_id)["status"] == "sending"


def test_080_opt_outs_by_webhook_join_the_list_of_the_tenant_whose_advertising_carried_the_number(
    stack: Stack,
) -> None:
    # Given two tenants, one of which sent advertising with the opt-out line 080-123-4567
    client = stack.new_tenant("optout-080")
    stack.new_tenant("optout-080-other")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        advertiser = tenant_id_by_name(conn, "optout-080")
        bystander = tenant_id_by_name(conn, "optout-080-other")
        job_id = seed_job(conn, advertiser)
        conn.execute(
            "UPDATE jobs SET advertisement = true, body = %s WHERE id = %s",
            ("(광고) 겨울 세일\n무료수신거부 080-123-4567", job_id),
        )
    # When the SMS service's 080 opt-out webhook reports a number (and one malformed hook)
    hooks = [
        {
            "hookId": uuid.uuid4().hex,
            "recipientNo": "01077776666",
            "unsubscribeNo": "0801234567",
            "enterpriseName": "balsong",
            "createdDateTime": "2026-12-07T11:25:10.000+09:00",
        },
        {"hookId": uuid.uuid4().hex, "recipientNo": 1077776666, "unsubscribeNo": "0801234567"},
    ]
    response = httpx.post(
        f"{stack.settings.api_url}/v1/carriers/nhn_sms/reports",
        json={"hooksId": uuid.uuid4().hex, "productName": "SMS", "event": "UNSUBSCRIBE", "hooks": hooks},
        headers={"X-Toast-Webhook-Signature": SIGNATURE},
    )
    assert response.status_code == 202, response.text
    # Then the number is on the advertiser's list (from the carrier) and no one else's, and the
    # malformed hook is set aside
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = client.get("/v1/opt-outs").json()["opt_outs"]
        if listed:
            break
        time.sleep(0.2)
    assert [(o["phone"], o["source"]) for o in listed] == [("010-****-6666", "carrier")]
    with psycopg.connect(stack.settings.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM opt_outs WHERE tenant_id = %s", (bystander,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM dead_entries WHERE stage = 'webhook' AND reason = 'invalid_type'"
            " AND entry LIKE %s",
            ("%1077776666%",),
        ).fetchone() == (1,)
