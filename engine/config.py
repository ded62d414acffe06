"""One frozen settings object, read from the environment once per process."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from functools import cache
from typing import Any
from urllib.parse import urlsplit

#: The RabbitMQ queue types balsong can declare its queues as.
QUEUE_TYPES = ("classic", "quorum")
#: What ``BALSONG_ENV`` may say; unset, it is production.
ENVIRONMENTS = ("development", "production")
#: The secrets' values in development: the local simulator's, public in this repository. In
#: production no secret has a value unless it is set, and these values are refused.
DEVELOPMENT_SECRETS = {
    "sms_app_key": "balsong-local",
    "sms_secret_key": "balsong-local-secret",
    "kakao_app_key": "balsong-local",
    "kakao_secret_key": "balsong-local-secret",
    "kakao_sender_key": "balsong-sender-key",
    "sms_webhook_signature": "balsong-local-webhook",
    "kakao_webhook_signature": "balsong-local-webhook",
    "cursor_secret": "balsong-local-cursor-secret",
}
#: The carrier API URLs, which point at the local simulator unless set. In production a carrier
#: URL on a loopback address (the simulator's ``127.0.0.1:8070`` or any other) is refused: a
#: process sending there would send nothing to any phone while reporting success.
CARRIER_URLS = ("sms_api_url", "kakao_api_url")


class MissingSecrets(RuntimeError):
    """A production process was started with development values: secrets it lacks, or carrier
    URLs that point at the local simulator (see `Settings.check_secrets`).

    Parameters:
      secrets: the variables of the secrets not set or holding their public development value.
      urls: the variables of the carrier URLs on a loopback address.
    """

    def __init__(self, secrets: list[str], urls: list[str] | None = None) -> None:
        self.secrets = secrets
        self.urls = urls or []
        #: Every variable to set, secrets first.
        self.names = [*secrets, *self.urls]
        problems = []
        if secrets:
            problems.append(
                f"these secrets are not set or still hold the public development values: {', '.join(secrets)}"
            )
        if self.urls:
            problems.append(
                "these carrier URLs point at the local carrier simulator (a loopback address):"
                f" {', '.join(self.urls)}"
            )
        super().__init__(
            "BALSONG_ENV is production (it is unless set to development), and "
            + "; and ".join(problems)
            + ". Set them (secrets from your secret store, the URLs to the providers' APIs), or set"
            " BALSONG_ENV=development to run against the local simulator with its built-in values."
        )


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """The settings of one carrier channel, typed: read them with `Settings.channel`."""

    #: Carrier cap in recipients per second, shared by every worker (0: no cap).
    rate_limit_per_second: float
    #: Retries stop this long after the first attempt; the recipient is then expired.
    retry_deadline_seconds: float
    #: A recipient accepted by the carrier and still without a final result this long after its
    #: submission is asked about once more, then ends ``unknown`` (`engine.lifecycle.report_deadline`).
    report_deadline_seconds: float


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob balsong has. Environment variable: ``BALSONG_`` + the field name in upper case.

    ``BALSONG_ENV`` is ``production`` unless set to ``development``. In production the secrets
    (`DEVELOPMENT_SECRETS`: carrier app/secret keys, the KakaoTalk sender key, the webhook
    signatures, the cursor key) have no value unless they are set, and the api, worker, scheduler
    and callbacks dispatcher refuse to start while one is missing or a carrier URL still points at
    the simulator (`check_secrets`). In development, a secret not set takes the local simulator's
    public value.

    A ``BALSONG_*`` variable that is no field is reported at start-up (`engine.unknown_settings`).
    Each field's ``#:`` comment is its documentation: docs/configuration.md's table of settings is
    generated from them (``python -m engine.config_doc --write``), and a unit test keeps it so.
    """

    #: "development" (local simulator, public built-in secrets) or "production" (the default).
    env: str = "production"

    #: PostgreSQL, the truth for jobs and per-recipient results.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/balsong"
    #: A PostgreSQL replica for read-heavy endpoints (job history, recipients, exports); empty:
    #: the primary. Reads there lag the primary by the replica's replay delay (docs/scaling.md).
    database_read_url: str = ""
    #: Connections per process in its pool (and in its read pool); 0: worker_threads + 4, one
    #: per worker thread plus the few a process uses besides. Size PgBouncer or max_connections
    #: for the sum over every process (docs/scaling.md).
    database_pool_size: int = 0
    #: True when ``database_url`` points at PgBouncer in transaction mode: statements are never
    #: prepared server-side, since consecutive transactions may run on different server sessions.
    database_pgbouncer: bool = False
    #: Redis, for live counters, the result stream and leases; ``redis+cluster://host:port``
    #: for Redis Cluster (any one node; the others are discovered).
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key, so several deployments (or test runs) can share one Redis.
    redis_prefix: str = "balsong"
    #: RabbitMQ (AMQP URL, vhost included).
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    #: "classic" or "quorum": the type of every queue balsong declares. Quorum queues are
    #: replicated over a RabbitMQ cluster; a queue's type is fixed when it is first declared, so
    #: switching an existing vhost needs its queues drained and deleted (see docs/scaling.md).
    queue_type: str = "classic"
    #: Quorum queues: a message delivered this many times without being acknowledged (a worker
    #: killed mid-batch, again and again) goes to the queue's dead-letter queue instead.
    queue_delivery_limit: int = 20
    #: NHN Cloud Notification SMS API base URL (the simulator by default).
    #: Its app key and secret key: secrets, required in production.
    sms_api_url: str = "http://127.0.0.1:8070"
    sms_app_key: str = ""
    sms_secret_key: str = ""
    #: KakaoTalk AlimTalk (NHN Cloud KakaoTalk Bizmessage) API and keys (secrets, required in
    #: production, as the sender key is).
    kakao_api_url: str = "http://127.0.0.1:8070"
    kakao_app_key: str = ""
    kakao_secret_key: str = ""
    kakao_sender_key: str = ""
    #: KakaoTalk results are polled (besides the webhook) every this many seconds, this far
    #: behind now: the provider's result query has minute precision.
    kakao_report_poll_seconds: float = 30.0
    kakao_report_settle_seconds: float = 70.0
    #: The scheduler polls carriers' reports in a child process of its own, which parses the
    #: next pages of a burst while the flusher applies the last ones (on another CPU).
    #: false: one process runs every duty (a scheduler confined to one CPU).
    scheduler_report_process: bool = True
    #: The signature each provider's webhook settings were given (X-Toast-Webhook-Signature);
    #: a webhook call without it is refused. Secrets, required in production: with a known
    #: signature anyone could forge any tenant's delivery reports. (Empty, which only a process
    #: that skips `check_secrets` can have: that provider's webhook is not accepted.)
    sms_webhook_signature: str = ""
    kakao_webhook_signature: str = ""
    #: Key of the HMAC that signs the API's page cursors (``next_cursor``), so a caller cannot
    #: forge or alter one (`engine.cursors`). Changing it invalidates the cursors handed out.
    #: A secret, required in production.
    cursor_secret: str = ""
    #: Longest wait for a PostgreSQL connection (from the pool, or to open one), in seconds. Short,
    #: so that with the database down the API answers 503 at once instead of hanging.
    database_timeout_seconds: float = 5.0
    #: A job is paused (status ``paused``, with the reason shown) once at least
    #: ``pause_min_sample`` of its recipients have been answered by the carrier and this fraction
    #: of them failed: something is wrong with the job or the carrier, and going on would burn
    #: the rest of its recipients. 0 turns the check off.
    pause_failure_ratio: float = 0.5
    pause_min_sample: int = 500
    #: Seconds a carrier HTTP call may take before its outcome is treated as unknown.
    carrier_timeout_seconds: float = 10.0
    #: HTTP API listen address, used by the CLI and demo to reach the API.
    api_url: str = "http://127.0.0.1:8000"
    #: Development only: callbacks may go over plain http, and to loopback or private addresses
    #: (a receiver on the developer's machine). Never in production: see engine.callbacks.urls.
    callback_allow_http: bool = False
    #: Endpoints the callback dispatcher serves at once (each has at most one request in flight,
    #: which keeps its events in order); a slow endpoint holds one of them, never the others.
    callback_concurrency: int = 16
    #: Seconds a callback request may take (connect, send, answer) before it counts as failed.
    callback_timeout_seconds: float = 10.0
    #: Hours a callback event is retried for before it is given up (``failed``).
    callback_retry_hours: float = 24.0
    #: Longest rest between two tries of a failing endpoint (the rest doubles from 1 s).
    callback_max_backoff_seconds: float = 600.0
    #: How much the callback dispatcher's process lowers its CPU priority (``nice`` increment,
    #: 0-19): where it and the send pipeline share CPUs, sending goes first and callbacks take
    #: the CPU it leaves (bench/callbacks.py on 2 cores: 15 % of the send rate at 5, 6 % at 19).
    callbacks_nice: int = 19
    #: Seconds events wait to fill a callback request (sent sooner once 1,000 are waiting).
    callback_batch_seconds: float = 1.0
    #: While this machine's CPUs are contended (Linux pressure stall information: a task waited
    #: for a CPU 20 % of the last second or more), callback events wait up to this many seconds
    #: before they are sent, so that delivery takes the CPU sending leaves rather than slowing it
    #: (a dispatcher on CPUs of its own never waits). 0: never hold events back.
    callback_busy_hold_seconds: float = 10.0
    #: Base of tracked links' short URLs, ``{public_url}/r/{code}``: the API as recipients'
    #: phones reach it, kept short (every character counts against 90 SMS bytes). Empty: api_url.
    public_url: str = ""
    #: Recipients per send batch (the providers' per-request maximum is 1000).
    batch_size: int = 1000
    #: Largest job accepted in one request.
    max_recipients_per_job: int = 1_000_000
    #: Largest job request body, in bytes (a million recipients with a few variables each).
    max_job_request_bytes: int = 200 * 1024 * 1024
    #: Intake limits per tenant against runaway or abusive callers (0: none); a tenant's own
    #: limits (``balsong tenant limits``) replace these.
    intake_requests_per_second: float = 200.0
    intake_recipients_per_day: int = 0
    #: API-key guessing (console sign-ins, API calls with an unknown key): failed attempts allowed
    #: per window per client IP address (IPv6: per /64) and per key prefix, beyond which attempts
    #: get 429 without a database lookup until the window ends (0: no limit). A key used
    #: successfully in the last week is never throttled (engine/accounts/sign_in_limits.py).
    sign_in_failures_per_client: int = 20
    sign_in_failures_per_key_prefix: int = 20
    sign_in_window_seconds: float = 300.0
    #: Intake budget (``engine.intake.intake_budget``): job request bytes in flight and job submissions
    #: in progress at once, per tenant over every API process, and per API process over every
    #: tenant (0: no limit). Beyond them a submission is answered 429 with Retry-After. A
    #: submission alone is always admitted: these bound what runs together, not a job's size.
    #: An intake's memory peaks at ~7x its JSON (1M recipients, 60 MB: ~400 MB while its rows
    #: are stored), so an API process's intake memory stays within ~7x its bytes budget.
    intake_max_bytes_in_flight_per_tenant: int = 256 * 1024 * 1024
    intake_max_concurrent_per_tenant: int = 4
    intake_max_bytes_in_flight_per_process: int = 256 * 1024 * 1024
    intake_max_concurrent_per_process: int = 16
    #: A submission's share of its tenant's budget lapses this long after its API process last
    #: renewed it (it renews every third of it while the submission runs): a killed process's
    #: share comes back within this long.
    intake_lease_seconds: float = 30.0
    #: How often the scheduler's result flusher drains the result stream.
    flush_interval_seconds: float = 0.2
    #: A committed job still unplanned after this long is planned by the scheduler (outbox).
    replan_after_seconds: float = 10.0
    #: A batch a worker let go ('sent') whose outcomes are still not in PostgreSQL this long
    #: after the flusher got past it is reconciled with the carrier: Redis lost them. (A batch
    #: still *claimed* is taken over as soon as its worker's lease lapses: `worker_lease_seconds`.)
    reconcile_after_seconds: float = 5.0
    #: A worker process's lease on the batches it holds: renewed every fifth of this, and a
    #: claim whose lease is this long without renewal is taken over (reconciled with the
    #: carrier, then continued). The holder stops calling the carrier once it could not renew
    #: for this long, so a process that was frozen never sends what was taken from it.
    worker_lease_seconds: float = 5.0
    #: Carrier caps in recipients per second, shared by every worker (0: no cap). Set them to
    #: the carrier contract's; tenants and senders can have lower caps (table rate_limits).
    rate_limit_sms_per_second: float = 0.0
    rate_limit_lms_per_second: float = 0.0
    rate_limit_kakao_per_second: float = 0.0
    #: Under a cap, one request carries at most this fraction of a second's worth of recipients,
    #: so that no 1-second window exceeds the cap by more than that fraction.
    rate_smoothing: float = 0.01
    #: Every cap is aimed at this fraction of itself: the slack absorbs network jitter, which
    #: can bunch requests sent evenly into a busier second at the carrier.
    rate_target_fraction: float = 0.985
    #: A carrier's 429 halves the channel's rate for this long (repeated 429s halve it again).
    rate_backoff_seconds: float = 10.0
    #: A worker sends one batch for at most this long, then hands the rest back to the queue,
    #: so that transactional batches and other jobs get their turn.
    send_slice_seconds: float = 1.0
    #: A rate-limit wait longer than this hands the batch back to the queue for that long.
    rate_wait_handback_seconds: float = 5.0
    #: Batches of one job and channel in the queue or being sent at once (fair share: jobs
    #: take turns rather than one job's whole backlog queueing ahead of another's).
    batch_window: int = 32
    #: A published batch neither claimed nor confirmed within this long is published again.
    republish_after_seconds: float = 300.0
    #: Retries: a transient failure is tried again after base * 2^(attempt-1) seconds (with
    #: jitter, at most the cap), until the channel's deadline after the first attempt passes;
    #: then the recipient is expired.
    retry_base_seconds: float = 10.0
    retry_cap_seconds: float = 1800.0
    retry_deadline_sms_seconds: float = 48 * 3600.0
    retry_deadline_lms_seconds: float = 48 * 3600.0
    retry_deadline_kakao_seconds: float = 48 * 3600.0
    #: Report deadlines: a recipient the carrier accepted but never reported on is asked about
    #: once more this long after its submission, then ends ``unknown`` (reason ``no_report``).
    #: At the providers' own windows, so that a result they may still give is not cut short.
    #: SMS/LMS: 72 hours, the window NHN Cloud keeps a result pending. Its published guide
    #: (TOAST-DOCS/SMS en/api-guide.md) states no number: a message stays "processing"
    #: (msgStatus 2) until a result code comes, and its carriers end one that cannot be delivered
    #: themselves ("2000 Delivery time exceeded", "1019 TTL exceeded": en/error-code.md).
    #: KakaoTalk: 72 hours too, not two days: "3005 Message sent but not confirmed (success
    #: uncertain, stored encrypted on server and can be received within 3 days)"
    #: (TOAST-DOCS/Alimtalk en/error-code.md, Delivery Result Code).
    report_deadline_sms_seconds: float = 72 * 3600.0
    report_deadline_lms_seconds: float = 72 * 3600.0
    report_deadline_kakao_seconds: float = 72 * 3600.0
    #: How often the scheduler looks for recipients past their report deadline.
    report_deadline_poll_seconds: float = 60.0
    #: Unit prices in points, for tenants without their own (``balsong tenant price``).
    price_sms: float = 9.0
    price_lms: float = 30.0
    price_kakao: float = 8.0
    #: A KakaoTalk recipient's SMS/LMS fallback is charged at its own price.
    price_fallback_sms: float = 9.0
    price_fallback_lms: float = 30.0
    #: A reservation (``scheduled_at``) may be at most this far ahead of intake.
    reservation_horizon_days: int = 60
    #: A reservation found due more than this long after its time (the system was down) is not
    #: sent late: it becomes ``missed``.
    reservation_grace_seconds: float = 600.0
    #: How often the reservation pump looks for due reservations.
    reservation_poll_seconds: float = 1.0
    #: Results are kept this long after their job's creation; a month's recipients partition
    #: (and the month's jobs) is dropped once the whole month is older than this.
    retention_days: int = 365
    #: Send statistics (per tenant, hour and channel; no personal data) are kept this long, past
    #: the results they were counted from: two whole years back, for comparing a month with the
    #: same month a year before. The retention duty deletes older hours and days.
    stats_retention_days: int = 1096
    #: How often the retention duty looks for months to drop.
    retention_interval_seconds: float = 3600.0
    #: "system" (wall clock) or "shared" (wall clock plus an offset in Redis that tests move).
    clock: str = "system"
    #: Worker threads per worker process.
    worker_threads: int = 8
    #: Worker processes started by `balsong worker`.
    worker_processes: int = 2
    #: Prometheus samples of each kind of process (api, worker, scheduler) go to files in its own
    #: subdirectory here, emptied when that process group starts (prometheus_client multiprocess).
    metrics_dir: str = "/tmp/balsong-metrics"
    #: Address the worker's and the scheduler's metrics endpoints bind (the API serves /metrics
    #: on its own port). Loopback by default: expose it only to Prometheus.
    metrics_host: str = "127.0.0.1"
    #: Dramatiq's Prometheus middleware port (its conventional 9191) and the scheduler's.
    worker_metrics_port: int = 9191
    scheduler_metrics_port: int = 9192
    callbacks_metrics_port: int = 9193
    #: Log level of every balsong process (logs are JSON lines on stderr).
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"BALSONG_ENV: must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.env == "development":
            for name, value in DEVELOPMENT_SECRETS.items():
                if not getattr(self, name):
                    object.__setattr__(self, name, value)
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(
                f"BALSONG_QUEUE_TYPE: must be one of {', '.join(QUEUE_TYPES)}, not {self.queue_type!r}"
            )
        if self.queue_delivery_limit < 1:
            raise ValueError("BALSONG_QUEUE_DELIVERY_LIMIT: must be at least 1")
        if self.database_pool_size < 0:
            raise ValueError("BALSONG_DATABASE_POOL_SIZE: must be 0 (automatic) or more")

    def missing_secrets(self) -> list[str]:
        """The environment variables of the secrets a production process lacks: not set, or set
        to their public development value. Empty in development."""
        if self.env == "development":
            return []
        return [
            "BALSONG_" + name.upper()
            for name, public in DEVELOPMENT_SECRETS.items()
            if getattr(self, name) in ("", public)
        ]

    def simulator_urls(self) -> list[str]:
        """The environment variables of the carrier URLs that, in production, still point at the
        local simulator: any loopback address (``CARRIER_URLS``). Empty in development."""
        if self.env == "development":
            return []
        return ["BALSONG_" + name.upper() for name in CARRIER_URLS if _is_loopback(getattr(self, name))]

    def check_secrets(self) -> None:
        """Raise MissingSecrets, naming every missing secret and every carrier URL still at the
        simulator, unless this process may start: the api, worker, scheduler and callbacks
        dispatcher call it first thing."""
        secrets, urls = self.missing_secrets(), self.simulator_urls()
        if secrets or urls:
            raise MissingSecrets(secrets, urls)

    @property
    def pool_size(self) -> int:
        """Connections in each of this process's pools."""
        return self.database_pool_size or self.worker_threads + 4

    def channel(self, channel: str) -> ChannelSettings:
        """The settings of ``channel`` (``sms``, ``lms`` or ``kakao``)."""
        if channel == "sms":
            return ChannelSettings(
                self.rate_limit_sms_per_second,
                self.retry_deadline_sms_seconds,
                self.report_deadline_sms_seconds,
            )
        if channel == "lms":
            return ChannelSettings(
                self.rate_limit_lms_per_second,
                self.retry_deadline_lms_seconds,
                self.report_deadline_lms_seconds,
            )
        if channel == "kakao":
            return ChannelSettings(
                self.rate_limit_kakao_per_second,
                self.retry_deadline_kakao_seconds,
                self.report_deadline_kakao_seconds,
            )
        raise ValueError(f"no carrier channel {channel!r}")

    def default_prices(self) -> dict[str, float]:
        """Unit prices in points by price-list key, for tenants without their own."""
        return {
            "sms": self.price_sms,
            "lms": self.price_lms,
            "kakao": self.price_kakao,
            "fallback_sms": self.price_fallback_sms,
            "fallback_lms": self.price_fallback_lms,
        }

    @property
    def link_base_url(self) -> str:
        """Where tracked links' short URLs point (``public_url``, else ``api_url``)."""
        return self.public_url or self.api_url

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from ``BALSONG_<FIELD>``; ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get("BALSONG_" + field.name.upper())
            if raw is None:
                continue
            default: Any = field.default
            try:
                values[field.name] = _parse(raw, default)
            except ValueError as exc:
                raise ValueError(f"BALSONG_{field.name.upper()}: {exc}") from None
        values.update(overrides)
        return cls(**values)


def _is_loopback(url: str) -> bool:
    """Whether ``url``'s host is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse(raw: str, default: Any) -> Any:
    """``raw`` as the type of the field's default (``bool("false")`` would be True)."""
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"expected true or false, not {raw!r}")
    return raw if isinstance(default, str) else type(default)(raw)


@cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()
