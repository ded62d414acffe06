"""Export speed and memory: a 1,000,000-recipient job as CSV and as XLSX.

    .venv/bin/python bench/export.py [--recipients 1000000]

Builds the job in an isolated database in one INSERT ... SELECT over generate_series (a
KakaoTalk job: 90 % delivered, 5 % failed with a reason, 5 % handed to SMS with their fallback
rows; member ids, some of them formula-like), then runs the exports exactly as the API does
(``engine.reporting.exports.csv_chunks``, ``engine.reporting.export_xlsx.xlsx_chunks``), reading
every byte. Prints
rows/s against the goals (CSV >= 300,000 rows/s, XLSX >= 50,000 rows/s) as ratios, the time to
the first byte and to the first rows (both formats send their first bytes before reading a row:
the CSV its BOM and header, the XLSX the workbook's parts but the sheets; rows follow as soon as
PostgreSQL has them), the file's size, and this process's peak resident memory during each export
above what it held before (Linux ``VmHWM``, reset between runs through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.accounts.tenants import create_tenant
from engine.db import upgrade
from engine.reporting.export_xlsx import xlsx_chunks
from engine.reporting.exports import ExportJob, csv_chunks, find_job
from tests.support.services import isolated_settings

GOALS = {"csv": 300_000, "xlsx": 50_000}


def build_job(conn: psycopg.Connection, recipients: int) -> int:
    """A finished KakaoTalk job with ``recipients`` recipients and their fallback rows; its id."""
    with conn.transaction():
        tenant = create_tenant(conn, "export-bench")
        conn.execute("SELECT ensure_recipients_partition(now()::date)")
        row = conn.execute(
            """
            INSERT INTO jobs (tenant_id, created_at, status, requested_channel, sender, body, total,
                              sms_count, lms_count, kakao_count, invalid_count, kind, planned_at,
                              first_sent_at, completed_at)
            VALUES (%s, now(), 'partially_failed', 'kakao', '0212345678', '벤치마크', %s, 0, 0, %s, 0,
                    'manual', now(), now(), now())
            RETURNING id, created_at
            """,
            (tenant, recipients, recipients),
        ).fetchone()
        assert row is not None
        job_id, created_at = row
        conn.execute(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                    reason_code, reason_text, submitted_at, completed_at)
            SELECT %(created)s, %(job)s, i, '010' || lpad((10000000 + i)::text, 8, '0'),
                   CASE WHEN i %% 97 = 0 THEN '=HYPERLINK("x")' ELSE 'M' || i END,
                   'kakao',
                   CASE WHEN i %% 20 = 0 THEN 'failed' WHEN i %% 20 = 1 THEN 'fallback' ELSE 'delivered' END,
                   CASE WHEN i %% 20 IN (0, 1) THEN 'carrier_3019' END,
                   CASE WHEN i %% 20 IN (0, 1) THEN '카카오톡 사용자가 아님' END,
                   now() - interval '1 hour', now()
            FROM generate_series(0, %(n)s - 1) AS i
            """,
            {"created": created_at, "job": job_id, "n": recipients},
        )
        conn.execute(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                    submitted_at, completed_at, fallback_of)
            SELECT job_created_at, job_id, %(n)s + seq, phone, member_id, 'sms', 'delivered',
                   now() - interval '30 minutes', now(), seq
            FROM recipients WHERE job_id = %(job)s AND job_created_at = %(created)s AND status = 'fallback'
            """,
            {"created": created_at, "job": job_id, "n": recipients},
        )
    conn.execute("VACUUM ANALYZE recipients")
    return int(job_id)


def rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(chunks: Iterator[bytes]) -> tuple[float, float, float, int, float]:
    """(seconds to the first chunk, to the second (the first with rows, for CSV), in all; bytes;
    peak RSS above the start in MB)."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = rss_now_mb()
    started = time.perf_counter()
    arrivals: list[float] = []
    size = 0
    for chunk in chunks:
        if len(arrivals) < 2:
            arrivals.append(time.perf_counter() - started)
        size += len(chunk)
    elapsed = time.perf_counter() - started
    arrivals += [elapsed] * (2 - len(arrivals))
    return arrivals[0], arrivals[1], elapsed, size, rss_peak_mb() - before


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--only", choices=sorted(GOALS), help="run one format only")
    args = parser.parse_args()
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with psycopg.connect(settings.database_url, autocommit=True, options="-c timezone=UTC") as conn:
            started = time.perf_counter()
            job_id = build_job(conn, args.recipients)
            print(f"built a {args.recipients:,}-recipient job in {time.perf_counter() - started:.1f}s")
            tenant = conn.execute("SELECT tenant_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
            assert tenant is not None
            job: ExportJob = find_job(conn, tenant[0], job_id)

            runs: dict[str, Callable[[], Iterator[bytes]]] = {
                "csv": lambda: csv_chunks(conn, job, unmasked=False),
                "xlsx": lambda: xlsx_chunks(conn, job, unmasked=False),
            }
            print(
                f"{'format':<6} {'rows/s':>10} {'goal':>9} {'ratio':>6} {'first byte':>11} "
                f"{'first rows':>11} {'total':>8} {'size':>9} {'peak RSS':>9}"
            )
            for fmt, run in runs.items():
                if args.only and fmt != args.only:
                    continue
                first, rows, elapsed, size, peak = measure(run())
                rate = args.recipients / elapsed
                print(
                    f"{fmt:<6} {rate:>10,.0f} {GOALS[fmt]:>9,} {rate / GOALS[fmt]:>5.2f}x {first:>10.2f}s "
                    f"{rows:>10.2f}s {elapsed:>7.1f}s {size / 1e6:>7.1f}MB {peak:>+7.1f}MB"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
