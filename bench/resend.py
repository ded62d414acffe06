"""How long the operator actions take on a big job, in PostgreSQL alone (no processes needed).

    .venv/bin/python bench/resend.py [--recipients 1000000]

Stores a job of N recipients (COPY, as intake does), makes every one a carrier failure, then
times: creating the resend job (the API's part: checks and one job row), filling it (the
resend_failed actor's one INSERT ... SELECT and counts), cancelling the filled job before it is
planned (every recipient to ``cancelled``), and dropping a month's partition holding it
(retention: DETACH CONCURRENTLY + DROP).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.db import upgrade
from engine.dispatch.cancel import cancel_job
from engine.intake.intake import prepare_job
from engine.intake.job_store import PartitionCache, store_job
from engine.intake.resend import create_resend, fill_resend
from engine.reporting.retention import purge_expired
from tests.support.services import isolated_settings

#: A month long past retention, so the bench's partition can be dropped without touching others.
OLD = datetime(2024, 1, 15, tzinfo=UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    args = parser.parse_args()
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            tenant = create_tenant(conn, "bench")
            add_sender(conn, tenant, "0212345678")
            top_up(conn, tenant, Decimal(100) * args.recipients, memo="bench")
            request = {
                "channel": "sms",
                "sender": "02-1234-5678",
                "body": "#{name}님 안내",
                "recipients": [
                    {"phone": f"010{i:08d}", "variables": {"name": f"고객{i}"}, "member_id": f"m{i}"}
                    for i in range(args.recipients)
                ],
            }
            job = prepare_job(request, max_recipients=args.recipients, now=OLD)
            partitions = PartitionCache()
            stored = store_job(
                conn,
                tenant_id=tenant,
                job=job,
                now=OLD,
                idempotency_key=None,
                partitions=partitions,
                settings=settings,
            )
            conn.execute(
                "UPDATE recipients SET status = 'failed', reason_code = 'carrier_3015', completed_at = %s"
                " WHERE job_id = %s",
                (OLD, stored.job_id),
            )
            conn.execute(
                "UPDATE jobs SET status = 'failed', planned_at = %s, completed_at = %s WHERE id = %s",
                (OLD, OLD, stored.job_id),
            )
            conn.execute("VACUUM ANALYZE recipients")

            started = time.perf_counter()
            resend = create_resend(
                conn,
                tenant_id=tenant,
                source_job_id=stored.job_id,
                reasons=["carrier_3015"],
                now=OLD,
                idempotency_key=None,
                partitions=partitions,
                settings=settings,
            )
            created = time.perf_counter() - started
            started = time.perf_counter()
            fill_resend(conn, resend.job_id)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            cancel_job(conn, tenant, resend.job_id, OLD)
            cancelled = time.perf_counter() - started
            # Retention detaches only once this month's and next month's partitions exist.
            this_month = datetime.now(UTC).date().replace(day=1)
            for month in (this_month, (this_month + timedelta(days=32)).replace(day=1)):
                conn.execute("SELECT ensure_recipients_partition(%s)", (month,))
            started = time.perf_counter()
            purge = purge_expired(conn, datetime.now(UTC), 365)
            purged = time.perf_counter() - started
    n = args.recipients
    print(f"recipients: {n:,}")
    print(f"resend, API part (checks + job row):   {created * 1000:8.1f} ms")
    print(f"resend, actor part (copy {n:,} rows): {filled:8.2f} s  ({n / filled:,.0f} rows/s)")
    print(f"cancel of the unplanned resend job:     {cancelled:8.2f} s  ({n / cancelled:,.0f} rows/s)")
    dropped = f"{len(purge.job_ids)} jobs deleted, {len(purge.months)} partition(s) dropped"
    print(f"retention: {dropped} in {purged:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
