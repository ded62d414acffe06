"""The scheduler's system gauges, read from the real RabbitMQ, Redis and PostgreSQL."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pika
import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from psycopg_pool import ConnectionPool
from redis import Redis

from engine.accounts.tenants import create_tenant
from engine.config import Settings
from engine.db import make_pool, upgrade
from engine.keys import Keys
from engine.redis_client import make_redis
from scheduler.system_metrics import (
    PROBE_TIMEOUT_SECONDS,
    OpenJob,
    SystemCollector,
    SystemSources,
    queued_by_state,
)
from tests.support.services import isolated_settings
from tests.support.simulator import free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
QUEUE = "system-metrics.test"


@pytest.fixture
def resources(settings: Settings) -> Iterator[tuple[ConnectionPool, Redis, Keys]]:
    # A key prefix of its own: the session stack's flusher must not drain this test's stream.
    keys = Keys(f"{settings.redis_prefix}:system-metrics")
    pool = make_pool(settings, max_size=2)
    redis = Redis.from_url(settings.redis_url)
    try:
        yield pool, redis, keys
    finally:
        redis.delete(keys.retry_ledger, keys.results)
        redis.close()
        pool.close()


def samples(collector: SystemCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    values = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def scrape_once_three_are_counted(sources: SystemSources) -> dict[str, float]:
    """A scrape once RabbitMQ counts the 3 published messages (confirms are not awaited)."""
    key = f'balsong_queue_messages{{queue="{QUEUE}"}}'
    for _ in range(50):
        seen = samples(SystemCollector(sources))
        if seen.get(key) == 3:
            break
        time.sleep(0.1)
    return seen


def test_ledger_lag_and_queues_are_read_from_the_system(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given two retry batches, the earlier due 120 s before now, an unflushed result entry, a
    queue holding 3 messages and a queue name nobody declared
    When the scheduler's collector is scraped
    Then it reports 2 waiting batches 120 s overdue, one unflushed entry, a depth of 3 (and none
    for the undeclared queue), RabbitMQ, Redis and PostgreSQL readable, and the configured caps."""
    pool, redis, keys = resources
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True)
    for _ in range(3):
        channel.basic_publish("", QUEUE, b"{}")
    redis.zadd(keys.retry_ledger, {"1:2": (NOW - timedelta(seconds=120)).timestamp()})
    redis.zadd(keys.retry_ledger, {"1:3": (NOW + timedelta(seconds=600)).timestamp()})
    redis.xadd(keys.results, {"d": b"{}"})
    sources = SystemSources(
        replace(settings, rate_limit_sms_per_second=300.0),
        pool,
        redis,
        keys,
        (QUEUE, "system-metrics.undeclared"),
        lambda: NOW,
    )

    try:
        seen = scrape_once_three_are_counted(sources)
    finally:
        channel.queue_delete(QUEUE)
        connection.close()

    assert seen["balsong_retry_ledger_batches"] == 2
    assert seen["balsong_retry_ledger_overdue_seconds"] == pytest.approx(120, abs=1)
    assert seen["balsong_result_stream_entries"] == 1
    assert seen["balsong_flusher_lag_seconds"] >= 0
    assert seen[f'balsong_queue_messages{{queue="{QUEUE}"}}'] == 3
    assert 'balsong_queue_messages{queue="system-metrics.undeclared"}' not in seen
    assert seen['balsong_rate_limit_per_second{channel="sms"}'] == 300
    for source in ("rabbitmq", "redis", "postgresql"):
        assert seen[f'balsong_system_source_up{{source="{source}"}}'] == 1, source
        assert seen[f'balsong_dependency_up{{dependency="{source}"}}'] == 1, source


def test_an_unreachable_broker_is_reported_not_zeroed(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given a broker URL where nothing listens and an empty retry ledger
    When the collector is scraped
    Then RabbitMQ is reported down and unreadable and no queue depth is made up, while the other
    sources still report (nothing overdue)."""
    pool, redis, keys = resources
    dead_broker = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    sources = SystemSources(
        replace(settings, broker_url=dead_broker), pool, redis, keys, ("plan",), lambda: NOW
    )

    seen = samples(SystemCollector(sources))

    assert seen['balsong_dependency_up{dependency="rabbitmq"}'] == 0
    assert seen['balsong_system_source_up{source="rabbitmq"}'] == 0
    assert not [name for name in seen if name.startswith("balsong_queue_messages")]
    assert seen['balsong_dependency_up{dependency="redis"}'] == 1
    assert seen['balsong_dependency_up{dependency="postgresql"}'] == 1
    assert seen['balsong_system_source_up{source="redis"}'] == 1
    assert seen["balsong_retry_ledger_overdue_seconds"] == 0


def test_an_unreachable_redis_is_reported_down_with_what_needs_it(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given a Redis URL where nothing listens (the collector's quick-to-give-up client)
    When the collector is scraped
    Then Redis is reported down, the Redis gauges and the jobs' live counts (kept in Redis) are
    left out, and PostgreSQL and RabbitMQ are reported up."""
    pool, _, keys = resources
    dead_redis = make_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=PROBE_TIMEOUT_SECONDS)
    sources = SystemSources(settings, pool, dead_redis, keys, ("plan",), lambda: NOW)

    seen = samples(SystemCollector(sources))

    assert seen['balsong_dependency_up{dependency="redis"}'] == 0
    assert seen['balsong_system_source_up{source="redis"}'] == 0
    assert seen['balsong_system_source_up{source="postgresql"}'] == 0
    assert "balsong_retry_ledger_batches" not in seen
    assert not [name for name in seen if name.startswith("balsong_recipients_queued")]
    assert seen['balsong_dependency_up{dependency="postgresql"}'] == 1
    assert seen['balsong_dependency_up{dependency="rabbitmq"}'] == 1


def test_an_unreachable_postgresql_is_reported_down(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given a database URL where nothing listens
    When the collector is scraped
    Then PostgreSQL is reported down and no job gauge is made up; Redis and RabbitMQ are up."""
    pool, redis, keys = resources
    dead_database = f"postgresql://postgres@127.0.0.1:{free_port()}/balsong"
    sources = SystemSources(
        replace(settings, database_url=dead_database), pool, redis, keys, ("plan",), lambda: NOW
    )

    seen = samples(SystemCollector(sources))

    assert seen['balsong_dependency_up{dependency="postgresql"}'] == 0
    assert seen['balsong_system_source_up{source="postgresql"}'] == 0
    assert not [name for name in seen if name.startswith(("balsong_jobs", "balsong_recipients_queued"))]
    assert seen['balsong_dependency_up{dependency="redis"}'] == 1
    assert seen['balsong_dependency_up{dependency="rabbitmq"}'] == 1


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) but never says a word, as a
    server hung or behind a broken network would."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_dependencies_that_never_answer_are_reported_down_within_a_scrape_timeout(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given PostgreSQL, Redis and RabbitMQ addresses that accept connections and never answer
    When the collector is scraped
    Then all three are reported down, and the scrape took less than Prometheus's default 10 s
    scrape timeout (each probe gives up after its own timeout)."""
    pool, _, keys = resources
    with silent_server() as pg_port, silent_server() as redis_port, silent_server() as amqp_port:
        silent = replace(
            settings,
            database_url=f"postgresql://postgres@127.0.0.1:{pg_port}/balsong",
            broker_url=f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2F",
        )
        redis = make_redis(f"redis://127.0.0.1:{redis_port}/0", timeout_seconds=PROBE_TIMEOUT_SECONDS)
        sources = SystemSources(silent, pool, redis, keys, ("plan",), lambda: NOW)
        started = time.monotonic()
        seen = samples(SystemCollector(sources))
        took = time.monotonic() - started

    for dependency in ("postgresql", "redis", "rabbitmq"):
        assert seen[f'balsong_dependency_up{{dependency="{dependency}"}}'] == 0, dependency
    assert took < 9, took


# -- recipients queued, by what they wait for --------------------------------------------------------

#: 12:00 and 22:00 KST: the quiet hours for advertising (21:00-08:00 KST) hold at the second only.
DAY = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def own_database() -> Iterator[Settings]:
    """A database of this module's own: the collector reads every open job, and the session's
    other tests leave theirs."""
    with isolated_settings() as isolated:
        upgrade(isolated.database_url)
        yield isolated


def open_job(
    conn: psycopg.Connection,
    tenant_id: int,
    status: str,
    *,
    advertisement: bool = False,
    batches: Sequence[tuple[str, int, int, int, list[int] | None]] = (),
    completed: bool = False,
) -> int:
    """A planned job in ``status`` with ``batches`` (state, first seq, next seq, last seq, retry
    seqs); its id."""
    row = conn.execute(
        """
        INSERT INTO jobs (tenant_id, created_at, status, requested_channel, sender, body, total,
                          sms_count, lms_count, invalid_count, planned_at, completed_at, advertisement)
        VALUES (%s, now(), %s, 'sms', '0212345678', '(광고) 안내', 1000, 1000, 0, 0, now(),
                CASE WHEN %s THEN now() END, %s)
        RETURNING id
        """,
        (tenant_id, status, completed, advertisement),
    ).fetchone()
    assert row is not None
    job_id = int(row[0])
    for seq, (state, first, next_seq, last, seqs) in enumerate(batches):
        conn.execute(
            "INSERT INTO batches (job_id, seq, channel, first_seq, next_seq, last_seq, seqs, state, due_at)"
            " VALUES (%s, %s, 'sms', %s, %s, %s, %s, %s, CASE WHEN %s = 'waiting' THEN now() END)",
            (job_id, seq, first, next_seq, last, seqs, state, state),
        )
    return job_id


def test_queued_recipients_are_split_by_what_they_wait_for(own_database: Settings) -> None:
    """Given a sending job with 100 recipients queued, 30 of them in a deferred batch (70-99) and
    2 in a retry batch (seqs 15 and 20 still to send); a paused job with 50 queued; an advertising
    job with 40 queued, 10 of them waiting in the ledger; and a completed job whose counter
    still says 7
    When the collector is scraped at noon and at 22:00 KST
    Then at noon 98 are ready, 42 wait in the retry ledger and 50 for their paused job; at night
    the advertising job's 40 wait for the morning instead, whether in the ledger or not."""
    settings = own_database
    keys = Keys(settings.redis_prefix)
    pool = make_pool(settings, max_size=2)
    redis = Redis.from_url(settings.redis_url)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            tenant = create_tenant(conn, "system-metrics")
            sending = open_job(
                conn,
                tenant,
                "sending",
                batches=[
                    ("planned", 0, 0, 59, None),
                    ("waiting", 60, 70, 99, None),
                    ("waiting", 5, 12, 20, [5, 10, 15, 20]),
                ],
            )
            paused = open_job(conn, tenant, "paused", batches=[("waiting", 0, 0, 49, None)])
            advertising = open_job(
                conn,
                tenant,
                "sending",
                advertisement=True,
                batches=[("planned", 0, 0, 29, None), ("waiting", 30, 30, 39, None)],
            )
            finished = open_job(conn, tenant, "completed", completed=True)
        for job_id, queued in ((sending, 100), (paused, 50), (advertising, 40), (finished, 7)):
            redis.hset(keys.job_counts(job_id), mapping={"queued": queued, "in_flight": 1})

        def queued_at(now: datetime) -> dict[str, float]:
            sources = SystemSources(settings, pool, redis, keys, (), lambda: now)
            seen = samples(SystemCollector(sources))
            return {
                state: seen[f'balsong_recipients_queued{{state="{state}"}}']
                for state in ("ready", "retry_ledger", "quiet_hours", "paused")
            }

        day, night = queued_at(DAY), queued_at(NIGHT)
    finally:
        redis.close()
        pool.close()

    assert day == {"ready": 98, "retry_ledger": 42, "quiet_hours": 0, "paused": 50}
    assert night == {"ready": 68, "retry_ledger": 32, "quiet_hours": 40, "paused": 50}


def test_queued_recipients_never_count_more_in_the_ledger_than_are_queued() -> None:
    """Given a job whose live counter says 5 queued while its waiting batches hold 30 (results
    not flushed yet)
    When its recipients are split
    Then 5 wait in the ledger and none is ready."""
    split = queued_by_state([OpenJob("sending", False, queued=5, in_ledger=30)], DAY)

    assert split == {"ready": 0, "retry_ledger": 5, "quiet_hours": 0, "paused": 0}
