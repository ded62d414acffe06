"""Worker memory with recipients pending retry: it must stay flat, since a retry waits in
PostgreSQL and the Redis ledger, never in a worker or the broker.

    .venv/bin/python bench/retry_memory.py [--recipients 1000000]

Runs a job whose every recipient the simulator refuses for now ("try again"), waits until all of
them are waiting in retry batches, and prints the worker processes' resident memory before the
job, at the peak of sending, and with everything pending retry, beside the retry ledger's size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.db import upgrade
from engine.keys import Keys
from tests.support.services import isolated_settings
from tests.support.stack import SENDER, running_stack


def worker_rss_mb(parent_pid: int) -> float:
    """Resident memory of the worker's child processes (the ones holding threads), in MB."""
    total = 0
    for child in Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()
    overrides = {"retry_base_seconds": 3600.0, "retry_cap_seconds": 3600.0}
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-retry-"))
        with running_stack(settings, log_dir, worker_processes=2, worker_threads=8) as stack:
            stack.simulator.configure(reject_mix={"-9999": 1.0})
            worker = stack.processes.procs["worker"].pid
            redis = Redis.from_url(settings.redis_url)
            ledger = Keys(settings.redis_prefix).retry_ledger
            client = stack.new_tenant("retry-memory")
            time.sleep(2)
            before = worker_rss_mb(worker)
            body = orjson.dumps(
                {
                    "channel": "sms",
                    "sender": SENDER,
                    "body": "재시도 메모리",
                    "recipients": [{"phone": f"010{10_000_000 + i:08d}"} for i in range(args.recipients)],
                }
            )
            started = time.monotonic()
            response = client.post(
                "/v1/jobs", content=body, headers={"Content-Type": "application/json"}, timeout=600
            )
            response.raise_for_status()
            job_id = response.json()["job_id"]
            peak = before
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                while True:
                    peak = max(peak, worker_rss_mb(worker))
                    row = conn.execute(
                        "SELECT count(*) FILTER (WHERE state = 'waiting'),"
                        " coalesce(sum(cardinality(seqs)) FILTER (WHERE state = 'waiting'), 0),"
                        " count(*) FILTER (WHERE state IN ('planned', 'claimed') AND seqs IS NULL)"
                        " FROM batches WHERE job_id = %s",
                        (job_id,),
                    ).fetchone()
                    assert row is not None
                    waiting_batches, pending, unsent = row
                    if pending >= args.recipients and unsent == 0:
                        break
                    if time.monotonic() - started > 1200:
                        raise TimeoutError(f"only {pending} of {args.recipients} pending retry after 20 min")
                    time.sleep(1)
            time.sleep(3)
            after = worker_rss_mb(worker)
            print(
                f"\n{args.recipients:,} recipients pending retry in {waiting_batches:,} retry batches "
                f"(ledger holds {redis.zcard(ledger):,} entries), "
                f"reached in {time.monotonic() - started:.0f}s"
            )
            print(
                f"worker processes' resident memory: before {before:.0f} MB, "
                f"peak while sending {peak:.0f} MB, "
                f"with all pending retry {after:.0f} MB ({after - before:+.0f} MB)"
            )
            redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
