"""Workers that die: kill -9 mid-job (three times), a crash between the carrier's acceptance
and the recording of the outcome, and SIGTERM during a deploy."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from engine.config import Settings
from tests.fault.harness import (
    RECIPIENTS,
    WORKER_PROCESSES,
    WORKER_THREADS,
    Fault,
    TableRow,
    check,
    phones,
    submit,
    verify,
    wait_status,
)
from tests.support.stack import running_stack

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


def test_kill_9_a_worker_three_times_at_30_percent(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with running_stack(
        fault_settings,
        tmp_path,
        worker_processes=WORKER_PROCESSES,
        worker_threads=WORKER_THREADS,
        result_delay_ms=300,
    ) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("kill-9")
        # Given a 20,000-recipient job being sent
        job_id = submit(client, phones())
        recoveries = []
        # When its worker is killed with SIGKILL at 30 % of the job, restarted, and killed again
        # twice more as soon as it has made some progress
        for at_fraction in (0.30, 0.40, 0.50):
            fault.wait_accepted(int(RECIPIENTS * at_fraction))
            fault.signal_workers(signal.SIGKILL)
            baseline = fault.accepted()
            fault.start_workers()
            recoveries.append(fault.time_to_progress(time.monotonic(), baseline))
        # Then the job finishes with every recipient sent exactly once
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
    row = TableRow(
        "1 kill -9 worker x3 at 30%",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        max(recoveries),
    )
    table_row.append(row)
    check(row)
