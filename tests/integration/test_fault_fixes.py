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
from engine.dispatch.claims import claim_batch
from engine.dispatch.planning import initialise_counters, plan_job, top_up
from engine.dispatch.reconcile import renew_claim
from engine.intake.intake import prepare_job
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.completion import finish_completed_jobs
from engine.lifecycle.pausing import pause_if_failing, resume_job
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration


#: Lease ids the tests here claim batches under, alive while each test runs: a claim under a
#: lapsed lease would be taken over (and sent) by the session's scheduler, if it runs.
TEST_LEASES = ("first", "w", "holder")


@pytest.fixture(autouse=True)
def no_leftovers(settings: Settings) -> Iterator[None]:
    """Jobs made here are planned but never sent by the session's processes: their batches are
    removed afterwards, or the scheduler would reconcile (and send) what these tests left claimed."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO worker_leases (id, alive_until) SELECT unnest(%s::text[]), now() + interval '1 hour'"
            " ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
            (list(TEST_LEASES),),
        )
    yield
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM worker_leases WHERE id = ANY(%s)", (list(TEST_LEASES),))
        conn.execute(
            "DELETE FROM batches WHERE job_id IN"
            " (SELECT j.id FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE t.name = ANY(%s))",
            (list(SCRATCH_TENANTS),),
        )


SCRATCH_TENANTS = ("fencing", "pausing", "drift", "lost-outcomes", "frozen", "unknown-outcome", "let-go")


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
    stored = store_prepared(conn, Settings.from_env(), tenant_id, job)
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


def test_a_lease_not_renewed_in_time_is_given_up_for_good(settings: Settings) -> None:
    from engine.dispatch.worker_leases import WorkerLease

    # Given a worker lease, renewed, on a clock the test moves (a long ttl: its renewing
    # thread stays asleep meanwhile)
    now = [1000.0]
    lease = WorkerLease(
        lambda: psycopg.connect(settings.database_url, autocommit=True), 60.0, monotonic=lambda: now[0]
    )
    try:
        first = lease.current()
        assert lease.holds(first)
        # When the process is frozen past the lease's safe life (80 % of it) without a renewal
        now[0] += 48.5
        # Then the lease is given up, for good, and claims from now on use a new one
        assert not lease.holds(first)
        second = lease.current()
        assert second != first and lease.holds(second) and not lease.holds(first)
        # When its row lapses in PostgreSQL before a renewal comes (PostgreSQL was away)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE worker_leases SET alive_until = now() - interval '1 second' WHERE id = %s", (second,)
            )
        # Then the renewal does not revive it: a new lease is started instead
        assert lease.renew() is False and not lease.holds(second)
        assert lease.current() not in (first, second)
    finally:
        lease.stop()


def test_a_batch_whose_holder_froze_is_taken_over_and_its_holder_sends_nothing_more(
    settings: Settings,
) -> None:
    from engine.dispatch.claims import mark_sent
    from engine.dispatch.reconcile import stale_batches
    from engine.dispatch.sending import SliceEnd
    from engine.dispatch.worker_leases import WorkerLease, dead_claims
    from engine.runtime import Runtime

    now = [1000.0]
    lease = WorkerLease(
        lambda: psycopg.connect(settings.database_url, autocommit=True), 60.0, monotonic=lambda: now[0]
    )
    rt = Runtime(settings, pool_size=2)
    rt.__dict__["lease"] = lease
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            # Given a batch claimed under a live lease: nobody takes it over
            job_id = planned_job(conn, "frozen", recipients=100)
            claimed = claim_batch(conn, job_id, 0, lease.current(), datetime.now(UTC))
            assert claimed is not None and claimed.claimed_by == lease.current()
            assert (job_id, 0) not in dead_claims(conn)
            # When its process freezes (SIGSTOP) long enough for the lease to lapse (in a
            # transaction rolled back: the session's scheduler, if running, would take the batch
            # over at once)
            now[0] += 60
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "UPDATE worker_leases SET alive_until = now() - interval '1 second' WHERE id = %s",
                    (claimed.claimed_by,),
                )
                # Then the batch is stale at once (no fixed timeout), and is taken over
                assert (job_id, 0) in dead_claims(conn)
                assert (job_id, 0) in stale_batches(conn, older_than_seconds=3600)
                conn.execute(
                    "UPDATE batches SET claimed_by = 'holder', attempts = attempts + 1"
                    " WHERE job_id = %s AND seq = 0",
                    (job_id,),
                )
                # And when the frozen holder wakes, it sends nothing (no carrier is even asked) ...
                assert rt.batch_sender.send(claimed).end is SliceEnd.ABANDONED
                # ... and cannot let go of the batch its taker holds now
                mark_sent(conn, claimed)
                assert conn.execute(
                    "SELECT state, claimed_by FROM batches WHERE job_id = %s AND seq = 0", (job_id,)
                ).fetchone() == ("claimed", "holder")
    finally:
        rt.close()


def test_a_call_whose_outcome_is_unknown_hands_the_batch_over_at_once(settings: Settings) -> None:
    from engine.dispatch.claims import hand_over_unknown
    from engine.dispatch.worker_leases import dead_claims

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        # Given a batch claimed under a live lease
        job_id = planned_job(conn, "unknown-outcome", recipients=100)
        claimed = claim_batch(conn, job_id, 0, "w", datetime.now(UTC))
        assert claimed is not None and (job_id, 0) not in dead_claims(conn)
        # When a call's outcome is unknown (it timed out after the request left)
        with conn.transaction(force_rollback=True):  # unseen by the session's scheduler
            hand_over_unknown(conn, claimed)
            # Then the claim is dead: the next sweep takes it over and asks the carrier
            assert (job_id, 0) in dead_claims(conn)


def test_a_claim_its_thread_let_go_is_taken_over_while_its_process_lives(settings: Settings) -> None:
    from engine.dispatch.worker_leases import WorkerLease, dead_claims

    def claimed_at(conn: psycopg.Connection, seq: int) -> datetime:
        row = conn.execute("SELECT claimed_at FROM batches WHERE job_id = %s AND seq = %s", (job_id, seq))
        return row.fetchone()[0]  # type: ignore[index]

    lease = WorkerLease(lambda: psycopg.connect(settings.database_url, autocommit=True), 60.0)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            # Given two batches claimed under one live lease, one still worked on ...
            job_id = planned_job(conn, "let-go", recipients=2000)
            for seq in (0, 1):
                assert claim_batch(conn, job_id, seq, lease.current(), datetime.now(UTC)) is not None
            before = claimed_at(conn, 0), claimed_at(conn, 1)
            # When the lease is renewed
            with lease.holding(job_id, 0):
                assert lease.renew()
            # Then the claim worked on is renewed with it, the one let go (its thread failed) is not
            assert claimed_at(conn, 0) > before[0] and claimed_at(conn, 1) == before[1]
            # And once the lease has been renewed a lease-time after that claim, the claim is
            # dead while its process lives. (Shown in a transaction rolled back: the session's
            # scheduler, if running, would take the batch over at once.)
            with conn.transaction(force_rollback=True):
                conn.execute(
                    "UPDATE batches SET claimed_at = claimed_at - interval '61 seconds'"
                    " WHERE job_id = %s AND seq = 1",
                    (job_id,),
                )
                dead = dead_claims(conn)
            assert (job_id, 1) in dead and (job_id, 0) not in dead
    finally:
        lease.stop()
