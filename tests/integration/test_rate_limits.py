"""Rate limits, fair share and the transactional lane, on 4 real worker processes.

One scenario runs once (about 35 s) against a channel capped at 300 recipients/s: two tenants'
bulk jobs send at once, and a 1-recipient transactional job arrives while they do. The simulator
records when each recipient arrived; each test reads one property off that record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.accounts.tenants import tenant_id_by_name
from engine.db import upgrade
from engine.dispatch.rate_policy import set_rate_limit
from tests.support.arrivals import arrival_times, max_window_count, steady_rate
from tests.support.jobs import wait_finished
from tests.support.services import isolated_settings
from tests.support.stack import SENDER, Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAP = 300.0
BULK_EACH = 5_000


@dataclass
class Scenario:
    stack: Stack
    ledger: list[dict[str, Any]]
    bulk_jobs: tuple[int, int]
    transactional_job: int
    transactional_submitted_at: float


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with isolated_settings(rate_limit_sms_per_second=CAP, carrier_timeout_seconds=2.0) as settings:
        upgrade(settings.database_url)
        log_dir: Path = tmp_path_factory.mktemp("capped-logs")
        with running_stack(settings, log_dir, worker_processes=4, worker_threads=4) as stack:
            yield stack


@pytest.fixture(scope="module")
def scenario(capped: Stack) -> Scenario:
    # Given two tenants' bulk jobs sending at once on a channel capped at 300/s ...
    first, second = capped.new_tenant("bulk-a"), capped.new_tenant("bulk-b")
    urgent = capped.new_tenant("shop")
    jobs = []
    for client, base in ((first, 10_000_000), (second, 20_000_000)):
        recipients = [{"phone": f"010{base + i:08d}"} for i in range(BULK_EACH)]
        response = client.post(
            "/v1/jobs",
            json={"channel": "sms", "sender": SENDER, "body": "(광고) 세일", "recipients": recipients},
        )
        assert response.status_code == 202, response.text
        jobs.append(response.json()["job_id"])
    # ... when a one-recipient transactional job arrives ten seconds in
    time.sleep(10)
    submitted = time.time()
    response = urgent.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "priority": "transactional",
            "body": "인증번호 123456",
            "recipients": [{"phone": "010-9999-0000"}],
        },
    )
    assert response.status_code == 202, response.text
    tx_job = response.json()["job_id"]
    wait_finished(capped, first, jobs[0], timeout=90)
    wait_finished(capped, second, jobs[1], timeout=90)
    wait_finished(capped, urgent, tx_job, timeout=30)
    return Scenario(capped, capped.simulator.ledger(), (jobs[0], jobs[1]), tx_job, submitted)


#: How far over the cap one second at the carrier may count. Requests leave evenly spaced, but on a
#: loaded machine a few sent at the end of one second reach the simulator in the next; the sending
#: side's precision is measured by bench/ratelimit.py on a quiet machine (within 1-3 %).
ARRIVAL_JITTER = 1.05
#: The run must use the channel, not merely stay under it: how much of the cap at the least. The
#: figure that matters (97 % and more) is bench/ratelimit.py's; a test only proves the limiter
#: does not starve the channel, whatever else the machine is doing.
MIN_USE = 0.8


def test_no_second_exceeds_the_cap_beyond_arrival_jitter(scenario: Scenario) -> None:
    times = arrival_times(scenario.ledger)
    assert len(times) == 2 * BULK_EACH + 1
    assert max_window_count(times) <= CAP * ARRIVAL_JITTER


def test_the_cap_is_used_over_the_run(scenario: Scenario) -> None:
    times = arrival_times(scenario.ledger)
    assert times[-1] - times[0] >= 30
    assert steady_rate(times) >= CAP * MIN_USE


def test_a_transactional_job_overtakes_bulk_within_2_seconds(scenario: Scenario) -> None:
    (arrived,) = arrival_times(scenario.ledger, prefix=f"{scenario.transactional_job}-")
    assert arrived - scenario.transactional_submitted_at < 2.0


def test_two_tenants_bulk_jobs_share_the_channel(scenario: Scenario) -> None:
    # While both are sending, each gets a fair part of the channel: neither waits for the other
    first = arrival_times(scenario.ledger, prefix=f"{scenario.bulk_jobs[0]}-")
    second = arrival_times(scenario.ledger, prefix=f"{scenario.bulk_jobs[1]}-")
    overlap_start, overlap_end = max(first[0], second[0]), min(first[-1], second[-1])
    assert overlap_end - overlap_start > 25
    in_first = sum(overlap_start <= t < overlap_end for t in first)
    in_second = sum(overlap_start <= t < overlap_end for t in second)
    assert 0.4 <= in_first / (in_first + in_second) <= 0.6


def test_nobody_is_sent_twice(scenario: Scenario) -> None:
    assert all(entry["submissions"] == 1 for entry in scenario.ledger)


def test_a_carrier_429_slows_the_channel_and_loses_nobody(capped: Stack) -> None:
    # Given a carrier that throttles at 150/s, below the 300/s we were told
    client = capped.new_tenant("throttled")
    capped.simulator.reset()
    capped.simulator.configure(rate_cap_per_second=150)
    try:
        recipients = [{"phone": f"010{30_000_000 + i:08d}"} for i in range(2_000)]
        job_id = client.post(
            "/v1/jobs", json={"channel": "sms", "sender": SENDER, "body": "공지", "recipients": recipients}
        ).json()["job_id"]
        # When the job runs into its 429s
        job = wait_finished(capped, client, job_id, timeout=120)
        summary = capped.simulator.summary()
    finally:
        capped.simulator.configure(rate_cap_per_second=0)
    # Then it was throttled, slowed down, and still every recipient went exactly once
    assert summary["throttled_requests"] > 0
    assert job["counts"]["delivered"] == 2_000
    ledger = capped.simulator.ledger()
    assert len(ledger) == 2_000
    assert all(entry["submissions"] == 1 for entry in ledger)


def test_a_tenants_own_cap_holds_below_the_channels(capped: Stack) -> None:
    # Given a tenant held to 40/s on a 300/s channel
    client = capped.new_tenant("small-contract")
    with psycopg.connect(capped.settings.database_url, autocommit=True) as conn:
        tenant_id = tenant_id_by_name(conn, "small-contract")
        set_rate_limit(conn, tenant_id, "sms", 40.0)
    # When it sends 320 recipients
    recipients = [{"phone": f"010{40_000_000 + i:08d}"} for i in range(320)]
    job_id = client.post(
        "/v1/jobs", json={"channel": "sms", "sender": SENDER, "body": "안내", "recipients": recipients}
    ).json()["job_id"]
    wait_finished(capped, client, job_id, timeout=60)
    # Then they arrive at its own pace, not the channel's
    times = arrival_times(capped.simulator.ledger(), prefix=f"{job_id}-")
    assert len(times) == 320
    assert max_window_count(times) <= 40 * ARRIVAL_JITTER
    assert steady_rate(times) >= 40 * MIN_USE
