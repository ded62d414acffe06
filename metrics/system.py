"""The gauges the scheduler reads from the whole deployment at scrape time
(`scheduler.system_metrics` reads them; they are defined here, with every other metric)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily


@dataclass(frozen=True, slots=True)
class Gauge:
    """A gauge made anew at each scrape: its name, help and labels."""

    name: str
    help: str
    labels: tuple[str, ...] = ()

    def family(self, value: float | None = None) -> GaugeMetricFamily:
        """An empty family to add labelled samples to, or one unlabelled sample ``value``."""
        if value is not None:
            return GaugeMetricFamily(self.name, self.help, value=value)
        return GaugeMetricFamily(self.name, self.help, labels=list(self.labels))


#: The dependencies the scheduler probes at each scrape (``dependency`` label of `DEPENDENCY_UP`).
DEPENDENCIES = ("postgresql", "redis", "rabbitmq")
#: Why recipients of open jobs are not sent yet (``state`` label of `RECIPIENTS_QUEUED`): ready to
#: send now, waiting in the retry ledger for a retry batch's due time, an advertising job's held
#: over the 21:00-08:00 KST quiet hours, or their job paused. The states add up to every queued one.
QUEUED_STATES = ("ready", "retry_ledger", "quiet_hours", "paused")

DEPENDENCY_UP = Gauge(
    "balsong_dependency_up",
    "Whether the scheduler reached a dependency at this scrape (1) or not within its timeout (0)",
    ("dependency",),
)
SOURCE_UP = Gauge(
    "balsong_system_source_up", "Whether the scheduler could read a source at this scrape", ("source",)
)
QUEUE_MESSAGES = Gauge("balsong_queue_messages", "Messages ready in each RabbitMQ queue", ("queue",))
QUEUE_CONSUMERS = Gauge("balsong_queue_consumers", "Consumers of each RabbitMQ queue", ("queue",))
RETRY_LEDGER_BATCHES = Gauge("balsong_retry_ledger_batches", "Retry batches waiting in the retry ledger")
RETRY_LEDGER_OVERDUE = Gauge(
    "balsong_retry_ledger_overdue_seconds",
    "How far past its due time the earliest waiting retry batch is (0 if none is due)",
)
FLUSHER_LAG = Gauge(
    "balsong_flusher_lag_seconds", "Age of the oldest result not yet flushed to PostgreSQL (0 when all are)"
)
RESULT_STREAM_ENTRIES = Gauge("balsong_result_stream_entries", "Result batches waiting for the flusher")
JOBS = Gauge("balsong_jobs", "Jobs by status", ("status",))
RECIPIENTS_QUEUED = Gauge(
    "balsong_recipients_queued",
    "Recipients of open jobs not sent yet, by what they wait for (ready, retry_ledger, quiet_hours, paused)",
    ("state",),
)
OLDEST_READY_BATCH = Gauge(
    "balsong_oldest_ready_batch_seconds",
    "How long the oldest batch ready to send (published, unclaimed, its job sending) has waited (0: none)",
)
RECIPIENTS_IN_FLIGHT = Gauge(
    "balsong_recipients_in_flight", "Recipients submitted to a carrier whose final result has not come"
)
BATCHES_HELD_BY_DEAD_LEASES = Gauge(
    "balsong_batches_held_by_dead_leases", "Batches still claimed by a worker whose lease has expired"
)
RATE_LIMIT = Gauge(
    "balsong_rate_limit_per_second",
    "Configured carrier cap per channel, recipients per second (0: no cap)",
    ("channel",),
)
