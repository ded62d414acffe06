"""Status callbacks at speed: a 200,000-recipient job with a callback URL, delivered to a real
HTTP receiver on this machine, against the same job with no callback URL, in one run.

    .venv/bin/python bench/callbacks.py [--recipients 200000] [--rounds 3]

Jobs with and without callbacks alternate on one stack (API, workers, scheduler, callback
dispatcher, simulator), ``--rounds`` of each. Printed:
- send rate (recipients/s from the client's POST until every outcome is durable, and until the
  job is finished), median over the rounds with min-max, callbacks off and on, and the cost of
  callbacks as a share of the send rate (the target: at most 10 %);
- events delivered per second (every event of the job, from its first delivery to its last);
- the lag from each event's change (``occurred_at``) to its arrival at the receiver, p50 / p99;
- POST -> the job's last event (``job.finished``) received.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import send_job
from engine.db import upgrade
from tests.support.receiver import Receiver, running_receiver
from tests.support.services import isolated_settings
from tests.support.stack import running_stack


def callback_figures(receiver: Receiver, job_id: int, started_wall: float) -> dict[str, float]:
    """Events/s, lag percentiles and POST -> last event, from what the receiver got for the job."""
    receiver.wait_for(
        lambda events: any(e["type"] == "job.finished" and e["job_id"] == job_id for e in events), 600
    )
    lags: list[float] = []
    seen: set[str] = set()
    first = last = None
    for delivery in receiver.accepted():
        events = [e for e in delivery.events if e["job_id"] == job_id]
        if not events:
            continue
        first = delivery.received_at if first is None else min(first, delivery.received_at)
        last = delivery.received_at if last is None else max(last, delivery.received_at)
        for event in events:
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            lags.append(delivery.received_at - datetime.fromisoformat(event["occurred_at"]).timestamp())
    assert first is not None and last is not None
    lags.sort()
    return {
        "events": float(len(seen)),
        "events_per_s": len(seen) / max(last - first, 1e-3),
        "lag_p50": lags[len(lags) // 2],
        "lag_p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "post_to_last_event_s": last - started_wall,
    }


def spread(values: list[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="balsong-bench-callbacks-"))
    off: list[dict[str, float]] = []
    on: list[dict[str, float]] = []
    pushed: list[dict[str, float]] = []
    with isolated_settings() as settings, running_receiver() as receiver:
        upgrade(settings.database_url)
        with running_stack(settings, log_dir, worker_processes=2, worker_threads=8) as stack:
            client = stack.new_tenant("bench-callbacks")
            for round_ in range(args.rounds):
                off.append(send_job(stack, client, args.recipients))
                figures = send_job(stack, client, args.recipients, callback_url=receiver.url)
                on.append(figures)
                pushed.append(callback_figures(receiver, int(figures["job_id"]), figures["started_wall"]))
                print(
                    f"round {round_ + 1}: durable off {off[-1]['rate']:,.0f}/s on {on[-1]['rate']:,.0f}/s; "
                    f"finished off {off[-1]['rate_finished']:,.0f}/s on {on[-1]['rate_finished']:,.0f}/s; "
                    f"{pushed[-1]['events']:,.0f} events at {pushed[-1]['events_per_s']:,.0f}/s",
                    flush=True,
                )
    durable_off = statistics.median(r["rate"] for r in off)
    durable_on = statistics.median(r["rate"] for r in on)
    finished_off = statistics.median(r["rate_finished"] for r in off)
    finished_on = statistics.median(r["rate_finished"] for r in on)
    print()
    print(f"{args.recipients:,} recipients per job, {args.rounds} rounds each; median (min-max)")
    print(f"{'figure':<44}{'callbacks off':>26}{'callbacks on':>26}{'on / off':>10}")
    print(
        f"{'POST -> every outcome durable (recipients/s)':<44}{spread([r['rate'] for r in off]):>26}"
        f"{spread([r['rate'] for r in on]):>26}{durable_on / durable_off:>10.2f}"
    )
    print(
        f"{'POST -> job finished (recipients/s)':<44}{spread([r['rate_finished'] for r in off]):>26}"
        f"{spread([r['rate_finished'] for r in on]):>26}{finished_on / finished_off:>10.2f}"
    )
    print()
    print(f"events per job: {spread([p['events'] for p in pushed])}")
    print(f"events delivered per second: {spread([p['events_per_s'] for p in pushed])}")
    print(
        f"lag from change to callback: p50 {spread([p['lag_p50'] for p in pushed], '.2f')} s, "
        f"p99 {spread([p['lag_p99'] for p in pushed], '.2f')} s"
    )
    print(f"POST -> job.finished received: {spread([p['post_to_last_event_s'] for p in pushed], '.1f')} s")
    cost = 1 - durable_on / durable_off
    print(
        f"cost of callbacks: {cost:.1%} of the durable send rate, {1 - finished_on / finished_off:.1%} "
        f"of the finished rate (target: at most 10 %)"
    )
    print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
