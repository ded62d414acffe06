"""Gauges read from the system at scrape time, served by the scheduler only.

Queue depths, the retry ledger, the flusher's lag, jobs by status and recipients in flight are
facts about the whole deployment, not about one process: counted in every process they would be
multiplied by the number of processes. The scheduler reads them when Prometheus scrapes it (a
few cheap queries), so they are always current, even while a duty is stuck. With several
scheduler replicas each reports the same values: aggregate them with ``max``, not ``sum``.

A source that cannot be read (RabbitMQ down) is reported by ``balsong_system_source_up`` = 0 and
its gauges are left out, rather than reported as zero.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pika
from pika.exceptions import AMQPError, ChannelClosedByBroker
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool
from redis import Redis

from engine.config import Settings
from engine.keys import Keys
from metrics import system as gauges

log = logging.getLogger(__name__)

#: Open jobs looked at for their live counters (queued, in flight) per scrape.
OPEN_JOBS_LIMIT = 10_000


@dataclass
class SystemSources:
    """What the collector reads: the broker's queues, Redis, PostgreSQL and the injected clock."""

    settings: Settings
    pool: ConnectionPool
    redis: Redis
    keys: Keys
    queues: Sequence[str]
    #: balsong's clock (retry due times are on it).
    now: Callable[[], datetime]


class SystemCollector(Collector):
    def __init__(self, sources: SystemSources) -> None:
        self.sources = sources

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = gauges.SOURCE_UP.family()
        for source, read in (
            ("rabbitmq", self._queues),
            ("redis", self._redis),
            ("postgresql", self._postgresql),
        ):
            try:
                families = list(read())
            except Exception:
                log.warning("metrics source unreadable", extra={"source": source}, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield from self._rate_caps()
        yield up

    def _queues(self) -> Iterable[GaugeMetricFamily]:
        depth = gauges.QUEUE_MESSAGES.family()
        consumers = gauges.QUEUE_CONSUMERS.family()
        params = pika.URLParameters(self.sources.settings.broker_url)
        params.socket_timeout = params.blocked_connection_timeout = 5
        params.connection_attempts = 1
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            for queue in self.sources.queues:
                # A passive declare only reads the queue's counts; it never creates one.
                try:
                    ok = channel.queue_declare(queue, passive=True).method
                except ChannelClosedByBroker:
                    # Not declared yet (no worker has started): nothing to report for it.
                    channel = connection.channel()
                    continue
                depth.add_metric([queue], ok.message_count)
                consumers.add_metric([queue], ok.consumer_count)
        finally:
            with contextlib.suppress(AMQPError):
                connection.close()
        return [depth, consumers]

    def _redis(self) -> Iterable[GaugeMetricFamily]:
        keys, redis = self.sources.keys, self.sources.redis
        pipe = redis.pipeline(transaction=False)
        pipe.zcard(keys.retry_ledger)
        pipe.zrange(keys.retry_ledger, 0, 0, withscores=True)
        pipe.xrange(keys.results, count=1)
        pipe.xlen(keys.results)
        pipe.time()
        ledger_size, first_due, first_result, stream_length, (server_seconds, server_micros) = pipe.execute()
        now = self.sources.now().timestamp()
        overdue = max(0.0, now - float(first_due[0][1])) if first_due else 0.0
        # Stream entry ids start with Redis's own clock in ms: compare with Redis's time.
        server_ms = server_seconds * 1000 + server_micros // 1000
        lag = max(0.0, (server_ms - int(first_result[0][0].split(b"-")[0])) / 1000) if first_result else 0.0
        return [
            gauges.RETRY_LEDGER_BATCHES.family(ledger_size),
            gauges.RETRY_LEDGER_OVERDUE.family(overdue),
            gauges.FLUSHER_LAG.family(lag),
            gauges.RESULT_STREAM_ENTRIES.family(stream_length),
        ]

    def _postgresql(self) -> Iterable[GaugeMetricFamily]:
        with self.sources.pool.connection() as conn:
            by_status = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
            open_jobs = conn.execute(
                "SELECT id FROM jobs WHERE completed_at IS NULL AND planned_at IS NOT NULL"
                " ORDER BY id LIMIT %s",
                (OPEN_JOBS_LIMIT,),
            ).fetchall()
        jobs = gauges.JOBS.family()
        for status, count in by_status:
            jobs.add_metric([status], count)
        pipe = self.sources.redis.pipeline(transaction=False)
        for (job_id,) in open_jobs:
            pipe.hmget(self.sources.keys.job_counts(job_id), "queued", "in_flight")
        queued = in_flight = 0
        for q, f in pipe.execute() if open_jobs else []:
            queued += int(q or 0)
            in_flight += int(f or 0)
        return [
            jobs,
            gauges.RECIPIENTS_QUEUED.family(queued),
            gauges.RECIPIENTS_IN_FLIGHT.family(in_flight),
        ]

    def _rate_caps(self) -> Iterable[GaugeMetricFamily]:
        caps = gauges.RATE_LIMIT.family()
        for channel in ("sms", "lms", "kakao"):
            caps.add_metric([channel], self.sources.settings.channel(channel).rate_limit_per_second)
        return [caps]
