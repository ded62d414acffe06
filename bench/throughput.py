"""End-to-end throughput: balsong's batched pipeline against the naive one-message-per-recipient
design, in one run, on this machine's real PostgreSQL, Redis and RabbitMQ.

    .venv/bin/python bench/throughput.py [--recipients 200000] [--runs 3] [--naive-sample 10000]
    .venv/bin/python bench/throughput.py --recipients 10000,200000,1000000 --runs 1   # linear?

balsong: recipients/s from POST /v1/jobs until every recipient's outcome is durable in
PostgreSQL (none left queued), and until the job is finished (delivery reports applied).
Naive: one Dramatiq message per recipient, one carrier HTTP call each, one INSERT each, on a
sample; recipients/s from the first publish until the last row is in PostgreSQL.
Each size runs ``--runs`` jobs one after the other on one stack: the median with min-max is
printed, and the ratio to naive is the median's. Also printed per size: when the 202 came, the
batches' phases, and the flusher's longest lag (the oldest outcome or report waiting in the
result stream, sampled every 50 ms while the job ran).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psycopg
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.processes import ProcessGroup
from engine.db import upgrade
from engine.keys import Keys
from engine.lifecycle.results import unflushed_age
from tests.support.services import isolated_settings, settings_env
from tests.support.stack import SENDER, running_stack

FINISHED = ("completed", "partially_failed", "failed")
BODY = "[balsong] #{name}님, 주문하신 상품이 발송되었습니다."


def run_balsong(settings, sizes: list[int], runs: int, log_dir: Path) -> dict[int, list[dict[str, float]]]:  # type: ignore[no-untyped-def]
    """``runs`` jobs of each of ``sizes`` recipients, one after the other, on one stack."""
    results: dict[int, list[dict[str, float]]] = {}
    with running_stack(settings, log_dir, worker_processes=2, worker_threads=8) as stack:
        client = stack.new_tenant("bench")
        for size in sizes:
            results[size] = []
            for run in range(runs):
                figures = send_job(stack, client, size)
                results[size].append(figures)
                print(
                    f"{size:,} recipients, run {run + 1}: durable {figures['rate']:,.0f}/s, "
                    f"finished {figures['rate_finished']:,.0f}/s, 202 after {figures['accepted_s']:.2f}s",
                    flush=True,
                )
    return results


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """``median (min-max)``."""
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def send_job(stack, client, recipients: int, **fields: object) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """POST one job of ``recipients`` (with ``fields`` added) and time it until every outcome is
    durable and until it is finished, from the client's POST."""
    settings = stack.settings
    payload = orjson.dumps(
        {
            "channel": "auto",
            "sender": SENDER,
            "body": BODY,
            "recipients": [
                {"phone": f"010{20_000_000 + i:08d}", "variables": {"name": f"고객{i}"}}
                for i in range(recipients)
            ],
            **fields,
        }
    )
    started, started_wall = time.monotonic(), time.time()
    response = client.post(
        "/v1/jobs", content=payload, headers={"Content-Type": "application/json"}, timeout=600
    )
    response.raise_for_status()
    accepted = time.monotonic() - started
    job_id = response.json()["job_id"]
    durable_at = finished_at = None
    # The flusher's lag: how long the oldest outcome or report not yet applied has waited in the
    # result stream, sampled as the job goes (item 3 of issue 26: at most 1 s).
    redis = Redis.from_url(settings.redis_url)
    keys, flusher_lag = Keys(settings.redis_prefix), 0.0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while finished_at is None:
            flusher_lag = max(flusher_lag, unflushed_age(redis, keys))
            # Counting the job's queued recipients reads every row of the job: asked every 50 ms
            # of a 1,000,000-recipient job, it took a CPU from the engine it measures. It is asked
            # only once every batch is recorded (1 row a batch), to confirm.
            if durable_at is None and all_batches_recorded(conn, job_id):
                row = conn.execute(
                    "SELECT count(*) FROM recipients WHERE job_id = %s AND status = 'queued'", (job_id,)
                ).fetchone()
                if row is not None and row[0] == 0:
                    durable_at = time.monotonic() - started
            status = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
            if status is not None and status[0] in FINISHED:
                finished_at = time.monotonic() - started
                durable_at = durable_at or finished_at
            time.sleep(0.05)
        phases = conn.execute(
            """
            SELECT extract(epoch FROM min(b.claimed_at) - j.created_at),
                   extract(epoch FROM max(b.claimed_at) - j.created_at),
                   extract(epoch FROM max(b.recorded_at) - j.created_at)
            FROM batches b JOIN jobs j ON j.id = b.job_id WHERE j.id = %s GROUP BY j.created_at
            """,
            (job_id,),
        ).fetchone()
    redis.close()
    assert durable_at is not None
    return {
        "job_id": float(job_id),
        "started_wall": started_wall,
        "accepted_s": accepted,
        "durable_s": durable_at,
        "finished_s": finished_at,
        "rate": recipients / durable_at,
        "rate_finished": recipients / finished_at,
        "first_claim_s": float(phases[0]) if phases else 0.0,
        "last_claim_s": float(phases[1]) if phases else 0.0,
        "last_recorded_s": float(phases[2]) if phases else 0.0,
        "flusher_lag_s": flusher_lag,
    }


def all_batches_recorded(conn: psycopg.Connection, job_id: int) -> bool:
    """Every batch of the job planned and recorded (its outcomes applied)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE state <> 'recorded'), count(*) FROM batches WHERE job_id = %s",
        (job_id,),
    ).fetchone()
    return row is not None and row[0] == 0 and row[1] > 0


def run_naive(settings, sample: int, log_dir: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from tests.support.simulator import running_simulator

    if sample <= 0:
        return {"elapsed_s": 0.0, "rate": 0.0}

    with running_simulator() as simulator:
        env = {
            **os.environ,
            **settings_env(settings),
            "BALSONG_SMS_API_URL": simulator.url,
            "BALSONG_SMS_APP_KEY": simulator.app_key,
            "BALSONG_SMS_SECRET_KEY": simulator.secret_key,
        }
        os.environ.update(env)
        from engine.config import get_settings

        get_settings.cache_clear()
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS naive_results (reference text, result_code text)")
            conn.execute("TRUNCATE naive_results")
        group = ProcessGroup(log_dir=log_dir, env=env)
        try:
            group.start(
                "naive-worker",
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "bench.naive",
                    "--processes",
                    "2",
                    "--threads",
                    "8",
                    "--path",
                    str(Path(__file__).resolve().parent.parent),
                ],
            )
            from bench.naive import naive_send

            time.sleep(3)  # let the workers connect before the clock starts
            started = time.monotonic()
            for i in range(sample):
                naive_send.send(
                    f"naive-{i}", f"010{30_000_000 + i:08d}", f"[balsong] 고객{i}님, 발송되었습니다."
                )
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                while True:
                    row = conn.execute("SELECT count(*) FROM naive_results").fetchone()
                    if row is not None and row[0] >= sample:
                        break
                    group.check_alive()
                    time.sleep(0.05)
            elapsed = time.monotonic() - started
        finally:
            group.stop_all()
    return {"elapsed_s": elapsed, "rate": sample / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", default="200000", help="a job size, or sizes separated by commas")
    parser.add_argument("--runs", type=int, default=3, help="jobs of each size (median, min-max)")
    parser.add_argument("--naive-sample", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(size) for size in str(args.recipients).split(",")]
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-"))
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        ours = run_balsong(settings, sizes, args.runs, log_dir)
        naive = run_naive(settings, args.naive_sample, log_dir)
    print(f"\nmedian (min-max) of {args.runs} run(s) per size")
    print(f"{'design':<44}{'recipients':>12}{'seconds':>22}{'recipients/s':>26}")
    for size, figures in ours.items():
        for label, seconds, rate in (
            ("balsong (POST -> every outcome durable)", "durable_s", "rate"),
            ("balsong (POST -> job finished, reports in)", "finished_s", "rate_finished"),
        ):
            print(
                f"{label:<44}{size:>12,}{spread([f[seconds] for f in figures], '.2f'):>22}"
                f"{spread([f[rate] for f in figures]):>26}"
            )
    print(
        f"{'naive (1 message + 1 call + 1 INSERT each)':<44}{args.naive_sample:>12,}"
        f"{naive['elapsed_s']:>22.2f}{naive['rate']:>26,.0f}"
    )
    for size, figures in ours.items():

        def phase(name: str, figures: list[dict[str, float]] = figures) -> str:
            return spread([f[name] for f in figures], ".2f")

        print(
            f"\n{size:,} recipients: 202 after {phase('accepted_s')} s; from the job's creation: first "
            f"batch claimed {phase('first_claim_s')} s, last batch claimed {phase('last_claim_s')} s, "
            f"last batch durable {phase('last_recorded_s')} s; longest flusher lag {phase('flusher_lag_s')} s"
        )
    main_size = 200_000 if 200_000 in ours else sizes[0]
    for label, rate, target in (("durable", "rate", 50_000), ("finished", "rate_finished", 25_000)):
        rates = [f[rate] for f in ours[main_size]]
        median = statistics.median(rates)
        print(
            f"{label} ({main_size:,} recipients): median {median:,.0f}/s against a target of {target:,}/s"
            f" ({median / target:.2f}x); slowest run {min(rates) / median:.2f} of the median (target >= 0.8)"
        )
    if naive["rate"]:
        durable = statistics.median(f["rate"] for f in ours[main_size])
        print(
            f"ratio balsong / naive ({main_size:,} recipients, durable median): "
            f"{durable / naive['rate']:.1f}x (target: >= 40x)"
        )
    else:
        print("naive design not run (--naive-sample 0)")
    print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
