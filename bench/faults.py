"""Single faults against a 200,000-recipient job while it is being sent, as a user sees them.

    .venv/bin/python bench/faults.py [--recipients 200000] [--at 0.3] [--only sigstop,redis]

Each scenario runs on private PostgreSQL, Redis and RabbitMQ servers (started here, never the
machine's shared ones), a database, key prefix and vhost of its own, two worker processes of
eight threads and no rate cap. It POSTs the job, strikes once the carrier has accepted ``--at``
of its recipients (a third by default: mid-send however fast sending is), and waits for the job
to finish. Printed per scenario, with the no-fault run of the same session as
the baseline:

- longest stall: the largest gap between two requests arriving at the carrier (the simulator's
  own arrival times), from the first to the last: how long sending stood still;
- finished after: seconds from the POST until the job was finished (reports in), and how much
  later than without the fault;
- lost, duplicated (carrier submissions after a reference's first), counters = rows.

Targets (issue 22): 0 lost, 0 duplicated, longest stall <= 10 s, finished <= 20 s later.
The scenarios: kill -9 the worker process group (restarted at once), kill -9 the scheduler's
main process (its report process goes with it; restarted at once), Redis restarted empty,
RabbitMQ restarted, PostgreSQL restarted, one worker process frozen (SIGSTOP) for 60 s and then
woken (SIGCONT). The run takes about eight minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.processes import scheduler_argv
from tests.fault.harness import Fault, longest_stall, settings_on, verify
from tests.support.private_servers import PrivateServers, private_servers
from tests.support.stack import SENDER, Stack, running_stack

FINISHED = ("completed", "partially_failed", "failed")
OVERRIDES = {
    "carrier_timeout_seconds": 3.0,
    "database_timeout_seconds": 2.0,
    "retry_base_seconds": 1.0,
    "retry_cap_seconds": 4.0,
}
#: How long the SIGSTOP scenario keeps its worker process frozen.
FROZEN_SECONDS = 60.0
STALL_TARGET_SECONDS, LATER_TARGET_SECONDS = 10.0, 20.0


@dataclass
class Outcome:
    scenario: str
    stall: float
    finished: float
    lost: int
    duplicated: int
    counters_equal: bool


def freeze_a_worker(stack: Stack, servers: PrivateServers, fault: Fault) -> threading.Thread:
    """SIGSTOP the worker process holding the most batches; SIGCONT it 60 s later."""
    pid = fault.busiest_worker_process()
    os.kill(pid, signal.SIGSTOP)
    waker = threading.Timer(FROZEN_SECONDS, os.kill, (pid, signal.SIGCONT))
    waker.start()
    return waker


def kill_workers(stack: Stack, servers: PrivateServers, fault: Fault) -> None:
    fault.signal_workers(signal.SIGKILL)
    fault.start_workers()


def kill_scheduler(stack: Stack, servers: PrivateServers, fault: Fault) -> None:
    """SIGKILL the scheduler's main process alone (its report process dies with it, by Linux's
    parent-death signal) and start the scheduler again at once."""
    proc = stack.processes.procs.pop("scheduler")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    stack.processes.start("scheduler", scheduler_argv())


def restart_postgresql(stack: Stack, servers: PrivateServers, fault: Fault) -> None:
    servers.postgres.stop()
    servers.postgres.start()


#: Scenario name -> what it does at the strike (None: the baseline, no fault).
SCENARIOS: dict[str, Callable[[Stack, PrivateServers, Fault], object] | None] = {
    "no fault": None,
    "kill -9 workers (restarted at once)": kill_workers,
    "kill -9 scheduler (restarted at once)": kill_scheduler,
    "Redis restarted empty": lambda stack, servers, fault: servers.redis.restart(),
    "RabbitMQ restarted": lambda stack, servers, fault: servers.rabbitmq.restart(),
    "PostgreSQL restarted": restart_postgresql,
    "SIGSTOP a worker 60 s": freeze_a_worker,
}


def wait_finished(stack: Stack, job_id: int, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(stack.settings.database_url, connect_timeout=2) as conn:
                row = conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone()
            if row is not None and row[0] in FINISHED:
                return
        except psycopg.OperationalError:
            pass  # PostgreSQL restarting
        time.sleep(0.1)
    raise SystemExit(f"job {job_id} not finished after {timeout:.0f} s")


def run(name: str, servers: PrivateServers, recipients: int, at: float, log_dir: Path) -> Outcome:
    """One scenario; ``at``: the share of the job the carrier has accepted when the fault strikes."""
    strike = SCENARIOS[name]
    with (
        settings_on(servers, **OVERRIDES) as settings,
        running_stack(settings, log_dir, worker_processes=2, worker_threads=8, result_delay_ms=300) as stack,
    ):
        fault = Fault(stack)
        client = stack.new_tenant("faults")
        body = orjson.dumps(
            {
                "channel": "sms",
                "sender": SENDER,
                "body": "[balsong] 주문하신 상품이 발송되었습니다.",
                "recipients": [{"phone": f"010{20_000_000 + i:08d}"} for i in range(recipients)],
            }
        )
        started = time.monotonic()
        response = client.post(
            "/v1/jobs", content=body, headers={"Content-Type": "application/json"}, timeout=600
        )
        response.raise_for_status()
        job_id = int(response.json()["job_id"])
        waker = None
        if strike is not None:
            fault.wait_accepted(int(recipients * at))
            waker = strike(stack, servers, fault)
        wait_finished(stack, job_id)
        finished = time.monotonic() - started
        if isinstance(waker, threading.Thread):
            waker.join()  # the frozen process woke: let it do whatever it would do
            time.sleep(5.0)
        stall = longest_stall(stack)
        verdict = verify(stack, job_id, recipients)
    return Outcome(name, stall, finished, verdict.lost, verdict.duplicated, verdict.counters_equal)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument(
        "--at", type=float, default=1 / 3, help="strike once the carrier accepted this share of the job"
    )
    parser.add_argument("--only", default="", help="comma-separated words picking scenarios")
    args = parser.parse_args()
    words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    names = [n for n in SCENARIOS if n == "no fault" or not words or any(w in n.lower() for w in words)]
    log_root = Path(tempfile.mkdtemp(prefix="balsong-faults-"))
    outcomes: list[Outcome] = []
    with private_servers() as servers:
        for index, name in enumerate(names):
            log_dir = log_root / f"{index}"
            log_dir.mkdir()
            outcome = run(name, servers, args.recipients, args.at, log_dir)
            outcomes.append(outcome)
            print(f"{name}: {outcome}", flush=True)
    baseline = outcomes[0].finished
    print()
    header = ("scenario", "longest stall (s)", "finished after (s)", "vs no fault (s)", "lost", "duplicated")
    print(
        f"{header[0]:<38}{header[1]:>18}{header[2]:>20}{header[3]:>17}{header[4]:>6}{header[5]:>11}"
        f"{'counters = rows':>17}{'targets':>9}"
    )
    failed = 0
    for o in outcomes:
        later = o.finished - baseline
        met = (o.lost, o.duplicated, o.counters_equal) == (0, 0, True) and (
            o.stall <= STALL_TARGET_SECONDS and later <= LATER_TARGET_SECONDS
        )
        failed += not met
        print(
            f"{o.scenario:<38}{o.stall:>18.1f}{o.finished:>20.1f}{later:>+17.1f}{o.lost:>6}{o.duplicated:>11}"
            f"{'yes' if o.counters_equal else 'NO':>17}{'met' if met else 'MISSED':>9}"
        )
    print(
        f"\n{args.recipients:,} recipients per job, fault once {args.at:.0%} of it reached the carrier; "
        f"targets: 0 lost, 0 duplicated, stall <= {STALL_TARGET_SECONDS:g} s, "
        f"finished <= {LATER_TARGET_SECONDS:g} s later. "
        f"Logs: {log_root}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
