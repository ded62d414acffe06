"""The naive design, for comparison: one Dramatiq message, one carrier call and one INSERT per
recipient. Run by ``bench/throughput.py`` as ``dramatiq bench.naive``."""

from __future__ import annotations

import threading

import dramatiq
import httpx
import orjson
import psycopg

from actors.broker import install_broker
from engine.config import get_settings

settings = get_settings()
install_broker(settings)
_local = threading.local()


def _resources() -> tuple[httpx.Client, psycopg.Connection]:
    if not hasattr(_local, "client"):
        _local.client = httpx.Client(base_url=settings.sms_api_url, timeout=10)
        _local.conn = psycopg.connect(settings.database_url, autocommit=True)
    return _local.client, _local.conn


@dramatiq.actor(queue_name="naive", max_retries=0)
def naive_send(reference: str, phone: str, body: str) -> None:
    client, conn = _resources()
    response = client.post(
        f"/sms/v3.0/appKeys/{settings.sms_app_key}/sender/sms",
        content=orjson.dumps(
            {
                "body": body,
                "sendNo": "0212345678",
                "recipientList": [{"recipientNo": phone, "recipientGroupingKey": reference}],
            }
        ),
        headers={"X-Secret-Key": settings.sms_secret_key, "Content-Type": "application/json;charset=UTF-8"},
    )
    result = response.json()["body"]["data"]["sendResultList"][0]
    conn.execute(
        "INSERT INTO naive_results (reference, result_code) VALUES (%s, %s)",
        (reference, str(result["resultCode"])),
    )
