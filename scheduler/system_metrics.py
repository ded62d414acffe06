"""Gauges read from the system at scrape time, served by the scheduler only.

Queue depths, the retry ledger, the flusher's lag, jobs by status and recipients in flight are
facts about the whole deployment, not about one process: counted in every process they would be
multiplied by the number of processes. The scheduler reads them when Prometheus scrapes it (a
few cheap queries), so they are always current, even while a duty is stuck. With several
scheduler replicas each reports the same values: aggregate them with ``max``, not ``sum``.

Each scrape first probes the three dependencies, each within ``PROBE_TIMEOUT_SECONDS`` (a new
PostgreSQL connection and ``SELECT 1``, a Redis ``PING``, an AMQP connection opened), and reports
``balsong_dependency_up`` 1 or 0 for each: the outage alerts read it. A source whose dependency
did not answer is not read at that scrape (its timeouts would add up past Prometheus's scrape
timeout). A source that cannot be read, for that or any other reason, is reported by
``balsong_system_source_up`` = 0 and its gauges are left out, rather than reported as zero.

Recipients queued are split by what they wait for (``balsong_recipients_queued{state}``,
`queued_by_state`), so that an alert on recipients ready to send with nothing being sent is not
raised by a paused job, by retries waiting for their due time, or by advertising held over the
night.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import pika
import psycopg
from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import AMQPError, ChannelClosedByBroker
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool
from redis import Redis

from engine.config import Settings
from engine.dispatch.worker_leases import dead_claims
from engine.intake.compliance import in_quiet_hours
from engine.keys import Keys
from engine.lifecycle.results import entry_age
from engine.lifecycle.statuses import JobStatus
from metrics import system as gauges

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Open jobs looked at for their live counters (queued, in flight) per scrape.
OPEN_JOBS_LIMIT = 10_000
#: Batches held by dead leases counted at most (the gauge says "some", the sweep takes them over).
DEAD_CLAIMS_LIMIT = 1000
#: How long each dependency probe may take, seconds: the three together stay well inside
#: Prometheus's default 10 s scrape timeout. (The Redis client given to the collector should
#: time out as soon: `engine.redis_client.make_redis` ``timeout_seconds``.)
PROBE_TIMEOUT_SECONDS = 2

# The oldest batch a worker could send now and has not claimed: published (enqueued_at), its
# job neither paused nor held (the batches_open index serves it).
_OLDEST_READY = """
SELECT coalesce(extract(epoch FROM now() - min(b.enqueued_at)), 0)
FROM batches b JOIN jobs j ON j.id = b.job_id
WHERE b.state = 'planned' AND b.enqueued_at IS NOT NULL AND j.status IN ('accepted', 'sending')
"""

_OPEN_JOBS = """
SELECT id, status, advertisement FROM jobs
WHERE completed_at IS NULL AND planned_at IS NOT NULL ORDER BY id LIMIT %s
"""
# Recipients of each job waiting in the retry ledger: the rest of each waiting batch, from its
# next_seq to the end of its range or, for a retry batch, of its list (as a claim would load
# them, `engine.dispatch.claims.RECIPIENTS_FROM`). Arithmetic on batch rows, never a scan of
# recipients: a job held overnight may have a million of them waiting.
_IN_LEDGER_BY_JOB = """
SELECT job_id, sum(CASE WHEN seqs IS NULL THEN last_seq - next_seq + 1
                        ELSE (SELECT count(*) FROM unnest(seqs) AS s WHERE s >= next_seq) END)
FROM batches WHERE state = 'waiting' GROUP BY job_id
"""


@dataclass(frozen=True, slots=True)
class OpenJob:
    """What decides where an open job's queued recipients stand."""

    status: str
    advertisement: bool
    #: Recipients not yet accepted or refused by a carrier (the job's live counter).
    queued: int
    #: Of its recipients, those in waiting retry batches (`_IN_LEDGER_BY_JOB`).
    in_ledger: int


def queued_by_state(jobs: Iterable[OpenJob], now: datetime) -> dict[str, int]:
    """Queued recipients by what they wait for (`metrics.system.QUEUED_STATES`).

    A paused job's all wait for an operator, and an advertising job's all wait for 08:00 during
    the quiet hours (those not yet in the ledger go there when claimed); otherwise those in
    waiting retry batches wait for their due time, and the rest are ready to send.
    """
    totals = dict.fromkeys(gauges.QUEUED_STATES, 0)
    night = in_quiet_hours(now)
    for job in jobs:
        if job.status == JobStatus.PAUSED:
            totals["paused"] += job.queued
        elif job.advertisement and night:
            totals["quiet_hours"] += job.queued
        else:
            # The ledger's rest counts recipients the live counter may already show as sent
            # (results not yet flushed): never more than are queued.
            waiting = min(job.queued, job.in_ledger)
            totals["retry_ledger"] += waiting
            totals["ready"] += job.queued - waiting
    return totals


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
        broker = self._probe("rabbitmq", self._connect_broker)
        try:
            reachable = {
                "postgresql": self._probe("postgresql", self._ping_postgresql) is not None,
                "redis": self._probe("redis", self._ping_redis) is not None,
                "rabbitmq": broker is not None,
            }
            dependency_up = gauges.DEPENDENCY_UP.family()
            for dependency in gauges.DEPENDENCIES:
                dependency_up.add_metric([dependency], int(reachable[dependency]))
            yield dependency_up
            up = gauges.SOURCE_UP.family()
            for source, needs, read in (
                ("rabbitmq", ("rabbitmq",), lambda: self._queues(broker)),
                ("redis", ("redis",), self._redis),
                ("postgresql", ("postgresql", "redis"), self._postgresql),
            ):
                if not all(reachable[n] for n in needs):
                    up.add_metric([source], 0)
                    continue
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
        finally:
            if broker is not None:
                with contextlib.suppress(AMQPError):
                    broker.close()

    @staticmethod
    def _probe(dependency: str, reach: Callable[[], T]) -> T | None:
        """What ``reach`` returns, or None if it failed (the dependency is down for this scrape)."""
        try:
            return reach()
        except Exception as exc:
            log.warning("dependency unreachable", extra={"dependency": dependency, "error": repr(exc)})
            return None

    def _connect_broker(self) -> BlockingConnection:
        params = pika.URLParameters(self.sources.settings.broker_url)
        params.socket_timeout = params.blocked_connection_timeout = PROBE_TIMEOUT_SECONDS
        params.stack_timeout = PROBE_TIMEOUT_SECONDS + 1
        params.connection_attempts = 1
        return pika.BlockingConnection(params)

    def _ping_postgresql(self) -> bool:
        # A new connection, not the pool's: a pool busy with the duties is not a database down.
        with psycopg.connect(
            self.sources.settings.database_url, connect_timeout=PROBE_TIMEOUT_SECONDS, autocommit=True
        ) as conn:
            conn.execute("SELECT 1")
        return True

    def _ping_redis(self) -> bool:
        return bool(self.sources.redis.ping())

    def _queues(self, connection: BlockingConnection | None) -> Iterable[GaugeMetricFamily]:
        assert connection is not None
        depth = gauges.QUEUE_MESSAGES.family()
        consumers = gauges.QUEUE_CONSUMERS.family()
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
        return [depth, consumers]

    def _redis(self) -> Iterable[GaugeMetricFamily]:
        keys, redis = self.sources.keys, self.sources.redis
        pipe = redis.pipeline(transaction=False)
        pipe.zcard(keys.retry_ledger)
        pipe.zrange(keys.retry_ledger, 0, 0, withscores=True)
        pipe.xrange(keys.results, count=1)
        pipe.xlen(keys.results)
        pipe.time()
        ledger_size, first_due, first_result, stream_length, server_time = pipe.execute()
        now = self.sources.now().timestamp()
        overdue = max(0.0, now - float(first_due[0][1])) if first_due else 0.0
        lag = entry_age(first_result, server_time)
        return [
            gauges.RETRY_LEDGER_BATCHES.family(ledger_size),
            gauges.RETRY_LEDGER_OVERDUE.family(overdue),
            gauges.FLUSHER_LAG.family(lag),
            gauges.RESULT_STREAM_ENTRIES.family(stream_length),
        ]

    def _postgresql(self) -> Iterable[GaugeMetricFamily]:
        with self.sources.pool.connection() as conn:
            by_status = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
            open_jobs = conn.execute(_OPEN_JOBS, (OPEN_JOBS_LIMIT,)).fetchall()
            in_ledger = {int(j): int(n) for j, n in conn.execute(_IN_LEDGER_BY_JOB).fetchall()}
            held_by_dead = len(dead_claims(conn, limit=DEAD_CLAIMS_LIMIT))
            oldest_ready = conn.execute(_OLDEST_READY).fetchone()
        jobs = gauges.JOBS.family()
        for status, count in by_status:
            jobs.add_metric([status], count)
        pipe = self.sources.redis.pipeline(transaction=False)
        for job_id, _, _ in open_jobs:
            pipe.hmget(self.sources.keys.job_counts(job_id), "queued", "in_flight")
        counts = pipe.execute() if open_jobs else []
        in_flight = sum(int(f or 0) for _, f in counts)
        by_state = queued_by_state(
            (
                OpenJob(status, bool(advertisement), int(q or 0), in_ledger.get(job_id, 0))
                for (job_id, status, advertisement), (q, _) in zip(open_jobs, counts, strict=True)
            ),
            self.sources.now(),
        )
        queued = gauges.RECIPIENTS_QUEUED.family()
        for state, count in by_state.items():
            queued.add_metric([state], count)
        return [
            jobs,
            queued,
            gauges.RECIPIENTS_IN_FLIGHT.family(in_flight),
            gauges.BATCHES_HELD_BY_DEAD_LEASES.family(held_by_dead),
            gauges.OLDEST_READY_BATCH.family(float(oldest_ready[0]) if oldest_ready else 0.0),
        ]

    def _rate_caps(self) -> Iterable[GaugeMetricFamily]:
        caps = gauges.RATE_LIMIT.family()
        for channel in ("sms", "lms", "kakao"):
            caps.add_metric([channel], self.sources.settings.channel(channel).rate_limit_per_second)
        return [caps]
