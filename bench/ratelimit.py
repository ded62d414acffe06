"""Rate limiting under a carrier cap: balsong's GCRA limiter against Dramatiq's WindowRateLimiter
used the usual way, in one run, on this machine's real PostgreSQL, Redis and RabbitMQ and the real
carrier simulator.

    .venv/bin/python bench/ratelimit.py [--caps 200,1000,5000] [--seconds 15]

For each cap (recipients/s on the SMS channel), each design sends a bulk of ``cap x seconds``
recipients (at most --max-recipients) on 4 worker processes x 4 threads, and a 1-recipient
transactional message --tx-after seconds in. From the simulator's ledger (when the carrier
accepted each recipient):

- max/cap: the most recipients in any 1-second window, over the cap (above 1: the cap broken);
- mean/cap: the mean rate between the first and the last arrival (1 s trimmed at each end), over
  the cap (below 1: capacity paid for and left unused);
- tx wait: from just before the transactional message was submitted until the carrier accepted it.

balsong: a real stack (API, worker, scheduler) with ``rate_limit_sms_per_second=cap``; the bulk
is one job, the transactional message a job with ``"priority": "transactional"``.
Dramatiq: ``bench/window_limited.py``: one message per batch of --batch recipients (default 100,
500 from a 5000/s cap), each sent in one carrier call inside ``with limiter.acquire():`` under
``WindowRateLimiter(limit=cap // batch, window=1)``; a full window raises RateLimitExceeded and
the Retries middleware retries the message (exponential backoff from --min-backoff-ms up to
--max-backoff-ms, Dramatiq's default 20 retries). The transactional message is one more message
of the same actor on the same queue: Dramatiq's rate limiters have no priority lane.

Every run gets fresh isolated settings (database, Redis key prefix, RabbitMQ vhost) and its own
simulator. A run still unfinished --deadline seconds after its bulk was submitted is cut off and
measured as it stands (the table says how many recipients the carrier got).
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.window_limited import LIMIT_ENV, MAX_BACKOFF_ENV, MIN_BACKOFF_ENV, declare
from cli.processes import ProcessGroup
from engine.db import upgrade
from tests.support.arrivals import arrival_times, max_window_count
from tests.support.services import isolated_settings, settings_env
from tests.support.simulator import SimulatorHandle, running_simulator
from tests.support.stack import SENDER, running_stack

ROOT = Path(__file__).resolve().parent.parent
WORKER_PROCESSES = 4
WORKER_THREADS = 4
BULK_BODY = "(광고) 봄맞이 세일, 오늘 자정까지"
TX_BODY = "[balsong] 인증번호 123456"
#: Digits only: balsong's API normalises numbers, the simulator refuses "010-9999-0000".
TX_PHONE = "01099990000"
#: Longest wait for a worker's processes to say they are ready, in seconds.
READY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Figures:
    """One design's run under one cap, read off the simulator's ledger."""

    #: Most arrivals in any 1-second window, over the cap.
    peak: float
    #: Mean arrival rate over the run, over the cap.
    mean: float
    #: Seconds from submitting the transactional message to its arrival (None: never arrived).
    tx_wait_seconds: float | None
    #: Recipients the carrier accepted, of those submitted.
    arrived: int
    expected: int
    #: Seconds from the bulk's submission to its last arrival (or to the deadline).
    span_seconds: float


@dataclass(frozen=True, slots=True)
class Plan:
    cap: int
    seconds: float
    tx_after: float
    max_recipients: int
    deadline: float
    log_dir: Path

    @property
    def bulk(self) -> int:
        return min(self.max_recipients, int(self.cap * self.seconds))


def mean_rate(times: Sequence[float], end: float, trim: float = 1.0) -> float:
    """Arrivals per second from the first arrival to ``end``, ``trim`` seconds left out at each
    end (start-up and tail). ``end`` is the last arrival, or the deadline of a run cut off."""
    if not times:
        return 0.0
    start, stop = times[0] + trim, end - trim
    inside = bisect.bisect_left(times, stop) - bisect.bisect_left(times, start)
    return inside / (stop - start) if stop > start else 0.0


def measure(
    ledger: list[dict[str, Any]],
    plan: Plan,
    prefixes: tuple[str, str],
    started_at: float,
    tx_sent_at: float,
    complete: bool,
) -> Figures:
    """The figures of one run; ``prefixes`` select the bulk's and the transactional message's
    references, ``started_at`` and ``tx_sent_at`` are epoch seconds."""
    bulk_prefix, tx_prefix = prefixes
    times = sorted(arrival_times(ledger, bulk_prefix) + arrival_times(ledger, tx_prefix))
    tx = arrival_times(ledger, tx_prefix)
    end = times[-1] if complete and times else started_at + plan.deadline
    return Figures(
        peak=max_window_count(times) / plan.cap,
        mean=mean_rate(times, end) / plan.cap,
        tx_wait_seconds=tx[0] - tx_sent_at if tx else None,
        arrived=len(times),
        expected=plan.bulk + 1,
        span_seconds=end - started_at,
    )


def wait_ready(group: ProcessGroup, log: Path, processes: int) -> None:
    """Until every process of a Dramatiq worker logged that it is ready (consumers started)."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while log.read_bytes().count(b"Worker process is ready for action") < processes:
        group.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker not ready after {READY_TIMEOUT_SECONDS:.0f}s; see {log}")
        time.sleep(0.1)
    time.sleep(1.0)  # consumer threads connect to RabbitMQ just after the log line


def wait_arrived(simulator: SimulatorHandle, group: ProcessGroup, expected: int, until: float) -> bool:
    """Until the carrier accepted ``expected`` recipients (True) or ``until`` (monotonic) passes."""
    while time.monotonic() < until:
        if simulator.summary().get("accepted", 0) >= expected:
            return True
        group.check_alive()
        time.sleep(0.1)
    return False


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def run_balsong(plan: Plan) -> Figures:
    log_dir = plan.log_dir / f"balsong-{plan.cap}"
    with isolated_settings(rate_limit_sms_per_second=float(plan.cap)) as settings:
        upgrade(settings.database_url)
        with running_stack(
            settings, log_dir, worker_processes=WORKER_PROCESSES, worker_threads=WORKER_THREADS
        ) as stack:
            wait_ready(stack.processes, log_dir / "worker.log", WORKER_PROCESSES)
            bulk_client, tx_client = stack.new_tenant("bulk"), stack.new_tenant("shop")
            payload = orjson.dumps(
                {
                    "channel": "sms",
                    "sender": SENDER,
                    "body": BULK_BODY,
                    "recipients": [{"phone": f"010{20_000_000 + i:08d}"} for i in range(plan.bulk)],
                }
            )
            clock, started_at = time.monotonic(), time.time()
            response = bulk_client.post(
                "/v1/jobs", content=payload, headers={"Content-Type": "application/json"}, timeout=120
            )
            response.raise_for_status()
            bulk_job = response.json()["job_id"]
            sleep_until(clock + plan.tx_after)
            tx_sent_at = time.time()
            response = tx_client.post(
                "/v1/jobs",
                json={
                    "channel": "sms",
                    "sender": SENDER,
                    "priority": "transactional",
                    "body": TX_BODY,
                    "recipients": [{"phone": TX_PHONE}],
                },
            )
            response.raise_for_status()
            tx_job = response.json()["job_id"]
            complete = wait_arrived(stack.simulator, stack.processes, plan.bulk + 1, clock + plan.deadline)
            ledger = stack.simulator.ledger()
    return measure(ledger, plan, (f"{bulk_job}-", f"{tx_job}-"), started_at, tx_sent_at, complete)


def run_dramatiq(plan: Plan, batch: int, min_backoff_ms: int, max_backoff_ms: int) -> Figures:
    log_dir = plan.log_dir / f"dramatiq-{plan.cap}"
    limit = max(1, plan.cap // batch)
    with isolated_settings() as isolated, running_simulator() as simulator:
        settings = replace(
            isolated,
            sms_api_url=simulator.url,
            sms_app_key=simulator.app_key,
            sms_secret_key=simulator.secret_key,
        )
        env = {
            **os.environ,
            **settings_env(settings),
            "PYTHONUNBUFFERED": "1",
            LIMIT_ENV: str(limit),
            MIN_BACKOFF_ENV: str(min_backoff_ms),
            MAX_BACKOFF_ENV: str(max_backoff_ms),
        }
        group = ProcessGroup(log_dir=log_dir, env=env)
        broker, actor = declare(settings, limit, min_backoff_ms, max_backoff_ms)
        try:
            group.start(
                "window-worker",
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "bench.window_limited:setup",
                    "--processes",
                    str(WORKER_PROCESSES),
                    "--threads",
                    str(WORKER_THREADS),
                    "--path",
                    str(ROOT),
                ],
            )
            wait_ready(group, log_dir / "window-worker.log", WORKER_PROCESSES)
            clock, started_at = time.monotonic(), time.time()
            for first in range(0, plan.bulk, batch):
                seqs = range(first, min(first + batch, plan.bulk))
                actor.send([f"bulk-{i}" for i in seqs], [f"010{20_000_000 + i:08d}" for i in seqs], BULK_BODY)
            sleep_until(clock + plan.tx_after)
            tx_sent_at = time.time()
            actor.send(["tx-0"], [TX_PHONE], TX_BODY)
            complete = wait_arrived(simulator, group, plan.bulk + 1, clock + plan.deadline)
            ledger = simulator.ledger()
        finally:
            group.stop_all()
            broker.close()
    return measure(ledger, plan, ("bulk-", "tx-"), started_at, tx_sent_at, complete)


def parse_caps(raw: str) -> list[int]:
    return [int(cap) for cap in raw.split(",") if cap.strip()]


def wait_cell(figures: Figures) -> str:
    if figures.tx_wait_seconds is None:
        return f">{figures.span_seconds:.0f} (lost)"
    return f"{figures.tx_wait_seconds:.2f}"


def compare_waits(ours: Figures, theirs: Figures) -> str:
    """How balsong's transactional wait compares with Dramatiq's, in words."""
    if ours.tx_wait_seconds is None or theirs.tx_wait_seconds is None:
        return "n/a (not delivered)"
    # One sample each, and either can be a few milliseconds: floor both at 10 ms.
    ratio = max(theirs.tx_wait_seconds, 0.01) / max(ours.tx_wait_seconds, 0.01)
    return f"{ratio:.1f}x shorter" if ratio >= 1 else f"{1 / ratio:.1f}x longer"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--caps", type=parse_caps, default=[200, 1000, 5000], help="recipients/s, e.g. 200,1000"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the bulk at the cap")
    parser.add_argument("--max-recipients", type=int, default=75_000, help="largest bulk")
    parser.add_argument("--tx-after", type=float, default=5.0, help="seconds from bulk to transactional")
    parser.add_argument(
        "--deadline", type=float, help="cut a run off after this long (default 3 x seconds + 20)"
    )
    parser.add_argument(
        "--batch", type=int, help="Dramatiq recipients/message (default 100; 500 from 5000/s)"
    )
    parser.add_argument("--min-backoff-ms", type=int, default=100, help="Dramatiq's first retry delay")
    parser.add_argument("--max-backoff-ms", type=int, default=5_000, help="Dramatiq's longest retry delay")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-ratelimit-"))
    rows = []
    for cap in args.caps:
        plan = Plan(
            cap=cap,
            seconds=args.seconds,
            tx_after=args.tx_after,
            max_recipients=args.max_recipients,
            deadline=args.deadline or 3 * args.seconds + 20,
            log_dir=log_dir,
        )
        batch = args.batch or (500 if cap >= 5000 else 100)
        print(f"cap {cap}/s: {plan.bulk:,} recipients; balsong ...", end="", flush=True)
        ours = run_balsong(plan)
        print(f" {ours.span_seconds:.1f}s; dramatiq ({batch}/message) ...", end="", flush=True)
        theirs = run_dramatiq(plan, batch, args.min_backoff_ms, args.max_backoff_ms)
        print(f" {theirs.span_seconds:.1f}s", flush=True)
        rows.append((cap, batch, ours, theirs))

    print()
    header = (
        f"{'cap/s':>6} | {'balsong max/cap':>15} | {'balsong mean/cap':>16} | {'balsong tx wait s':>17} | "
        f"{'dramatiq max/cap':>16} | {'dramatiq mean/cap':>17} | {'dramatiq tx wait s':>18}"
    )
    print(header)
    print("-" * len(header))
    for cap, _, ours, theirs in rows:
        print(
            f"{cap:>6} | {ours.peak:>15.3f} | {ours.mean:>16.3f} | {wait_cell(ours):>17} | "
            f"{theirs.peak:>16.3f} | {theirs.mean:>17.3f} | {wait_cell(theirs):>18}"
        )
    print()
    for cap, batch, ours, theirs in rows:
        print(
            f"cap {cap}/s: balsong's tx wait {compare_waits(ours, theirs)}; "
            f"over the cap by {ours.peak - 1:+.1%} (balsong) vs {theirs.peak - 1:+.1%} (dramatiq); "
            f"cap used {ours.mean:.0%} vs {theirs.mean:.0%}; "
            f"bulk done in {ours.span_seconds:.1f}s vs {theirs.span_seconds:.1f}s "
            f"(carrier got {ours.arrived:,} and {theirs.arrived:,} of {ours.expected:,}; "
            f"dramatiq: {batch} recipients/message, {max(1, cap // batch)} messages/s)"
        )
    print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
