"""``balsong demo``: start every process, send a 100,000-recipient job over HTTP, follow it to
the end with a progress bar and print the results summary."""

from __future__ import annotations

import os
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from cli.processes import (
    ProcessGroup,
    api_argv,
    callbacks_argv,
    scheduler_argv,
    simulator_argv,
    wait_healthy,
    worker_argv,
)
from cli.progress import follow, summary
from engine.config import get_settings
from engine.db import upgrade

DEMO_SENDER = "02-1234-5678"
SURNAMES = "김이박최정강조윤장임"
GIVEN = ("민준", "서연", "도윤", "지우", "하준", "서윤", "시우", "하은", "주원", "지민")


def demo_recipients(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Realistic recipients: dashed and international forms, a few bad numbers and duplicates,
    and some long names that push the message over 90 bytes into LMS."""
    rng = random.Random(seed)
    recipients = []
    for i in range(count):
        number = f"010{10_000_000 + i:08d}"
        form = i % 3
        phone = (
            number
            if form == 0
            else f"{number[:3]}-{number[3:7]}-{number[7:]}"
            if form == 1
            else f"+82 {number[1:]}"
        )
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if i % 10 == 0:
            name += " 고객님 (VIP 멤버십 골드 등급)"
        recipients.append({"phone": phone, "variables": {"name": name}, "member_id": f"M{i:07d}"})
    for i in range(0, count, 997):  # a few numbers no carrier can reach
        recipients[i]["phone"] = "010-12"
    for i in range(5, count, 1999):  # upstream duplicates, sent once
        recipients[i]["phone"] = recipients[i - 1]["phone"]
    return recipients


def run_demo(recipients: int = 100_000) -> int:
    settings = get_settings()
    print("balsong demo: applying migrations ...")
    upgrade()
    # A development stack (the simulator, its public keys): its processes say so explicitly,
    # or in production mode they would refuse to start without real carrier secrets.
    group = ProcessGroup(log_dir=Path(".run/logs"), env={**os.environ, "BALSONG_ENV": "development"})
    try:
        sim_port = int(settings.sms_api_url.rsplit(":", 1)[1].split("/")[0])
        api_port = int(settings.api_url.rsplit(":", 1)[1].split("/")[0])
        print(
            f"starting simulator (:{sim_port}), API (:{api_port}), worker, scheduler and callback dispatcher;"
            " logs in .run/logs/"
        )
        group.start(
            "simulator",
            simulator_argv("127.0.0.1", sim_port, "--result-delay-ms", "1500", "--failure-rate", "0.01"),
        )
        group.start("api", api_argv("127.0.0.1", api_port))
        group.start("worker", worker_argv(settings.worker_processes, settings.worker_threads))
        group.start("scheduler", scheduler_argv())
        group.start("callbacks", callbacks_argv())
        wait_healthy(f"{settings.sms_api_url}/_simulator/health", group)
        wait_healthy(f"{settings.api_url}/healthz", group)
        key = _demo_tenant()
        body = orjson.dumps(
            {
                "channel": "auto",
                "sender": DEMO_SENDER,
                "title": "[balsong] 배송 안내",
                "body": "[balsong] #{name}님, 주문하신 상품이 오늘 발송되었습니다. 감사합니다.",
                "recipients": demo_recipients(recipients),
            }
        )
        with httpx.Client(
            base_url=settings.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            started = time.monotonic()
            response = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
            response.raise_for_status()
            job_id = response.json()["job_id"]
            print(
                f"job {job_id} accepted in {time.monotonic() - started:.2f}s "
                f"({recipients:,} recipients, {len(body) / 1e6:.1f} MB); sending ..."
            )
            job = follow(client, job_id, timeout=1800)
        print(summary(job, time.monotonic() - started))
        return 0
    finally:
        group.stop_all()


#: The demo tenant's starting balance: a 100,000-recipient LMS job at the default prices fits.
DEMO_POINTS = Decimal(10_000_000)


def _demo_tenant() -> str:
    import psycopg

    from engine.accounts.billing import top_up
    from engine.accounts.tenants import add_sender, create_api_key, create_tenant

    with psycopg.connect(get_settings().database_url, autocommit=True) as conn, conn.transaction():
        tenant_id = create_tenant(conn, f"demo-{int(time.time())}")
        add_sender(conn, tenant_id, DEMO_SENDER)
        top_up(conn, tenant_id, DEMO_POINTS, memo="demo")
        return create_api_key(conn, tenant_id)
