"""The figures docs/scaling.md's capacity model is built on, measured on this machine.

    .venv/bin/python bench/scaling.py [--recipients 50000] [--processes 1,2,4] [--count-recipients 20000]

1. Throughput: for 1, 2 and 4 worker processes (8 threads each), recipients/s from POST /v1/jobs
   until every recipient's outcome is durable in PostgreSQL, against the carrier simulator.
2. Resources per 1,000 recipients, from one more job run on its own (2 worker processes):
   - Redis commands, from INFO commandstats of a private redis-server the run alone uses;
   - RabbitMQ messages published and delivered, from the vhost's firehose tracer
     (``rabbitmqctl trace_on``, on the run's own vhost only) feeding a counting queue;
   - PostgreSQL rows inserted / updated / deleted (pg_stat_user_tables of the run's own
     database) and the bytes its tables and indexes hold per recipient.

Each run has its own database, vhost and key prefix (tests.support.services); the machine's
shared servers are not reconfigured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pika
import psycopg
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Settings
from engine.db import upgrade
from tests.support.redis_cluster import running_redis_server
from tests.support.services import isolated_settings
from tests.support.stack import SENDER, Stack, running_stack

BODY = "[balsong] #{name}님, 주문하신 상품이 발송되었습니다."
TAP_QUEUE = "bench.trace-tap"


def submit(stack: Stack, recipients: int) -> tuple[int, float]:
    """Submit one SMS/LMS (auto) job; its id and the monotonic time it was posted."""
    client = stack.new_tenant("bench")
    payload = orjson.dumps(
        {
            "channel": "auto",
            "sender": SENDER,
            "body": BODY,
            "recipients": [
                {"phone": f"010{30_000_000 + i:08d}", "variables": {"name": f"고객{i}"}}
                for i in range(recipients)
            ],
        }
    )
    started = time.monotonic()
    response = client.post(
        "/v1/jobs", content=payload, headers={"Content-Type": "application/json"}, timeout=600
    )
    response.raise_for_status()
    return int(response.json()["job_id"]), started


def wait_durable(settings: Settings, job_id: int) -> float:
    """Monotonic time at which no recipient of the job is left queued."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM recipients WHERE job_id = %s AND status = 'queued'", (job_id,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return time.monotonic()
            time.sleep(0.05)


def wait_finished(settings: Settings, job_id: int) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
            if row is not None and row[0] in ("completed", "partially_failed", "failed"):
                return
            time.sleep(0.1)


def throughput(processes: int, recipients: int, log_dir: Path) -> float:
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with running_stack(
            settings, log_dir / f"p{processes}", worker_processes=processes, worker_threads=8
        ) as stack:
            job_id, started = submit(stack, recipients)
            durable = wait_durable(settings, job_id)
    return recipients / (durable - started)


def command_stats(redis: Redis) -> Counter[str]:
    info: dict[str, Any] = redis.info("commandstats")  # type: ignore[assignment]
    return Counter({name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in info.items()})


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def table_stats(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int, int, int]]:
    """Per table (partitions included): rows inserted, updated, deleted, and bytes held."""
    rows = conn.execute(
        """
        SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, pg_total_relation_size(relid)
        FROM pg_stat_user_tables
        """
    ).fetchall()
    return {name: (ins, upd, dele, size) for name, ins, upd, dele, size in rows}


def resources(recipients: int, log_dir: Path) -> dict[str, Any]:
    with running_redis_server() as redis_url, isolated_settings() as isolated:
        settings = replace(isolated, redis_url=redis_url)
        upgrade(settings.database_url)
        vhost = settings.broker_url.rsplit("/", 1)[1]
        # Every message published in (or delivered from) the run's vhost is copied to the tap.
        tap = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
        channel = tap.channel()
        channel.queue_declare(TAP_QUEUE, durable=False)
        channel.queue_bind(TAP_QUEUE, "amq.rabbitmq.trace", routing_key="publish.#")
        channel.queue_bind(TAP_QUEUE, "amq.rabbitmq.trace", routing_key="deliver.#")
        rabbitmqctl("trace_on", "-p", vhost)
        try:
            with running_stack(
                settings, log_dir / "resources", worker_processes=2, worker_threads=8
            ) as stack:
                redis = Redis.from_url(redis_url)
                with psycopg.connect(settings.database_url, autocommit=True) as conn:
                    conn.execute("SELECT pg_stat_reset()")
                before_cmds = command_stats(redis)
                before_tap = channel.queue_declare(TAP_QUEUE, passive=True).method.message_count
                job_id, _ = submit(stack, recipients)
                wait_finished(settings, job_id)
                time.sleep(2)  # the flusher's and scheduler's last rounds for the job
                commands = command_stats(redis) - before_cmds
                published, delivered = count_tap(channel, before_tap)
                redis.close()
            # Read once balsong's processes have stopped: a server process reports its table
            # statistics when it exits, while an idle pooled connection may hold them back.
            time.sleep(1)
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                tables = table_stats(conn)
        finally:
            rabbitmqctl("trace_off", "-p", vhost)
            tap.close()
    return {"commands": commands, "published": published, "delivered": delivered, "tables": tables}


def count_tap(channel: Any, skip: int) -> tuple[int, int]:
    """Publishes and deliveries the tracer copied to the tap (after the first ``skip``)."""
    published = delivered = seen = 0
    while True:
        method, _properties, _body = channel.basic_get(TAP_QUEUE, auto_ack=True)
        if method is None:
            return published, delivered
        seen += 1
        if seen <= skip:
            continue
        if method.routing_key.startswith("publish."):
            published += 1
        else:
            delivered += 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--count-recipients", type=int, default=20_000)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-scaling-"))

    print(f"throughput: {args.recipients:,} recipients, POST -> every outcome durable")
    print(f"{'worker processes':>18}{'recipients/s':>15}")
    for processes in (int(p) for p in args.processes.split(",") if p):
        print(f"{processes:>18}{throughput(processes, args.recipients, log_dir):>15,.0f}", flush=True)

    n = args.count_recipients
    found = resources(n, log_dir)
    per_1000 = 1000 / n
    commands: Counter[str] = found["commands"]
    print(f"\nresources per 1,000 recipients (one {n:,}-recipient job, submitted to finished)")
    print(f"  Redis commands: {sum(commands.values()) * per_1000:,.1f}")
    for name, calls in commands.most_common(8):
        print(f"    {name:<16}{calls * per_1000:>10,.1f}")
    published, delivered = found["published"] * per_1000, found["delivered"] * per_1000
    print(f"  RabbitMQ messages published: {published:,.2f}, delivered: {delivered:,.2f}")
    tables = found["tables"]
    ins = sum(t[0] for t in tables.values())
    upd = sum(t[1] for t in tables.values())
    dele = sum(t[2] for t in tables.values())
    print(
        f"  PostgreSQL rows per recipient: {ins / n:.3f} inserted, {upd / n:.3f} updated, "
        f"{dele / n:.3f} deleted"
    )
    recipient_bytes = sum(t[3] for name, t in tables.items() if name.startswith("recipients"))
    total_bytes = sum(t[3] for t in tables.values())
    print(
        f"  PostgreSQL bytes per recipient: {recipient_bytes / n:,.0f} in recipients (with indexes, TOAST), "
        f"{total_bytes / n:,.0f} in every table"
    )
    for name, (i, u, d, size) in sorted(tables.items(), key=lambda kv: -kv[1][3])[:6]:
        print(f"    {name:<32} ins {i:>8,} upd {u:>8,} del {d:>6,} {size / 1024:>10,.0f} KiB")
    print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
