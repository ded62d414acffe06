"""The report deadline, on real processes and a shared clock the test moves.

Given a carrier that never reports on some of the recipients it accepted, their job waits with
them in flight; once their channel's report deadline has passed since their submission, the
scheduler asks the carrier about them once more, ends them ``unknown`` (reason ``no_report``),
and the job finishes and is settled, without refunding them (NHN charges on acceptance).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from redis import Redis

from carriers.base import Batch, Channel, Recipient
from carriers.simulator.behaviour import FINAL, NO_REPORT, draw, fraction
from engine.accounts.tenants import create_tenant
from engine.clock import SharedOffsetClock, SystemClock
from engine.config import Settings
from engine.db import upgrade
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.flusher import Flusher
from engine.lifecycle.report_deadline import expire_reports
from engine.runtime import Runtime
from tests.support.jobs import wait_finished
from tests.support.results import seed_job
from tests.support.services import isolated_settings
from tests.support.simulator import running_simulator
from tests.support.stack import Stack, running_stack, submit_sms
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

#: The SMS report deadline the stack runs with: short, and passed by moving the shared clock.
DEADLINE_SECONDS = 3600.0
SEED = 17


@pytest.fixture(scope="module")
def deadline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides: dict[str, Any] = {
        "clock": "shared",
        "report_deadline_sms_seconds": DEADLINE_SECONDS,
        "report_deadline_poll_seconds": 1.0,
    }
    with isolated_settings(**overrides) as settings:
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("deadline-logs")) as stack:
            yield stack


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_recipients_never_reported_end_unknown_after_the_deadline_and_are_not_refunded(
    deadline_stack: Stack,
) -> None:
    stack = deadline_stack
    # Given a carrier that never reports on about a quarter of the recipients it accepts
    client = stack.new_tenant("silent-carrier")
    stack.simulator.configure(no_report_rate=0.25, seed=SEED)
    try:
        job_id = submit_sms(client, "결과 없음", [f"010-3500-{i:04d}" for i in range(200)])
        silent = {
            f"{job_id}-{seq}" for seq in range(200) if fraction(SEED, NO_REPORT, f"{job_id}-{seq}") < 0.25
        }
        assert 20 <= len(silent) <= 80
        # ... so that once the others are reported, the job waits with the silent ones in flight
        wait_until(lambda: stack.job(client, job_id)["counts"]["delivered"] == 200 - len(silent))
        time.sleep(3)  # a few deadline passes: none is past its deadline yet
        job = stack.job(client, job_id)
        assert job["status"] == "sending" and job["counts"]["in_flight"] == len(silent), job
        # When the SMS report deadline passes since their submission
        clock = SharedOffsetClock(
            Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix).clock_offset
        )
        clock.advance(timedelta(seconds=DEADLINE_SECONDS + 600))
        job = wait_finished(stack, client, job_id, timeout=60)
    finally:
        stack.simulator.configure(no_report_rate=0.0)
    # Then the job is finished (unknown is no failure), the silent recipients are unknown with
    # reason no_report, and no one is in flight any more
    assert job["status"] == "completed", job
    counts = job["counts"]
    assert counts["unknown"] == len(silent) and counts["delivered"] == 200 - len(silent)
    assert counts["in_flight"] == 0 and counts["queued"] == 0 and counts["failed"] == 0
    assert counts["delivered"] + counts["unknown"] == counts["total"] == 200
    assert job["failures"] == []
    with psycopg.connect(stack.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT seq, status, reason_code, reason_text, completed_at IS NOT NULL FROM recipients"
            " WHERE job_id = %s AND status = 'unknown'",
            (job_id,),
        ).fetchall()
        created_at = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        recount = counters.recount(conn, job_id, created_at)
    assert {f"{job_id}-{seq}" for seq, *_ in rows} == silent
    assert {(code, done) for _, _, code, _, done in rows} == {("no_report", True)}
    assert "1 hours" in rows[0][3]
    # and the live counters equal a recount from the rows
    live = counters.read(Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix), job_id)
    assert live == recount
    # and settlement charged them (the carrier did) and refunded nothing
    charges = job["charges"]
    assert charges["settled"] is True
    assert Decimal(charges["refunded"]) == 0 and Decimal(charges["charged"]) == 200 * 9
    # and a recipient listing by status shows them with their reason
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "unknown", "limit": 5}).json()
    assert len(page["recipients"]) == 5
    assert {r["status"] for r in page["recipients"]} == {"unknown"}


def test_at_the_deadline_the_carrier_is_asked_again_and_a_result_it_has_goes_in_like_a_report(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given four SMS recipients in flight in a database of their own, which the carrier accepted:
    # some it has a final result for (delivered, or failed 3015), some it never reports on
    mix = {"3015": 0.4}
    with isolated_settings() as base, running_simulator(result_delay_ms=0) as sim:
        upgrade(base.database_url)
        settings = replace(
            base,
            sms_api_url=sim.url,
            sms_app_key=sim.app_key,
            sms_secret_key=sim.secret_key,
            report_deadline_sms_seconds=1.0,
        )
        rt = Runtime(settings, pool_size=2)
        try:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                job_id = seed_job(conn, create_tenant(conn, "asked-again"))
                conn.execute(
                    "UPDATE jobs SET completed_at = NULL, status = 'sending' WHERE id = %s", (job_id,)
                )
                created = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
                conn.execute(
                    "UPDATE recipients SET status = 'submitted', channel = 'sms', submitted_at = now(),"
                    " completed_at = NULL, reason_code = NULL, reason_text = NULL, fallback_of = NULL"
                    " WHERE job_id = %s AND seq = ANY(%s)",
                    (job_id, list(SEQS)),
                )
            counters.replace(rt.redis, rt.keys, job_id, _recount(settings, job_id, created))
            refs = [f"{job_id}-{seq}" for seq in SEQS]
            seed, fates = _seed_with_every_fate(refs, mix)
            sim.configure(no_report_rate=0.3, failure_mix=mix, seed=seed)
            batch = [Recipient(r, f"0101234{i:04d}") for i, r in enumerate(refs)]
            rt.sms_carrier.submit(Batch(Channel.SMS, "0212345678", "결과 조회", batch))
            time.sleep(1.5)
            # When the deadline passes and the scheduler's pass runs
            first = expire_reports(rt)
            Flusher(rt.pool, rt.redis, rt.keys, "test", settings=settings, clock=SystemClock()).flush_once()
            # Then the results the carrier had went in as reports; the others ended unknown
            with psycopg.connect(settings.database_url) as conn:
                found = conn.execute(
                    "SELECT seq, status FROM recipients WHERE job_id = %s AND seq = ANY(%s)",
                    (job_id, list(SEQS)),
                ).fetchall()
                rows: dict[int, str] = dict(found)
            expected = {seq: fates[f"{job_id}-{seq}"] for seq in SEQS}
            assert rows == expected
            assert first.overdue == 4 and first.reported == sum(s != "unknown" for s in expected.values())
            assert first.unknown == {"sms": sum(s == "unknown" for s in expected.values())}
            # and a second pass finds nobody left in flight, and the counters equal a recount
            assert expire_reports(rt).overdue == 0
            assert counters.read(rt.redis, rt.keys, job_id) == _recount(settings, job_id, created)
        finally:
            rt.close()


#: The seeded job's recipients put in flight (its other rows are final already).
SEQS = (0, 1, 4, 5)


def _seed_with_every_fate(refs: list[str], mix: dict[str, float]) -> tuple[int, dict[str, str]]:
    """A simulator seed under which ``refs`` include each fate (the simulator draws by reference),
    and the status each then ends in."""
    for seed in range(1000):
        fates = {}
        for ref in refs:
            if fraction(seed, NO_REPORT, ref) < 0.3:
                fates[ref] = "unknown"
            else:
                fates[ref] = "failed" if draw(seed, FINAL, ref, mix) else "delivered"
        if set(fates.values()) == {"unknown", "failed", "delivered"}:
            return seed, fates
    raise AssertionError("no seed gives every fate")


def _recount(settings: Settings, job_id: int, created: datetime) -> counters.JobCounts:
    with psycopg.connect(settings.database_url) as conn:
        return counters.recount(conn, job_id, created)
