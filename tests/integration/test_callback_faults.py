"""Status callbacks under faults, with a real HTTP receiver: a receiver down for the whole job,
one answering 500 at random, one that hangs, and the dispatcher killed with SIGKILL mid-request.
In every case each event the outbox holds reaches the receiver (at least once), and a
recipient's events never arrive out of order."""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from cli.processes import callbacks_argv
from tests.integration.test_callbacks import RANK, finished, phones, submit, wait_state
from tests.support.jobs import wait_finished
from tests.support.receiver import Receiver, random_failures, running_receiver
from tests.support.simulator import free_port
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECIPIENTS = 2000


def outbox(stack: Stack, job_id: int) -> dict[str, int]:
    """The job's events in the outbox, by state."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        return {
            state: int(count)
            for state, count in conn.execute(
                "SELECT state, sum(event_count) FROM callback_events WHERE job_id = %s GROUP BY state",
                (job_id,),
            ).fetchall()
        }


def final_statuses(stack: Stack, job_id: int) -> dict[str, str]:
    """Each recipient's status in PostgreSQL, by its reference."""
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        return dict(
            conn.execute(
                "SELECT reference, status FROM recipients WHERE job_id = %s AND fallback_of IS NULL",
                (job_id,),
            ).fetchall()
        )


def check_complete(stack: Stack, receiver: Receiver, job_id: int) -> int:
    """Every event of the job arrived, in order per recipient, ending where its row ended;
    returns how many arrived more than once."""
    events = [e for e in receiver.events() if e["job_id"] == job_id]
    unique = {e["event_id"] for e in events}
    assert outbox(stack, job_id) == {"delivered": len(unique)}
    seen: set[str] = set()
    by_reference: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event["type"] == "recipient.status" and event["event_id"] not in seen:
            by_reference[event["reference"]].append(event["status"])
        seen.add(event["event_id"])
    rows = final_statuses(stack, job_id)
    assert len(by_reference) == len(rows) == RECIPIENTS
    for reference, statuses in by_reference.items():
        ranks = [RANK[s] for s in statuses]  # type: ignore[index]
        assert ranks == sorted(ranks), (reference, statuses)
        assert statuses[-1] == rows[reference]
    return len(events) - len(unique)


def test_a_receiver_down_for_the_whole_job_gets_every_event_once_it_is_up(stack: Stack) -> None:
    # Given a job whose callback URL has nobody listening
    client = stack.new_tenant("callback-fault-down")
    receiver = Receiver(port=free_port())
    job_id = submit(client, phones("7400", RECIPIENTS), callback_url=receiver.url)
    wait_finished(stack, client, job_id)
    # Then its events wait, saying why
    state = wait_state(client, job_id, lambda s: s["last_error"] is not None and s["events"]["pending"] > 0)
    assert "Connect" in state["last_error"]
    assert state["events"]["delivered"] == 0

    # When the receiver comes up
    receiver.start()
    try:
        receiver.wait_for(finished(job_id), timeout=120)
        # Then every event arrives
        check_complete(stack, receiver, job_id)
    finally:
        receiver.stop()


def test_a_receiver_answering_500_at_random_loses_no_event(stack: Stack) -> None:
    # Given a receiver that fails 30 % of requests
    client = stack.new_tenant("callback-fault-500")
    with running_receiver(answer=random_failures(0.3)) as receiver:
        job_id = submit(client, phones("7401", RECIPIENTS), callback_url=receiver.url)
        # When the job finishes
        receiver.wait_for(finished(job_id), timeout=180)
        wait_state(client, job_id, lambda s: s["events"]["pending"] == 0, timeout=120)
        # Then every event arrived, in order, though some requests failed and went again
        assert any(d.status == 500 for d in receiver.deliveries)
        check_complete(stack, receiver, job_id)


@contextmanager
def dispatcher_restarted_after(stack: Stack) -> Iterator[None]:
    try:
        yield
    finally:
        if stack.processes.procs["callbacks"].poll() is not None:
            stack.processes.start("callbacks", callbacks_argv())


def test_kill_9_of_the_dispatcher_mid_request_loses_no_event(stack: Stack) -> None:
    # Given a slow receiver (each request takes half a second) and a job sending it events
    client = stack.new_tenant("callback-fault-kill")

    def slow(_number: int) -> int:
        time.sleep(0.5)
        return 200

    with running_receiver(answer=slow) as receiver, dispatcher_restarted_after(stack):
        job_id = submit(client, phones("7402", RECIPIENTS), callback_url=receiver.url)
        receiver.wait_for(lambda events: len(events) >= 500, timeout=120)
        deadline = time.monotonic() + 30
        while not receiver.in_flight() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.in_flight()
        # When the dispatcher is killed with SIGKILL mid-request, and started again
        dispatcher = stack.processes.procs["callbacks"]
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
        stack.processes.start("callbacks", callbacks_argv())
        # Then every event arrives (the request cut short goes again)
        receiver.wait_for(finished(job_id), timeout=180)
        wait_state(client, job_id, lambda s: s["events"]["pending"] == 0, timeout=60)
        # (and the receiver, which did take the request cut short, gets it twice: at least once)
        assert check_complete(stack, receiver, job_id) > 0


def test_a_hanging_endpoint_holds_up_no_other_tenant(stack: Stack) -> None:
    # Given one tenant whose receiver hangs for longer than the callback timeout
    hanging = stack.new_tenant("callback-fault-hang")
    prompt = stack.new_tenant("callback-fault-prompt")

    def hang(_number: int) -> int:
        time.sleep(stack.settings.callback_timeout_seconds + 5)
        return 200

    with running_receiver(answer=hang) as stuck, running_receiver() as receiver:
        submit(hanging, phones("7403", 50), callback_url=stuck.url)
        time.sleep(1.5)  # its first request is hanging
        # When another tenant's job sends events meanwhile
        job_id = submit(prompt, phones("7404", 50), callback_url=receiver.url)
        receiver.wait_for(finished(job_id), timeout=60)
        # Then they all arrived while the other's request still hangs
        assert not stuck.deliveries
