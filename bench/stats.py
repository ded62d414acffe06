"""Statistics read time: a year of counters of a tenant sending 1,000,000 messages a day.

    .venv/bin/python bench/stats.py [--runs 7] [--other-tenants 49]

In an isolated database, seeds the counters a year of finished jobs would have left
(`engine.lifecycle.job_stats`): for the bench tenant and ``--other-tenants`` more (so the
tenant's rows are found among others' as in production), every KST hour of 365 days on each of
sms, lms and kakao — 1,000,000 messages a day spread over the day as Korean sending is (most by
day, little at night), about 95 % delivered, failures, unknown results, Kakao fallbacks, refusals
at intake — and failures per day by 20 reason codes per channel. Then starts the real API
(`balsong api`, one uvicorn worker) and times ``GET /v1/stats`` over HTTP, ``--runs`` times each:
the whole year by day (365 buckets) and the last 31 days by hour (744 buckets), every channel and
one channel. Prints each median (and min-max) beside the target, under 1 s, as a ratio, and the
engine's own part (`engine.reporting.stats.read_stats` on one connection) for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.processes import ProcessGroup, api_argv, wait_healthy
from engine.accounts.tenants import create_api_key, create_tenant
from engine.db import upgrade
from engine.reporting.stats import StatsQuery, read_stats
from tests.support.services import isolated_settings, settings_env
from tests.support.simulator import free_port

#: Every answer must come within this (seconds).
TARGET_SECONDS = 1.0
MESSAGES_PER_DAY = 1_000_000
LAST_DAY = date(2026, 12, 7)

# One tenant's year: hours x channels, each hour's share of the day by a daytime curve (weights
# 1 at night to 10 at 10:00-17:00), the channel's share of the hour, then the results' shares.
_SEED_HOURLY = """
    INSERT INTO send_stats_hourly (tenant_id, kst_hour, channel, delivered, failed, expired, unknown,
                                   fallbacks, cancelled, rejected, charged)
    SELECT t.id, h.hour, c.channel, n - f - e - u - fb, f, e, u, fb, 0, 0, (n - f - e - fb) * c.price
    FROM unnest(%(tenants)s::bigint[]) AS t (id)
    CROSS JOIN generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 hour') AS h (hour)
    CROSS JOIN (VALUES ('sms', 0.5, 9.0), ('lms', 0.2, 30.0), ('kakao', 0.3, 8.0))
               AS c (channel, share, price)
    CROSS JOIN LATERAL (
        SELECT round(%(per_day)s * c.share *
                     (CASE WHEN extract(hour FROM h.hour) BETWEEN 10 AND 17 THEN 10
                           WHEN extract(hour FROM h.hour) BETWEEN 8 AND 20 THEN 5 ELSE 1 END) / 116.0) AS n
    ) AS m
    CROSS JOIN LATERAL (
        SELECT round(m.n * 0.03) AS f, round(m.n * 0.005) AS e, round(m.n * 0.005) AS u,
               CASE WHEN c.channel = 'kakao' THEN round(m.n * 0.01) ELSE 0 END AS fb
    ) AS r
"""
_SEED_REFUSALS = """
    INSERT INTO send_stats_hourly (tenant_id, kst_hour, channel, rejected)
    SELECT t.id, d.day + interval '9 hours', 'intake', 2000
    FROM unnest(%(tenants)s::bigint[]) AS t (id)
    CROSS JOIN generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 day') AS d (day)
"""
_SEED_REASONS = """
    INSERT INTO send_stats_reasons (tenant_id, kst_day, channel, reason_code, failures, reason_text)
    SELECT t.id, d.day::date, c.channel, 'carrier_' || (3000 + r.i), 1000 / r.i, 'reason ' || r.i
    FROM unnest(%(tenants)s::bigint[]) AS t (id)
    CROSS JOIN generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 day') AS d (day)
    CROSS JOIN (VALUES ('sms'), ('lms'), ('kakao'), ('intake')) AS c (channel)
    CROSS JOIN generate_series(1, 20) AS r (i)
"""


def seed(conn: psycopg.Connection, tenants: list[int], first: date, last: date) -> None:
    params = {
        "tenants": tenants,
        "first": first,
        "last": f"{last} 23:00",
        "per_day": MESSAGES_PER_DAY,
    }
    with conn.transaction():
        conn.execute(_SEED_HOURLY, params)
        conn.execute(_SEED_REFUSALS, {**params, "last": str(last)})
        conn.execute(_SEED_REASONS, {**params, "last": str(last)})
    conn.execute("VACUUM ANALYZE send_stats_hourly")
    conn.execute("VACUUM ANALYZE send_stats_reasons")


def timed(runs: int, call: Callable[[], object]) -> list[float]:
    call()  # once untimed: connections, plans and caches warm, as in service
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def report(name: str, times: list[float], engine: list[float]) -> None:
    median = statistics.median(times)
    print(
        f"{name:<34} {median * 1000:8.1f} ms  ({min(times) * 1000:.1f}-{max(times) * 1000:.1f})"
        f"   engine {statistics.median(engine) * 1000:7.1f} ms"
        f"   target < {TARGET_SECONDS:.0f} s: {TARGET_SECONDS / median:6.1f}x under"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--other-tenants", type=int, default=49)
    args = parser.parse_args()
    first = LAST_DAY - timedelta(days=364)
    with isolated_settings() as settings, tempfile.TemporaryDirectory() as logs:
        upgrade(settings.database_url)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            tenant = create_tenant(conn, "stats-bench")
            others = [create_tenant(conn, f"stats-bench-{i}") for i in range(args.other_tenants)]
            key = create_api_key(conn, tenant, ("read",))
            started = time.perf_counter()
            seed(conn, [tenant, *others], first, LAST_DAY)
            seeded = time.perf_counter() - started
            rows = conn.execute("SELECT count(*) FROM send_stats_hourly").fetchone()
            reasons = conn.execute("SELECT count(*) FROM send_stats_reasons").fetchone()
            assert rows is not None and reasons is not None
            year = read_stats(conn, tenant, StatsQuery(first, LAST_DAY, "day"))
        print(
            f"seeded {1 + args.other_tenants} tenants x 365 days in {seeded:.1f} s: "
            f"{rows[0]:,} hourly rows, {reasons[0]:,} reason rows"
        )
        sent = year.totals.sent
        print(f"the bench tenant's year: {sent:,} messages sent ({sent / 365:,.0f}/day)")

        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        env = {**settings_env(settings), "BALSONG_API_URL": api_url, "BALSONG_METRICS_DIR": f"{logs}/metrics"}
        group = ProcessGroup(log_dir=Path(logs), env={**os.environ, **env})
        month_first = LAST_DAY - timedelta(days=30)
        cases = {
            "year by day (365 buckets)": (first, LAST_DAY, "day", None),
            "year by day, kakao only": (first, LAST_DAY, "day", "kakao"),
            "31 days by hour (744 buckets)": (month_first, LAST_DAY, "hour", None),
            "31 days by hour, sms only": (month_first, LAST_DAY, "hour", "sms"),
        }
        try:
            group.start("api", api_argv("127.0.0.1", port))
            wait_healthy(f"{api_url}/healthz", group)
            auth = {"Authorization": f"Bearer {key}"}
            with (
                httpx.Client(base_url=api_url, headers=auth, timeout=30) as client,
                psycopg.connect(settings.database_url, autocommit=True) as conn,
            ):
                for name, (start, end, grain, channel) in cases.items():
                    params = {"from": start.isoformat(), "to": end.isoformat(), "granularity": grain}
                    if channel:
                        params["channel"] = channel

                    def over_http(params: dict[str, str] = params) -> object:
                        response = client.get("/v1/stats", params=params)
                        response.raise_for_status()
                        return response.json()

                    query = StatsQuery(start, end, grain, channel)
                    answer = over_http()
                    assert isinstance(answer, dict) and answer["totals"]["sent"] > 0
                    http_times = timed(args.runs, over_http)
                    engine_times = timed(args.runs, lambda q=query: read_stats(conn, tenant, q))
                    report(name, http_times, engine_times)
        finally:
            group.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
