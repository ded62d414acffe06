"""Status callbacks at speed: a 200,000-recipient job with a callback URL, delivered to a real
HTTP receiver on this machine, against the same job with no callback URL, in one run.

    .venv/bin/python bench/callbacks.py [--recipients 200000] [--rounds 3]

Jobs with and without callbacks alternate on one stack (API, workers, scheduler, callback
dispatcher, simulator), ``--rounds`` of each; the receiver runs in a process of its own at a lower
CPU priority, standing for the upstream app's server on machines of its own. Printed:
- send rate (recipients/s from the client's POST until every outcome is durable, and until the
  job is finished), median over the rounds with min-max, callbacks off and on, and the cost of
  callbacks as a share of the send rate (the target: at most 10 %);
- events delivered per second (every event of the job, from its first delivery to its last);
- the lag from each event's change (``occurred_at``) to its arrival at the receiver, p50 / p99;
- POST -> the job's last event (``job.finished``) received.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import send_job
from engine.db import upgrade
from tests.support.services import isolated_settings
from tests.support.simulator import free_port
from tests.support.stack import running_stack

ROOT = Path(__file__).resolve().parent.parent
#: The receiver's nice increment (see ReceiverProcess).
RECEIVER_NICE = 10


class ReceiverProcess:
    """The receiver, in a process of its own (tests.support.receiver.main). It stands for the
    upstream app's server, which runs on machines of its own: here it shares the two cores with
    the whole stack, so it runs at a lower priority (nice 10) and takes the CPU the stack leaves."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.out = log_dir / "receiver.jsonl"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.receiver",
                "--port",
                str(self.port),
                "--out",
                str(self.out),
            ],
            cwd=ROOT,
            preexec_fn=lambda: os.nice(RECEIVER_NICE),
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.post(self.url, content=b'{"events": []}', timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def requests(self) -> list[tuple[float, list[dict[str, Any]]]]:
        """Stop it; every request it answered 2xx: (arrival time, events)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        found = []
        for line in self.out.read_bytes().splitlines():
            head, _, body = line.partition(b"\t")
            meta = orjson.loads(head)
            if 200 <= meta["status"] < 300:
                found.append((float(meta["received_at"]), orjson.loads(body)["events"]))
        return found


def wait_delivered(client: httpx.Client, job_id: int, timeout: float = 900) -> None:
    """Until the API says every event of the job is delivered."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/v1/jobs/{job_id}/callbacks").json()
        events = state["events"]
        if events["pending"] == 0 and events["delivered"] and not events["failed"]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: callbacks not delivered: {state}")
        time.sleep(0.2)


def callback_figures(
    requests: list[tuple[float, list[dict[str, Any]]]], job_id: int, started_wall: float
) -> dict[str, float]:
    """Events/s, lag percentiles and POST -> last event, from what the receiver got for the job."""
    lags: list[float] = []
    seen: set[str] = set()
    first = last = None
    for received_at, all_events in requests:
        events = [e for e in all_events if e["job_id"] == job_id]
        if not events:
            continue
        first = received_at if first is None else min(first, received_at)
        last = received_at if last is None else max(last, received_at)
        for event in events:
            if event["event_id"] in seen:
                continue
            seen.add(event["event_id"])
            lags.append(received_at - datetime.fromisoformat(event["occurred_at"]).timestamp())
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
    sent: list[dict[str, float]] = []
    receiver = ReceiverProcess(log_dir)
    with isolated_settings() as settings:
        upgrade(settings.database_url)
        with running_stack(settings, log_dir, worker_processes=2, worker_threads=8) as stack:
            client = stack.new_tenant("bench-callbacks")
            for round_ in range(args.rounds):
                off.append(send_job(stack, client, args.recipients))
                figures = send_job(stack, client, args.recipients, callback_url=receiver.url)
                on.append(figures)
                # Every event delivered before the next round, so none competes with its job.
                wait_delivered(client, int(figures["job_id"]))
                sent.append(figures)
                print(
                    f"round {round_ + 1}: durable off {off[-1]['rate']:,.0f}/s on {on[-1]['rate']:,.0f}/s; "
                    f"finished off {off[-1]['rate_finished']:,.0f}/s on {on[-1]['rate_finished']:,.0f}/s",
                    flush=True,
                )
    requests = receiver.requests()
    pushed = [callback_figures(requests, int(f["job_id"]), f["started_wall"]) for f in sent]
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
