"""What every fault scenario shares: its settings, a 20,000-recipient job, progress as the
carrier sees it, killing and restarting workers, and the verdict (lost, duplicated, counters).

Progress is read from the simulator's ledger summary (recipients it accepted), so a scenario
strikes at a known point of the job whatever the machine's speed, and "time to recover" is the
time from the end of a fault until the carrier accepts the job's recipients again.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import redis

from cli.processes import worker_argv
from engine.config import Settings, get_settings
from engine.db import upgrade
from engine.dispatch.references import make_reference
from engine.keys import Keys
from engine.lifecycle import counters
from tests.support.private_servers import PrivateServers
from tests.support.services import isolated_settings, settings_env
from tests.support.stack import Stack, running_stack

#: Recipients of every scenario's job.
RECIPIENTS = 20_000
#: The SMS cap of the fault stacks, in recipients per second: a 20,000-recipient job takes ~8 s,
#: long enough to strike at 30 % of it.
RATE_PER_SECOND = 2500.0
WORKER_PROCESSES, WORKER_THREADS = 2, 4

FAULT_OVERRIDES: dict[str, Any] = {
    "rate_limit_sms_per_second": RATE_PER_SECOND,
    # 50 recipients per request under the cap: requests stay few enough for a 2-core machine.
    "rate_smoothing": 0.02,
    "carrier_timeout_seconds": 3.0,
    "reconcile_after_seconds": 5.0,
    "republish_after_seconds": 20.0,
    "retry_base_seconds": 1.0,
    "retry_cap_seconds": 4.0,
    # A carrier's 429 slows the channel for this long: short, so a 429 storm slows, not stalls.
    "rate_backoff_seconds": 2.0,
    "database_timeout_seconds": 2.0,
    "kakao_report_poll_seconds": 1.0,
    "kakao_report_settle_seconds": 1.0,
}
#: Longest a scenario's job may take to finish after its fault, in seconds.
FINISH_TIMEOUT_SECONDS = float(os.environ.get("BALSONG_FAULT_FINISH_TIMEOUT", 180))
FINISHED = ("completed", "partially_failed", "failed")


@dataclass(frozen=True, slots=True)
class TableRow:
    scenario: str
    recipients: int
    lost: int
    duplicated: int
    counters_equal: bool
    #: Seconds from the end of the fault until the job went on (None: not a fault that stops it).
    recover_seconds: float | None
    #: The longest gap between two requests arriving at the carrier (None: not measured).
    stall_seconds: float | None = None


#: What a fault scenario allows as its longest stall: the target (bench/faults.py) is 10 s; the
#: margin is the machine's, which runs the whole stack and its servers on two cores.
STALL_LIMIT_SECONDS = 30.0


@contextmanager
def settings_on(servers: PrivateServers, **overrides: Any) -> Iterator[Settings]:
    """Settings for a fresh database, key prefix and vhost on the private ``servers``, migrated;
    the calling process reads them too while they last (so that what it publishes or looks up
    goes to the same vhost and database as the stack's processes)."""
    with isolated_settings(
        admin_database_url=servers.postgres.admin_url,
        redis_url=servers.redis.url,
        amqp_host=servers.rabbitmq.amqp_host,
        rabbitmq_node=servers.rabbitmq.node,
        **overrides,
    ) as isolated:
        upgrade(isolated.database_url)
        saved = dict(os.environ)
        os.environ.update(settings_env(isolated))
        get_settings.cache_clear()
        try:
            yield isolated
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()


def fault_stack(settings: Settings, log_dir: Path) -> AbstractContextManager[Stack]:
    """The whole of balsong as every scenario runs it: its workers, a carrier reporting later."""
    return running_stack(
        settings,
        log_dir,
        worker_processes=WORKER_PROCESSES,
        worker_threads=WORKER_THREADS,
        result_delay_ms=300,
    )


def write_row(row: TableRow) -> None:
    """Append the row to the file ``BALSONG_FAULT_TABLE`` names (bench/fault_suite.py reads it)."""
    path = os.environ.get("BALSONG_FAULT_TABLE")
    if path:
        with open(path, "ab") as out:
            out.write(orjson.dumps(asdict(row)) + b"\n")


def phones(count: int = RECIPIENTS, block: int = 0) -> list[str]:
    """``count`` distinct mobile numbers; another ``block`` gives other numbers."""
    return [f"010-{1000 + 10 * block + i // 10000:04d}-{i % 10000:04d}" for i in range(count)]


def submit(client: httpx.Client, numbers: list[str], body: str = "fault suite") -> int:
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": "02-1234-5678",
            "body": body,
            "recipients": [{"phone": p} for p in numbers],
        },
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


class Fault:
    """A running stack, seen from the fault's side."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def accepted(self) -> int:
        """Recipients the carrier has accepted so far (every job of the stack)."""
        return int(self.stack.simulator.summary()["accepted"])

    def wait_accepted(self, at_least: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted() < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"the carrier accepted {self.accepted()} < {at_least} in {timeout}s")
            time.sleep(0.05)

    def time_to_progress(self, since: float, baseline: int, timeout: float = 180.0) -> float:
        """Seconds from ``since`` (a monotonic time) until the carrier accepts more than ``baseline``."""
        deadline = time.monotonic() + timeout
        while self.accepted() <= baseline:
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress within {timeout}s after the fault")
            time.sleep(0.05)
        return time.monotonic() - since

    def signal_workers(self, signum: int = signal.SIGKILL, timeout: float = 60.0) -> None:
        """Send ``signum`` to the worker (SIGKILL: its whole process group, the Dramatiq master
        and its worker processes) and wait until it has exited."""
        proc = self.stack.processes.procs.pop("worker")
        if signum == signal.SIGKILL:
            os.killpg(proc.pid, signum)
        else:
            # To the Dramatiq master only, as `docker stop` does: it forwards the signal to its
            # worker processes, and a worker process signalled twice stops at once ("Killing
            # worker process"), leaving its batches in flight.
            os.kill(proc.pid, signum)
        proc.wait(timeout)

    def busiest_worker_process(self) -> int:
        """The pid of the worker process holding the most batches now (from the lease ids,
        ``host:pid:token``, its claims are made under), waiting until one holds any."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with psycopg.connect(self.stack.settings.database_url) as conn:
                row = conn.execute(
                    "SELECT claimed_by FROM batches WHERE state = 'claimed' AND claimed_by IS NOT NULL"
                    " GROUP BY claimed_by ORDER BY count(*) DESC LIMIT 1"
                ).fetchone()
            if row is not None:
                return int(row[0].split(":")[1])
            time.sleep(0.02)
        raise AssertionError("no worker process held a batch within 30 s")

    def start_workers(self) -> None:
        self.stack.processes.start("worker", worker_argv(WORKER_PROCESSES, WORKER_THREADS))

    def reconciled_batches(self, job_id: int) -> int:
        """How many times a batch of the job was reconciled with the carrier (worker log)."""
        log = (self.stack.processes.log_dir / "worker.log").read_text(errors="replace")
        return log.count(f"reconciled job {job_id} batch ")

    def batches_in(self, job_id: int, state: str) -> int:
        with psycopg.connect(self.stack.settings.database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM batches WHERE job_id = %s AND state = %s", (job_id, state)
            ).fetchone()
        assert row is not None
        return int(row[0])


def longest_stall(stack: Stack) -> float:
    """The longest gap, in seconds, between two requests arriving at the carrier, from the first
    arrival to the last (the stack's one job): how long sending stood still, as the carrier saw
    it."""
    times = [at for at, _ in stack.simulator.arrivals()]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def wait_status(
    stack: Stack,
    client: httpx.Client,
    job_id: int,
    statuses: tuple[str, ...] = FINISHED,
    timeout: float = FINISH_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            job = stack.job(client, job_id)
            if job["status"] in statuses:
                return job
        except httpx.HTTPError:
            pass  # the API may answer 503 while a server is being restarted
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} not {statuses} after {timeout}s: {stack.job(client, job_id)}; "
                f"in PostgreSQL: {durable_state(stack, job_id)}"
            )
        time.sleep(0.25)


def durable_state(stack: Stack, job_id: int) -> dict[str, Any]:
    """The job's batches by state and recipients by status (to say why a job is not finished)."""
    with psycopg.connect(stack.settings.database_url) as conn:
        batches = conn.execute(
            "SELECT state, count(*), min(seq) FROM batches WHERE job_id = %s GROUP BY state",
            (job_id,),
        ).fetchall()
        statuses = conn.execute(
            "SELECT status, count(*) FROM recipients WHERE job_id = %s GROUP BY status", (job_id,)
        ).fetchall()
    return {"batches": batches, "recipients": dict(statuses)}


@dataclass(frozen=True, slots=True)
class Verdict:
    lost: int
    duplicated: int
    counters_equal: bool


def verify(stack: Stack, job_id: int, recipients: int = RECIPIENTS) -> Verdict:
    """Compare the carrier's ledger, PostgreSQL's rows and Redis's counters of a finished job.

    Lost: a recipient not stored, still open (queued, in flight), or delivered without the
    carrier ever having it. A recipient refused with a reason (by the carrier or for good at
    intake) is accounted for. Duplicated: every submission of a reference after its first.
    """
    settings = stack.settings
    submissions = stack.submissions(job_id)
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        rows = conn.execute(
            "SELECT seq, status, attempt FROM recipients WHERE job_id = %s AND job_created_at = %s",
            (job_id, row[0]),
        ).fetchall()
        lost = max(0, recipients - len(rows))
        for seq, status, attempt in rows:
            if status in ("queued", "submitted") or (
                status in ("delivered", "fallback")
                and make_reference(job_id, seq, attempt) not in submissions
            ):
                lost += 1
        durable = counters.recount(conn, job_id, row[0])
    duplicated = sum(n - 1 for n in submissions.values())
    client = redis.Redis.from_url(settings.redis_url)
    try:
        live = counters.read(client, Keys(settings.redis_prefix), job_id)
    finally:
        client.close()
    return Verdict(lost, duplicated, live is not None and _numbers(live) == _numbers(durable))


def _numbers(counts: counters.JobCounts) -> dict[str, int]:
    """The counters' numbers (reason texts may legitimately differ in wording)."""
    numbers = {name: int(getattr(counts, name)) for name in counters.COUNT_FIELDS}
    numbers.update({f"reason:{code}": n for code, n in counts.reasons.items() if n})
    return numbers


def check(row: TableRow) -> None:
    """The pass criteria of every scenario."""
    assert (row.lost, row.duplicated, row.counters_equal) == (0, 0, True), row
    assert row.stall_seconds is None or row.stall_seconds < STALL_LIMIT_SECONDS, row
