"""The scheduler's system gauges, read from the real RabbitMQ, Redis and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pika
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from psycopg_pool import ConnectionPool
from redis import Redis

from engine.config import Settings
from engine.db import make_pool
from engine.keys import Keys
from scheduler.system_metrics import SystemCollector, SystemSources
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


def test_an_unreachable_broker_is_reported_not_zeroed(
    settings: Settings, resources: tuple[ConnectionPool, Redis, Keys]
) -> None:
    """Given a broker URL where nothing listens and an empty retry ledger
    When the collector is scraped
    Then RabbitMQ is reported unreadable and no queue depth is made up, while the other sources
    still report (nothing overdue)."""
    pool, redis, keys = resources
    dead_broker = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    sources = SystemSources(
        replace(settings, broker_url=dead_broker), pool, redis, keys, ("plan",), lambda: NOW
    )

    seen = samples(SystemCollector(sources))

    assert seen['balsong_system_source_up{source="rabbitmq"}'] == 0
    assert not [name for name in seen if name.startswith("balsong_queue_messages")]
    assert seen['balsong_system_source_up{source="redis"}'] == 1
    assert seen["balsong_retry_ledger_overdue_seconds"] == 0
