"""Workers that die: kill -9 mid-job (three times), a crash between the carrier's acceptance
and the recording of the outcome, a worker process frozen for a minute (SIGSTOP), and SIGTERM
during a deploy."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from engine.config import Settings
from tests.fault.harness import (
    RECIPIENTS,
    Fault,
    TableRow,
    check,
    fault_stack,
    longest_stall,
    phones,
    submit,
    verify,
    wait_status,
)

pytestmark = [pytest.mark.fault, pytest.mark.timeout(600)]


def test_kill_9_a_worker_three_times_at_30_percent(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
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
        stall = longest_stall(stack)
    row = TableRow(
        "1 kill -9 worker x3 at 30%",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        max(recoveries),
        stall,
    )
    table_row.append(row)
    check(row)


def test_a_crash_after_the_carrier_accepted_is_recovered_by_asking_the_carrier(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("crash-after-accept")
        # Given a 20,000-recipient job at 30 %, and a carrier that now answers 2 s after it
        # accepted a request (within the client's timeout)
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        stack.simulator.configure(latency_ms=2000)
        # When the worker dies after the carrier accepted requests but before their answers came
        accepted_before = fault.accepted()
        fault.wait_accepted(accepted_before + 1)
        fault.signal_workers(signal.SIGKILL)
        stack.simulator.configure(latency_ms=0)
        baseline = fault.accepted()
        fault.start_workers()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        # Then the batches it held are reconciled by querying the carrier: nobody is sent twice
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        reconciled = fault.reconciled_batches(job_id)
    row = TableRow(
        "2 crash after carrier accepted",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
    )
    table_row.append(row)
    check(row)
    assert reconciled > 0, "no batch went through reconciliation: the fault struck nothing"


def test_a_worker_frozen_for_a_minute_is_taken_over_and_sends_nothing_twice_when_it_wakes(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("sigstop")
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When the worker process holding the most batches is frozen (SIGSTOP) for a minute,
        # its batches, its prefetched messages and a carrier call perhaps in flight with it
        frozen = fault.busiest_worker_process()
        os.kill(frozen, signal.SIGSTOP)
        stopped_at = time.monotonic()
        baseline = fault.accepted()
        try:
            # Then the other process takes its batches over and sends on, long before it wakes
            recovered = fault.time_to_progress(stopped_at, baseline, timeout=55)
            time.sleep(max(0.0, 60 - (time.monotonic() - stopped_at)))
        finally:
            os.kill(frozen, signal.SIGCONT)
        # And when it wakes it sends nothing it no longer holds: every recipient once
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        stall = longest_stall(stack)
        reconciled = fault.reconciled_batches(job_id)
    row = TableRow(
        "11 SIGSTOP a worker 60 s",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
        stall,
    )
    table_row.append(row)
    check(row)
    assert reconciled > 0, "no batch was taken over: the freeze struck nothing"


def test_sigterm_during_a_job_finishes_in_flight_batches_and_redelivers_the_rest(
    fault_settings: Settings, tmp_path: Path, table_row: list[TableRow]
) -> None:
    with fault_stack(fault_settings, tmp_path) as stack:
        fault = Fault(stack)
        client = stack.new_tenant("sigterm")
        # Given a 20,000-recipient job at 30 %
        job_id = submit(client, phones())
        fault.wait_accepted(int(RECIPIENTS * 0.3))
        # When the worker gets SIGTERM (a deploy) and exits
        fault.signal_workers(signal.SIGTERM)
        # Then no batch is left claimed with an unknown outcome: what was in flight finished
        left_claimed = fault.batches_in(job_id, "claimed")
        # And a new worker sends the rest
        baseline = fault.accepted()
        fault.start_workers()
        recovered = fault.time_to_progress(time.monotonic(), baseline)
        wait_status(stack, client, job_id)
        verdict = verify(stack, job_id)
        reconciled = fault.reconciled_batches(job_id)
    row = TableRow(
        "10 SIGTERM workers (deploy)",
        RECIPIENTS,
        verdict.lost,
        verdict.duplicated,
        verdict.counters_equal,
        recovered,
    )
    table_row.append(row)
    check(row)
    assert (left_claimed, reconciled) == (0, 0)
