"""Regressions the fault suite found, checked cheaply on the real PostgreSQL and Redis: a
reconciliation fenced by its claim, a paused job whose batches nobody claims, a finished job
kept open by drifted counters, the flusher after Redis lost its stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
import redis

from engine.accounts import billing
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.dispatch.planning import initialise_counters, plan_job, top_up
from engine.dispatch.reconcile import renew_claim
from engine.dispatch.sending import claim_batch
from engine.intake.intake import prepare_job
from engine.intake.job_store import PartitionCache, store_job
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.completion import finish_completed_jobs
from engine.lifecycle.pausing import pause_if_failing, resume_job

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_leftovers(settings: Settings) -> Iterator[None]:
    """Jobs made here are planned but never sent by the session's processes: their batches are
    removed afterwards, or the scheduler would reconcile (and send) what these tests left claimed."""
    yield
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM batches WHERE job_id IN"
            " (SELECT j.id FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE t.name = ANY(%s))",
            (list(SCRATCH_TENANTS),),
        )


SCRATCH_TENANTS = ("fencing", "pausing", "drift", "lost-outcomes")


def planned_job(conn: psycopg.Connection, name: str, recipients: int = 1500) -> int:
    assert name in SCRATCH_TENANTS
    tenant_id = create_tenant(conn, name)
    add_sender(conn, tenant_id, "0212345678")
    billing.top_up(conn, tenant_id, Decimal(1_000_000))
    job = prepare_job(
        {
            "channel": "sms",
            "sender": "02-1234-5678",
            "body": name,
            "recipients": [{"phone": f"010-4{i // 10000:03d}-{i % 10000:04d}"} for i in range(recipients)],
        },
        max_recipients=recipients,
    )
    stored = store_job(
        conn,
        tenant_id=tenant_id,
        job=job,
        now=datetime.now(UTC),
        idempotency_key=None,
        partitions=PartitionCache(),
        settings=Settings.from_env(),
    )
    plan_job(conn, stored.job_id, batch_size=1000, window=32)
    return stored.job_id


def test_a_reconciliation_whose_claim_was_taken_over_may_not_go_on(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a batch claimed by a first worker (attempt 1) ...
        job_id = planned_job(conn, "fencing")
        first = claim_batch(conn, job_id, 0, "first", datetime.now(UTC))
        assert first is not None
        # ... then taken over by another claim (attempt 2), as a second reconciliation does
        conn.execute("UPDATE batches SET attempts = attempts + 1 WHERE job_id = %s AND seq = 0", (job_id,))
        # Then the first may not renew its claim (so it records and sends nothing); the second may
        assert renew_claim(conn, job_id, 0, first.attempt) is False
        assert renew_claim(conn, job_id, 0, first.attempt + 1) is True


def test_a_paused_job_is_not_claimed_nor_topped_up_until_resumed(settings: Settings) -> None:
    from engine.db import make_pool

    pool = make_pool(settings)
    cache = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a sending job whose counters say 900 of 1000 answered recipients failed
        job_id = planned_job(conn, "pausing")
        counters.replace(
            cache,
            keys,
            job_id,
            counters.JobCounts(
                total=1500, queued=500, failed=900, sent=100, delivered=100, reasons={"carrier_-2019": 900}
            ),
        )
        # When the failure ratio is checked
        assert pause_if_failing(pool, cache, keys, settings, job_id) is True
        # Then the job is paused with its reason, and none of its batches can be claimed
        status, reason = conn.execute(
            "SELECT status, paused_reason FROM jobs WHERE id = %s", (job_id,)
        ).fetchone()
        assert status == "paused" and "900 of the 1000" in reason and "carrier_-2019" in reason
        assert claim_batch(conn, job_id, 0, "w", datetime.now(UTC)) is None
        # When it is resumed
        resume_job(conn, job_id)
        # Then its batches are published again and can be claimed; it is not paused again
        assert [ref.seq for ref in top_up(conn, job_id, 32)] == [0, 1]
        assert claim_batch(conn, job_id, 0, "w", datetime.now(UTC)) is not None
        assert pause_if_failing(pool, cache, keys, settings, job_id) is False
    cache.close()
    pool.close()


def test_drifted_counters_do_not_keep_a_finished_job_open(settings: Settings) -> None:
    cache = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a job whose every recipient is delivered and every batch recorded in PostgreSQL ...
        job_id = planned_job(conn, "drift")
        initialise_counters(conn, cache, keys, job_id)
        conn.execute(
            "UPDATE recipients SET status = 'delivered', submitted_at = now() WHERE job_id = %s", (job_id,)
        )
        conn.execute("UPDATE batches SET state = 'recorded' WHERE job_id = %s", (job_id,))
        # ... but live counters that still show recipients in flight (re-recorded outcomes)
        cache.hset(keys.job_counts(job_id), mapping={"queued": -200, "in_flight": 200})
        # When the sweep looks at it without the counters' hint
        assert finish_completed_jobs(conn, cache, keys, [job_id]) == []
        assert finish_completed_jobs(conn, cache, keys, [job_id], use_hints=False) == [job_id]
        # Then it is finished, and its counters are PostgreSQL's
        assert conn.execute("SELECT status FROM jobs WHERE id = %s", (job_id,)).fetchone() == ("completed",)
        live = counters.read(cache, keys, job_id)
    assert live is not None and (live.delivered, live.in_flight, live.queued) == (1500, 0, 0)
    cache.close()


def test_a_batch_missing_outcomes_lost_with_redis_is_not_recorded(settings: Settings) -> None:
    from carriers.base import Outcome, SubmitOutcome
    from engine.clock import SystemClock
    from engine.db import make_pool
    from engine.lifecycle.flusher import Flusher
    from engine.lifecycle.results import ResultRecorder

    cache = redis.Redis.from_url(settings.redis_url)
    # Its own result stream: the session's scheduler, if running, must not flush it meanwhile.
    keys = Keys(f"{settings.redis_prefix}:lost-outcomes")
    pool = make_pool(settings)
    recorder = ResultRecorder(cache, keys)
    flusher = Flusher(pool, cache, keys, "test", settings=settings, clock=SystemClock())
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        job_id = planned_job(conn, "lost-outcomes", recipients=1000)
        initialise_counters(conn, cache, keys, job_id)
        (created_at,) = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()

        def record(seqs: range, done: bool) -> None:
            outcomes = [(s, SubmitOutcome(f"{job_id}-{s}", Outcome.ACCEPTED, None, "ok")) for s in seqs]
            recorder.record_submission(
                job_id=job_id,
                job_created_at=created_at,
                batch_seq=0,
                outcomes=outcomes,
                batch_done=done,
                at=datetime.now(UTC),
            )
            while flusher.flush_once().entries:
                pass

        def state() -> str:
            return str(conn.execute("SELECT state FROM batches WHERE job_id = %s", (job_id,)).fetchone()[0])

        # Given the first slice's outcomes of a batch lost (Redis restarted before the flush)
        # When the last slice records its outcomes and says the batch is done
        record(range(500, 1000), done=True)
        # Then the batch is not recorded: 500 of its recipients have no outcome in PostgreSQL
        assert state() == "planned"
        # When the reconciliation records the missing ones
        record(range(500), done=True)
        # Then it is
        assert state() == "recorded"
    pool.close()
    cache.close()
