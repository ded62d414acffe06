"""Every Prometheus metric balsong exports, defined once.

Labels are bounded sets only: channel (sms, lms, kakao), carrier (nhn_sms, nhn_alimtalk), outcome,
reason code (the providers' published codes and balsong's own; anything else is ``other``, see
`metrics.labels`), queue, route template, HTTP status. No label ever holds a job id, a tenant's
key, a phone number or anything else unbounded or personal.

Each process writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, set up by `cli.multiprocess` before this module is imported), so Dramatiq's
forked worker processes and several uvicorn workers are added up on one endpoint per process kind.
Hot paths count a whole batch at once (``inc(n)``, `metrics.histograms.observe_n`), never one
recipient at a time. Gauges that describe the whole system (queue depth, retry ledger, flusher
lag, jobs by status) are read at scrape time by the scheduler (`scheduler.system_metrics`), so they are
not multiplied by the number of processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: Latencies of work measured in seconds to minutes (a carrier call, an API request).
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Latencies that may run to hours or days (a Kakao result may come two days after submission).
SLOW_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 48 * 3600.0)

# -- recipients -----------------------------------------------------------------------------------

#: Recipients by outcome: submitted (accepted by the carrier, in flight), delivered, failed,
#: expired (retries past the deadline), fallback (a Kakao failure handed to SMS/LMS), unknown
#: (no result by the channel's report deadline).
RECIPIENTS = Counter(
    "balsong_recipients_total",
    "Recipients by channel, carrier and outcome",
    ["channel", "carrier", "outcome"],
)
#: Failed recipients by reason code (bounded: unknown codes count as "other").
RECIPIENT_FAILURES = Counter(
    "balsong_recipient_failures_total",
    "Failed recipients by channel, carrier and reason code",
    ["channel", "carrier", "reason"],
)
#: Recipients put into a retry batch.
RETRIES_SCHEDULED = Counter(
    "balsong_retries_scheduled_total", "Recipients scheduled for a retry", ["channel"]
)

# -- batches and carrier calls ----------------------------------------------------------------------

#: Send slices a worker ran, by how they ended (finished, handed_back, deferred, unknown).
BATCH_SLICES = Counter(
    "balsong_batch_slices_total", "Batch send slices run by workers, by how they ended", ["channel", "end"]
)
#: Batches taken over from a holder that was gone (its lease lapsed, or its outcomes were lost).
LEASE_TAKEOVERS = Counter(
    "balsong_lease_takeovers_total",
    "Batches taken over from a worker whose lease lapsed (reconciled with the carrier)",
    ["channel"],
)
#: Times the scheduler found Redis without its data (restarted empty) and rebuilt it.
REDIS_DATA_LOST = Counter(
    "balsong_redis_data_lost_total",
    "Times Redis was found to have lost its data and was rebuilt from PostgreSQL",
)
#: Carrier HTTP requests, timed from sending to the answer (or the transport error).
CARRIER_REQUEST_SECONDS = Histogram(
    "balsong_carrier_request_duration_seconds",
    "Carrier HTTP request latency",
    ["carrier", "operation"],
    buckets=FAST_BUCKETS,
)
#: Carrier HTTP answers by status code ("transport_error" when none came back).
CARRIER_RESPONSES = Counter(
    "balsong_carrier_responses_total",
    "Carrier HTTP answers by status code",
    ["carrier", "operation", "status"],
)
#: Carrier answers of "too many requests" (each slows the channel down).
CARRIER_THROTTLED = Counter(
    "balsong_carrier_throttled_total", "Carrier 429 / too-many-requests answers", ["channel"]
)
#: Time a worker waited for rate-limit capacity before a carrier request (0 when none was needed).
RATE_LIMIT_WAIT_SECONDS = Histogram(
    "balsong_rate_limit_wait_seconds",
    "Rate-limit wait before each carrier request",
    ["channel"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# -- latencies of the pipeline -------------------------------------------------------------------------

#: From the job's acceptance to a recipient's submission to the carrier (per recipient).
INTAKE_TO_SUBMISSION_SECONDS = Histogram(
    "balsong_intake_to_submission_seconds",
    "Time from job intake to a recipient's submission",
    ["channel"],
    buckets=SLOW_BUCKETS,
)
#: From a recipient's submission to its final result from a delivery report (per recipient).
SUBMISSION_TO_RESULT_SECONDS = Histogram(
    "balsong_submission_to_result_seconds",
    "Time from a recipient's submission to its final result",
    ["channel"],
    buckets=SLOW_BUCKETS,
)

# -- results flusher and delivery reports ------------------------------------------------------------

#: Recipient rows the flusher wrote to PostgreSQL, by what they came from (submission, report).
FLUSHED_ROWS = Counter("balsong_flusher_rows_total", "Recipient rows flushed to PostgreSQL", ["kind"])
#: Final results learned from the carriers (poll or webhook), before deduplication.
REPORTS_RECEIVED = Counter(
    "balsong_reports_received_total", "Delivery reports received from carriers", ["carrier", "source"]
)
#: Delivery reports that name no recipient this carrier sent (logged, not an error): reason
#: ``unknown_reference`` (not ours, or no such recipient) or ``wrong_channel`` (another carrier's).
REPORTS_UNMATCHED = Counter(
    "balsong_reports_unmatched_total",
    "Delivery reports matching no recipient of the carrier",
    ["carrier", "reason"],
)
#: Entries a stage set aside (dead_entries table): malformed, or failing alone once their batch
#: was retried entry by entry. Stage: flusher, webhook, poll, reconcile; reason:
#: `engine.lifecycle.entry_checks.Reason`.
DEAD_ENTRIES = Counter(
    "balsong_dead_entries_total", "Entries set aside because they cannot be applied", ["stage", "reason"]
)
#: Carrier webhook calls, by what became of them.
WEBHOOKS = Counter("balsong_webhook_requests_total", "Carrier webhook calls", ["carrier", "outcome"])

# -- settlement -------------------------------------------------------------------------------------

#: Jobs settled: their undelivered messages refunded to the tenant's balance (`engine.lifecycle.settlement`).
JOBS_SETTLED = Counter("balsong_jobs_settled_total", "Jobs settled (undelivered messages refunded)")
#: Points given back at settlement, summed over jobs (a tenant's refunds are in its ledger).
SETTLEMENT_REFUNDS = Counter("balsong_settlement_refunded_points_total", "Points refunded at settlement")

# -- status callbacks ---------------------------------------------------------------------------------

#: Callback requests by how they ended: delivered (2xx), failed (another answer, or none),
#: gone (410: the endpoint is disabled), refused (the URL may not be reached any more).
CALLBACK_REQUESTS = Counter(
    "balsong_callback_requests_total", "Status callback requests by how they ended", ["result"]
)
#: Callback events by what finally became of them: delivered, or failed (given up, or the
#: endpoint disabled).
CALLBACK_EVENTS = Counter("balsong_callback_events_total", "Status callback events by final state", ["state"])
#: Seconds from a change to its event's delivery.
CALLBACK_LAG_SECONDS = Histogram(
    "balsong_callback_lag_seconds",
    "Time from a status change to its callback's delivery",
    buckets=SLOW_BUCKETS,
)

# -- HTTP API -----------------------------------------------------------------------------------------

#: API requests by route template (never the raw path) and status code.
API_REQUESTS = Counter(
    "balsong_api_requests_total", "HTTP API requests by route and status", ["method", "route", "status"]
)
#: API request latency by route template.
API_REQUEST_SECONDS = Histogram(
    "balsong_api_request_duration_seconds",
    "HTTP API request latency",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)
#: Reservations started by the pump, or found past their grace period and marked missed.
RESERVATIONS = Counter("balsong_reservations_total", "Reservations that came due", ["outcome"])
#: Recipients of cancelled jobs dropped before submission (at claim time).
RECIPIENTS_CANCELLED = Counter(
    "balsong_recipients_cancelled_total", "Recipients of cancelled jobs never submitted", ["channel"]
)
#: Monthly recipients partitions dropped by retention.
PARTITIONS_DROPPED = Counter("balsong_retention_partitions_dropped_total", "Recipients partitions dropped")
#: Messages that failed every retry and went to a dead-letter queue (see `balsong dead-letters`).
DEAD_LETTERS = Counter(
    "balsong_dead_letters_total", "Messages dead-lettered after their retries", ["queue", "actor"]
)
