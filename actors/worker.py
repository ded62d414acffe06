"""What Dramatiq runs in each worker process before its threads start (``actors.worker:boot``).

`balsong worker` (cli/main.py) prepares the metrics directory and the middleware's address in
the environment, then runs Dramatiq's CLI with ``actors.worker:boot`` as the broker to import.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware.prometheus import Prometheus

from actors.broker import install_broker
from engine.config import get_settings
from engine.logs import configure_logging
from engine.unknown_settings import report_unknown_settings
from metrics import FAST_BUCKETS


class WorkerMetrics(Prometheus):
    """Dramatiq's Prometheus middleware (message counts, errors, retries, in progress; its forked
    server on ``worker_metrics_port`` serves every worker process's samples, Dramatiq's and
    balsong's), with message durations in seconds, Prometheus's base unit: its own
    ``dramatiq_message_duration_milliseconds`` fails ``promtool check metrics``."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        super().after_process_boot(broker)
        import prometheus_client

        # Replaces the millisecond histogram before anything observed it (so it writes no samples).
        self.message_durations = prometheus_client.Histogram(
            "dramatiq_message_duration_seconds",
            "The time spent processing messages.",
            ["queue_name", "actor_name"],
            buckets=FAST_BUCKETS,
            registry=prometheus_client.CollectorRegistry(),
        )
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        super().before_process_message(broker, message)
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        labels = (message.queue_name, message.actor_name)
        started = self._started.pop(message.message_id, None)
        self.message_start_times.pop(message.message_id, None)
        if started is not None:
            self.message_durations.labels(*labels).observe(time.perf_counter() - started)
        self.inprogress_messages.labels(*labels).dec()
        self.total_messages.labels(*labels).inc()
        if exception is not None:
            self.total_errored_messages.labels(*labels).inc()

    after_skip_message = after_process_message


def boot() -> dramatiq.Broker:
    """JSON logs on this process's stderr (Dramatiq's log pipe to the main process), the broker,
    the actors bound to it, and the metrics middleware."""
    settings = get_settings()
    configure_logging(settings.log_level)
    report_unknown_settings()
    settings.check_secrets()  # also when Dramatiq is started without `balsong worker`
    # One line per carrier request at INFO is noise that costs throughput; failures still log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    broker = install_broker(settings)
    # Imported only now: each actor binds to the broker installed when its module is imported.
    import actors.jobs
    import actors.reports
    import actors.resend  # noqa: F401

    broker.add_middleware(WorkerMetrics())
    return broker
