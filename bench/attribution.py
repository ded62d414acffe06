"""Attribution speed: 1,000,000 orders against 10,000,000 recipient rows, set-based SQL against a
per-order Python loop.

    .venv/bin/python bench/attribution.py [--recipients 10000000] [--orders 1000000] [--sample 10000]

In an isolated database (created, migrated and dropped):

- 100 finished SMS jobs of ``recipients / 100`` rows each, one every 0.6 days over 60 days (so
  three monthly partitions), loaded with COPY. Each job reaches distinct members out of
  2,000,000, so a member gets about five messages in the 60 days; 5 % of messages failed and
  5 % have no member id. The partitions are unlogged (loading is not what is measured); the
  index attribution probes (``recipients_delivered_by_member``) is built after the load, as a
  bulk load would; the phone-digits index, useless here, is dropped.
- ``orders`` orders from random members at random times over the same 60 days (plus two), with
  one order line each, inserted by the server from ``generate_series``.

Then, measured:

- **baseline**: the same last-touch rule done the way one writes it first, one order at a time
  from Python (read the order, find the member's last delivered message in the window with one
  indexed query, write the order), over ``--sample`` orders;
- **balsong**: ``engine.attribution.attribution.attribute_orders`` over every order, one statement.

It prints orders/s of both and their ratio, and checks that both credited the sample's orders
to the same messages.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.accounts.tenants import create_tenant
from engine.attribution.attribution import attribute_orders
from engine.db import upgrade
from tests.support.services import isolated_settings

JOBS = 100
MEMBERS = 2_000_000
#: Spread of the jobs and orders, from START.
DAYS = 60
START = datetime(2026, 9, 1, tzinfo=UTC)
#: Steps through the members that are coprime with MEMBERS: a job's members are distinct.
MEMBER_STEP, JOB_OFFSET = 7919, 104_729

_COPY = """
    COPY recipients (job_created_at, job_id, seq, phone, member_id, channel, status, submitted_at,
                     completed_at)
    FROM STDIN
"""

#: The baseline's per-order lookup: the same rule as engine.attribution.attribution, for one order.
_LAST_DELIVERED = """
    SELECT r.job_id, r.seq
    FROM recipients r JOIN jobs j ON j.id = r.job_id
    WHERE r.member_id = %(member)s AND r.status = 'delivered'
      AND r.completed_at BETWEEN %(start)s AND %(ordered)s AND r.job_created_at <= %(ordered)s
      AND j.tenant_id = %(tenant)s
    ORDER BY r.completed_at DESC, r.job_id DESC, r.seq DESC
    LIMIT 1
"""


def load_recipients(conn: psycopg.Connection, tenant: int, recipients: int) -> None:
    per_job = recipients // JOBS
    for month in (START, START + timedelta(days=31), START + timedelta(days=61)):
        conn.execute("SELECT ensure_recipients_partition(%s)", (month.date(),))
    # The bench measures attribution, not loading: unlogged partitions spare the load 10M rows of
    # WAL (and the checkpoints that a 1 GB max_wal_size would force through it).
    for (name,) in conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'recipients'::regclass"
    ).fetchall():
        conn.execute(f"ALTER TABLE {name} SET UNLOGGED")
    conn.execute("DROP INDEX recipients_phone_last4")
    conn.execute("DROP INDEX recipients_delivered_by_member")
    # Delivery within an hour of the job's creation, by seq: the texts are made once.
    offsets = [timedelta(seconds=s) for s in range(3600)]
    for k in range(JOBS):
        created = START + timedelta(days=DAYS * k / JOBS)
        row = conn.execute(
            """
            INSERT INTO jobs (tenant_id, created_at, status, requested_channel, sender, body, total,
                              sms_count, lms_count, invalid_count, planned_at, first_sent_at, completed_at)
            VALUES (%s, %s, 'completed', 'sms', '0212345678', '벤치마크', %s, %s, 0, 0, %s, %s, %s)
            RETURNING id
            """,
            (tenant, created, per_job, per_job, created, created, created + timedelta(hours=1)),
        ).fetchone()
        assert row is not None
        job_id = row[0]
        created_text = created.isoformat()
        completed = [(created + o).isoformat() for o in offsets]
        prefix = f"{created_text}\t{job_id}\t"
        with conn.cursor() as cur, cur.copy(_COPY) as copy:
            lines = []
            for i in range(per_job):
                member = "\\N" if i % 20 == 1 else f"M{(i * MEMBER_STEP + k * JOB_OFFSET) % MEMBERS}"
                status = "failed" if i % 20 == 0 else "delivered"
                lines.append(
                    f"{prefix}{i}\t010{10_000_000 + i}\t{member}\tsms\t{status}\t{created_text}"
                    f"\t{completed[i % 3600]}\n"
                )
                if len(lines) == 50_000:
                    copy.write("".join(lines))
                    lines.clear()
            copy.write("".join(lines))


def build_index(conn: psycopg.Connection) -> None:
    # The same definition as migration 0012's.
    conn.execute(
        """
        CREATE INDEX recipients_delivered_by_member ON recipients (member_id, completed_at, job_id, seq)
            WHERE status = 'delivered' AND member_id IS NOT NULL
        """
    )


def load_orders(conn: psycopg.Connection, tenant: int, orders: int) -> None:
    conn.execute("SELECT setseed(0.42)")
    conn.execute(
        """
        INSERT INTO orders (tenant_id, order_number, member_id, ordered_at, amount, lines, received_at,
                            updated_at)
        SELECT %(tenant)s, 'O' || lpad(i::text, 8, '0'), 'M' || floor(random() * %(members)s)::int,
               %(start)s + random() * interval '%(days)s days', (1 + floor(random() * 100)) * 1000,
               jsonb_build_array(jsonb_build_object('product_number', 'P' || i %% 500, 'product_name', '상품',
                                                    'price', '1000', 'option', NULL, 'quantity', 1)),
               now(), now()
        FROM generate_series(1, %(orders)s) AS i
        """,
        {"tenant": tenant, "members": MEMBERS, "start": START, "days": DAYS + 2, "orders": orders},
    )


def baseline(
    conn: psycopg.Connection, tenant: int, sample: int
) -> tuple[float, dict[str, tuple[int, int] | None]]:
    """Seconds for the per-order loop over ``sample`` orders, and what it credited."""
    numbers = [
        row[0]
        for row in conn.execute(
            "SELECT order_number FROM orders WHERE tenant_id = %s ORDER BY order_number LIMIT %s",
            (tenant, sample),
        )
    ]
    credited: dict[str, tuple[int, int] | None] = {}
    started = time.perf_counter()
    with conn.transaction():
        window = conn.execute(
            "SELECT attribution_window_seconds FROM tenants WHERE id = %s", (tenant,)
        ).fetchone()
        assert window is not None
        for number in numbers:
            order = conn.execute(
                "SELECT member_id, ordered_at FROM orders WHERE tenant_id = %s AND order_number = %s",
                (tenant, number),
            ).fetchone()
            assert order is not None
            member, ordered = order
            found = conn.execute(
                _LAST_DELIVERED,
                {
                    "member": member,
                    "start": ordered - timedelta(seconds=window[0]),
                    "ordered": ordered,
                    "tenant": tenant,
                },
            ).fetchone()
            conn.execute(
                """
                UPDATE orders SET attributed_job_id = %s, attributed_seq = %s, attributed_at = now()
                WHERE tenant_id = %s AND order_number = %s
                """,
                (found[0] if found else None, found[1] if found else None, tenant, number),
            )
            credited[number] = (found[0], found[1]) if found else None
        # Leave the orders as they were: the set-based run starts from the same state.
        conn.execute(
            """
            UPDATE orders SET attributed_job_id = NULL, attributed_seq = NULL, attributed_at = NULL
            WHERE tenant_id = %s AND order_number = ANY(%s)
            """,
            (tenant, numbers),
        )
    return time.perf_counter() - started, credited


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000)
    args = parser.parse_args()
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with psycopg.connect(settings.database_url, autocommit=True, options="-c timezone=UTC") as conn:
            tenant = create_tenant(conn, "attribution-bench")
            started = time.perf_counter()
            load_recipients(conn, tenant, args.recipients)
            loaded = time.perf_counter()
            build_index(conn)
            indexed = time.perf_counter()
            load_orders(conn, tenant, args.orders)
            conn.execute("VACUUM ANALYZE")
            ready = time.perf_counter()
            print(
                f"loaded {args.recipients:,} recipients (COPY) in {loaded - started:.1f}s, "
                f"index in {indexed - loaded:.1f}s, "
                f"{args.orders:,} orders + VACUUM ANALYZE in {ready - indexed:.1f}s"
            )

            loop_seconds, loop_credited = baseline(conn, tenant, args.sample)
            loop_rate = args.sample / loop_seconds

            started = time.perf_counter()
            with conn.transaction():
                changed = attribute_orders(conn, datetime.now(UTC))
            set_seconds = time.perf_counter() - started
            set_rate = args.orders / set_seconds

            rows = conn.execute(
                """
                SELECT order_number, attributed_job_id, attributed_seq FROM orders
                WHERE tenant_id = %s AND order_number = ANY(%s)
                """,
                (tenant, list(loop_credited)),
            ).fetchall()
            same = all(
                loop_credited[number] == ((job, seq) if job is not None else None)
                for number, job, seq in rows
            )
            attributed = conn.execute(
                "SELECT count(*) FROM orders WHERE attributed_job_id IS NOT NULL"
            ).fetchone()
            assert attributed is not None

            print(f"{'method':<34} {'orders':>10} {'seconds':>8} {'orders/s':>10}")
            for name, count, seconds in (
                ("baseline: per-order Python loop", args.sample, loop_seconds),
                ("balsong: one set-based statement", args.orders, set_seconds),
            ):
                print(f"{name:<34} {count:>10,} {seconds:>8.1f} {count / seconds:>10,.0f}")
            print(
                f"ratio {set_rate / loop_rate:.1f}x; {changed:,} orders written, {attributed[0]:,} attributed"
                f" ({attributed[0] / args.orders:.0%}); sample credited alike: {'yes' if same else 'NO'}"
            )
            return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
