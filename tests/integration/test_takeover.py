"""A scheduler killed and started again takes its duties back at once, not after timeouts: the
leases its dead process held (`engine.dispatch.leases.dead_here`), and the result-stream entries
its flusher had read and not applied (`Flusher._read`)."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from carriers.base import Outcome, SubmitOutcome
from engine.accounts.tenants import create_tenant
from engine.clock import SystemClock
from engine.config import Settings
from engine.dispatch.leases import Lease, dead_here
from engine.keys import Keys
from engine.lifecycle.flusher import GROUP, Flusher
from engine.lifecycle.results import RecipientOutcome, ResultRecorder
from engine.redis_client import make_redis
from tests.support.results import seed_job

pytestmark = pytest.mark.integration


def gone_pid() -> int:
    """The pid of a process of this machine that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_a_gone_process_of_this_host_is_dead() -> None:
    host = socket.gethostname()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as running:
        try:
            assert not dead_here(f"{host}:{running.pid}")
        finally:
            running.kill()
    assert dead_here(f"{host}:{gone_pid()}")
    assert not dead_here(f"another-host:{gone_pid()}")
    assert not dead_here(f"{host}:not-a-pid")
    assert not dead_here("no-colon")


def test_a_lease_held_by_a_gone_process_of_this_host_is_taken_at_once(settings: Settings) -> None:
    redis = make_redis(settings.redis_url)
    keys = Keys(f"takeover-{uuid.uuid4().hex[:8]}")
    host = socket.gethostname()
    try:
        # Given a lease held for a minute by a process of this host that is gone
        dead = Lease(redis, keys.lease("flush_results"), f"{host}:{gone_pid()}", ttl_seconds=60)
        assert dead.hold()
        # When another process asks for it, it holds it now
        assert Lease(redis, keys.lease("flush_results"), f"{host}:{12345678}", ttl_seconds=60).hold()

        # And a lease held by a process of another host is not taken before it lapses
        other = Lease(redis, keys.lease("outbox"), f"elsewhere:{gone_pid()}", ttl_seconds=60)
        assert other.hold()
        assert not Lease(redis, keys.lease("outbox"), f"{host}:{12345678}", ttl_seconds=60).hold()
    finally:
        for key in redis.scan_iter(match=f"{keys.prefix}:*"):
            redis.delete(key)
        redis.close()


def test_a_new_flusher_applies_at_once_what_its_predecessor_read_and_left(settings: Settings) -> None:
    redis = make_redis(settings.redis_url)
    keys = Keys(f"takeover-{uuid.uuid4().hex[:8]}")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, create_tenant(conn, f"takeover-{uuid.uuid4().hex[:6]}"))
        created = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "UPDATE recipients SET status = 'submitted', channel = 'sms', attempt = 0,"
            " submitted_at = now(), completed_at = NULL, reason_code = NULL, reason_text = NULL"
            " WHERE job_id = %s AND job_created_at = %s AND seq = 0",
            (job_id, created),
        )
    try:
        # Given a report a flusher read from the result stream and then died with (pending, idle
        # far less than the 30 s after which entries are taken from a live consumer)
        report = SubmitOutcome(f"{job_id}-0", Outcome.DELIVERED, "1000", "ok", "r:1", None)
        ResultRecorder(redis, keys).record_reports([RecipientOutcome(job_id, 0, report)], carrier="nhn_sms")
        redis.xgroup_create(keys.results, GROUP, id="0", mkstream=True)
        assert redis.xreadgroup(GROUP, "the-dead-one", {keys.results: ">"}, count=10)

        # When a new flusher makes its first pass
        with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
            result = Flusher(
                pool, redis, keys, "the-new-one", settings=settings, clock=SystemClock()
            ).flush_once()

        # Then it applied the report, and nothing is left pending
        assert result.entries == 1
        with psycopg.connect(settings.database_url) as conn:
            status = conn.execute(
                "SELECT status FROM recipients WHERE job_id = %s AND job_created_at = %s AND seq = 0",
                (job_id, created),
            ).fetchone()
        assert status == ("delivered",)
        assert redis.xpending(keys.results, GROUP)["pending"] == 0
    finally:
        for key in redis.scan_iter(match=f"{keys.prefix}:*"):
            redis.delete(key)
        redis.close()
