"""Every Prometheus metric balsong exports, defined once. No label ever holds a job id, a phone
number or anything else unbounded or personal. (Exposition per process comes with the
observability work; counting starts here.)"""

from __future__ import annotations

from prometheus_client import Counter

#: Carrier answers of "too many requests" (each slows the channel down).
CARRIER_THROTTLED = Counter(
    "balsong_carrier_throttled_total", "Carrier 429 / too-many-requests answers", ["channel"]
)
#: Delivery reports naming a reference balsong does not know (logged, not an error).
REPORTS_UNKNOWN = Counter(
    "balsong_reports_unknown_reference_total", "Delivery reports for unknown references", ["carrier"]
)
#: Carrier webhook calls, by what became of them.
WEBHOOKS = Counter("balsong_webhook_requests_total", "Carrier webhook calls", ["carrier", "outcome"])
#: Recipients put into a retry batch.
RETRIES_SCHEDULED = Counter(
    "balsong_retries_scheduled_total", "Recipients scheduled for a retry", ["channel"]
)
#: Recipients expired after their retry deadline.
RECIPIENTS_EXPIRED = Counter(
    "balsong_recipients_expired_total", "Recipients expired past the retry deadline", ["channel"]
)
#: Messages that failed every retry and went to a dead-letter queue (see `balsong dead-letters`).
DEAD_LETTERS = Counter(
    "balsong_dead_letters_total", "Messages dead-lettered after their retries", ["queue", "actor"]
)
