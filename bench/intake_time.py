"""Intake time: POST /v1/jobs of a large job until its 202 (job and recipients committed).

    .venv/bin/python bench/intake_time.py [--recipients 200000] [--runs 5] [--references]

The API runs alone (no worker competes for the CPU); each run submits a new job of personalised
recipients (the body of bench/throughput.py) and the median of the runs is printed. With
``--references`` every recipient carries a ``reference`` too (an order number), and the job one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_only import running_api
from engine.db import upgrade
from tests.support.services import isolated_settings
from tests.support.stack import SENDER

BODY = "[balsong] #{name}님, 주문하신 상품이 발송되었습니다."


def job_payload(recipients: int, offset: int, *, references: bool = False) -> bytes:
    return orjson.dumps(
        {
            "channel": "auto",
            "sender": SENDER,
            "body": BODY,
            **({"reference": f"bench-{offset}"} if references else {}),
            "recipients": [
                {
                    "phone": f"010{offset + i:08d}",
                    "variables": {"name": f"고객{i}"},
                    **({"reference": f"ORDER-{offset + i:012d}"} if references else {}),
                }
                for i in range(recipients)
            ],
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--references", action="store_true", help="every recipient carries a reference")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-"))
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with running_api(settings, log_dir) as api:
            key = api.new_tenant("bench-intake")
            client = httpx.Client(
                base_url=api.settings.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=600
            )
            client.post("/v1/jobs", content=job_payload(100, 90_000_000)).raise_for_status()  # warm up
            times = []
            for run in range(args.runs):
                payload = job_payload(
                    args.recipients, 20_000_000 + run * args.recipients, references=args.references
                )
                started = time.monotonic()
                response = client.post(
                    "/v1/jobs", content=payload, headers={"Content-Type": "application/json"}
                )
                elapsed = time.monotonic() - started
                response.raise_for_status()
                times.append(elapsed)
                print(
                    f"run {run + 1}: {len(payload) / 1e6:.1f} MB, {args.recipients:,} recipients, "
                    f"202 after {elapsed:.2f}s"
                )
            client.close()
    print(
        f"\nintake of {args.recipients:,} recipients: median {statistics.median(times):.2f}s "
        f"(min {min(times):.2f}s, max {max(times):.2f}s, {args.runs} runs); logs: {log_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
