"""``balsong demo``: start the local stack, send a 100,000-recipient job over HTTP, follow it to
the end with a progress bar, print the results summary; then leave the stack running (with the
demo tenant's API key, the console's address and a ready ``curl``) until Ctrl-C."""

from __future__ import annotations

import logging
import random
import time
from decimal import Decimal
from typing import Any

import httpx
import orjson

from cli import stack
from cli.progress import follow, summary
from engine.config import get_settings
from engine.db import upgrade

DEMO_SENDER = "02-1234-5678"
SURNAMES = "김이박최정강조윤장임"
GIVEN = ("민준", "서연", "도윤", "지우", "하준", "서윤", "시우", "하은", "주원", "지민")
#: Seconds the demo waits for its job to finish before it says so and stays up anyway.
JOB_TIMEOUT_SECONDS = 1800.0


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


def run_demo(recipients: int = 100_000, *, stay: bool = True) -> int:
    """Run the demo; with ``stay``, keep the stack up afterwards until Ctrl-C."""
    settings = get_settings()
    stack.check_ports(settings)  # before anything else: a taken port fails the demo at once
    print("balsong demo: applying migrations ...", flush=True)
    # The migration tool logs each revision applied (JSON lines, like every balsong log): noise here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade()
    with stack.running(
        settings, simulator_args=("--result-delay-ms", "1500", "--failure-rate", "0.01")
    ) as up:
        print(
            f"started the carrier simulator ({settings.sms_api_url}), API ({up.api_url}), worker, scheduler"
            f" and callback dispatcher; logs in {stack.LOG_DIR}/",
            flush=True,
        )
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
            base_url=up.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            started = time.monotonic()
            response = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
            response.raise_for_status()
            job_id = response.json()["job_id"]
            print(
                f"job {job_id} accepted in {time.monotonic() - started:.2f}s "
                f"({recipients:,} recipients, {len(body) / 1e6:.1f} MB); sending ...",
                flush=True,
            )
            job = follow(client, job_id, timeout=JOB_TIMEOUT_SECONDS)
        print(summary(job, time.monotonic() - started))
        if not stay:
            return 0
        print(ready_banner(up, key), flush=True)
        stack.stay_up(up)
    return 0


def ready_banner(up: stack.LocalStack, key: str) -> str:
    """What to do next with the running stack: the demo tenant's key, the console, a curl."""
    return "\n".join(
        [
            "",
            "The stack keeps running; Ctrl-C stops it.",
            f"  demo tenant's API key  {key}",
            f"  console                {up.console_url}  (sign in with the key)",
            f"  status of a job        BALSONG_API_URL={up.api_url} balsong status JOB --api-key {key}",
            "  a first job of your own:",
            "",
            stack.first_job_curl(up.api_url, key, DEMO_SENDER),
            "",
        ]
    )


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
