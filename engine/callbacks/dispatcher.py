"""The callback dispatcher: delivers the outbox's events to each endpoint, in order, at least once.

An endpoint is a (tenant, URL) pair: two tenants naming the same URL are two endpoints, each
with its own requests, signed with its own secret, so no tenant's events ever ride in another's.

Each round (`Dispatcher.run_once`) finds the endpoints with events due (1,000 waiting, or the
oldest waiting `Settings.callback_batch_seconds`) and not backing off, and hands each to a
thread of a pool of `Settings.callback_concurrency`. While this machine's CPUs are contended
(`engine.callbacks.cpu_pressure`: sending keeps them busy) events wait instead, up to
`Settings.callback_busy_hold_seconds`: delivery then takes CPU the send no longer needs, and on
a machine of 2 cores costs the send rate ~5 % rather than ~20 % (bench/callbacks.py).

An endpoint has at most one request in flight, and its rows go in ``id`` order, oldest first:
per-endpoint order, so a recipient's events never arrive out of order. A slow endpoint holds one
thread for at most `Settings.callback_timeout_seconds`, then backs off; the others go on.

What an answer does:
- 2xx: the events are ``delivered``;
- 410 Gone: the endpoint is disabled and its waiting events ``failed`` (setting the URL again,
  or replaying a job, enables it again: `engine.callbacks.delivery_state`);
- anything else, or no answer: the endpoint backs off (1 s doubling to
  `Settings.callback_max_backoff_seconds`, with jitter) and the same events go again, until they
  have waited `Settings.callback_retry_hours`; then they are given up (``failed``, with the last
  error).

Every request is checked again against the URL rules first (`engine.callbacks.urls`: a name may
resolve elsewhere by now) and never follows a redirect. The outcome of each request is written
to PostgreSQL before the next: a dispatcher killed mid-request leaves its events ``pending``, and
the next one (this process restarted, or a standby) sends them again; receivers drop what they
have seen by ``event_id``.

One dispatcher delivers at a time: it holds a lease in PostgreSQL (`DispatcherLease`); a standby
takes over within seconds of its death.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from engine.callbacks import payloads
from engine.callbacks.cpu_pressure import CpuPressure
from engine.callbacks.payloads import OutboxRow
from engine.callbacks.settings import secrets_in_force
from engine.callbacks.signing import HEADER, signature_header
from engine.callbacks.urls import CallbackUrlRefused, Resolver, check_callback_url, system_resolver
from engine.clock import Clock
from engine.config import Settings
from metrics import CALLBACK_EVENTS, CALLBACK_LAG_SECONDS, CALLBACK_REQUESTS
from metrics.histograms import observe_n

log = logging.getLogger(__name__)

#: Most events in one request.
MAX_EVENTS = 1000
#: More events than can ever wait (a request is due by age alone).
NEVER_FULL = 2**62
#: First back-off after a failure; doubled after each further one.
FIRST_BACKOFF = timedelta(seconds=1)
#: Longest error text kept (a receiver's answer may be long).
ERROR_TEXT_MAX = 300
USER_AGENT = "balsong-callbacks/1"
#: Seconds a tenant's signing secrets are kept before they are read again.
SECRETS_CACHE_SECONDS = 10.0
#: Seconds an endpoint rests after its delivery failed unexpectedly (not an answer of its own).
UNEXPECTED_REST_SECONDS = 5.0


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    tenant_id: int
    url: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one request did (returned for tests and logs)."""

    endpoint: Endpoint
    events: int
    #: delivered, failed, gone, refused, or given_up / disabled (events failed without a request).
    result: str
    error: str | None = None


# Endpoints with events due: 1,000 waiting, or the oldest waiting long enough; not backing off.
# A disabled endpoint is due at once (its waiting events are failed).
_DUE = """
    SELECT e.tenant_id, e.url
    FROM (SELECT tenant_id, url, sum(event_count) AS events, min(created_at) AS oldest
          FROM callback_events WHERE state = 'pending' GROUP BY tenant_id, url) e
    LEFT JOIN callback_endpoints p USING (tenant_id, url)
    WHERE p.disabled_at IS NOT NULL
       OR ((p.next_attempt_at IS NULL OR p.next_attempt_at <= %(now)s)
           AND (e.events >= %(full)s OR e.oldest <= %(ripe)s))
    ORDER BY e.oldest
"""

# The endpoint's oldest waiting rows that fit in one request (at least one). Rows are chosen by
# their counts first: their arrays are read only for the rows sent (a backlog of a dead endpoint
# may hold thousands of rows of 1,000 events each).
_HEAD = f"""
    WITH head AS (
        SELECT id, sum(event_count) OVER (ORDER BY id) AS upto, row_number() OVER (ORDER BY id) AS n
        FROM (SELECT id, event_count FROM callback_events
              WHERE tenant_id = %s AND url = %s AND state = 'pending'
              ORDER BY id LIMIT {MAX_EVENTS}) AS waiting
    )
    SELECT {payloads.COLUMNS} FROM callback_events
    WHERE id IN (SELECT id FROM head WHERE upto <= {MAX_EVENTS} OR n = 1)
    ORDER BY id
"""


def backoff(failures: int, longest: timedelta, rand: random.Random | None = None) -> timedelta:
    """How long an endpoint rests after its ``failures``-th failure in a row: 1 s doubling up to
    ``longest``, then scaled by a random 50-100 % so that endpoints failing together (a
    receiver's outage) do not come back in step."""
    base = min(FIRST_BACKOFF * 2 ** min(max(failures - 1, 0), 30), longest)
    return base * (0.5 + 0.5 * (rand or random).random())


def _short(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"


class Dispatcher:
    def __init__(
        self,
        pool: ConnectionPool,
        settings: Settings,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        resolve: Resolver = system_resolver,
        cpu: CpuPressure | None = None,
    ) -> None:
        self.pool = pool
        self.cpu = cpu or CpuPressure()
        self._holding = False
        self.settings = settings
        self.clock = clock
        self.resolve = resolve
        self.client = client or httpx.Client(
            timeout=settings.callback_timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            # No Nagle: a request's body would otherwise wait for the receiver's delayed ACK of
            # its headers (up to 40 ms a request, most of a request's time on a fast receiver).
            transport=httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=settings.callback_concurrency * 2),
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            ),
        )
        self.executor = ThreadPoolExecutor(settings.callback_concurrency, thread_name_prefix="callback")
        self._busy: set[Endpoint] = set()
        self._resting: dict[Endpoint, float] = {}
        self._secret_cache: dict[int, tuple[float, list[str]]] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._stopping.set()
        self.executor.shutdown(wait=True)
        self.client.close()

    # -- the rounds ---------------------------------------------------------------------------

    def due_rule(self, now: datetime) -> tuple[int, datetime]:
        """(events waiting that make a request due, time before which waiting makes it due).

        Normally a full request goes at once and any waiting event after
        `Settings.callback_batch_seconds`. While the machine's CPUs are contended (sending keeps
        them busy) events wait up to `Settings.callback_busy_hold_seconds` instead, full or not:
        their delivery then takes CPU the send no longer needs."""
        batch = timedelta(seconds=self.settings.callback_batch_seconds)
        hold = timedelta(seconds=self.settings.callback_busy_hold_seconds)
        held = hold > batch and self.cpu.contended()
        if held != self._holding:
            self._holding = held
            # Debug: under a fluctuating load it may switch every second.
            log.debug("callbacks held while the CPUs are busy" if held else "callbacks no longer held")
        if held:
            return NEVER_FULL, now - hold
        return MAX_EVENTS, now - batch

    def due_endpoints(self) -> list[Endpoint]:
        now = self.clock.now()
        full, ripe = self.due_rule(now)
        with self.pool.connection() as conn:
            rows = conn.execute(_DUE, {"now": now, "full": full, "ripe": ripe}).fetchall()
        return [Endpoint(int(tenant_id), url) for tenant_id, url in rows]

    def run_once(self) -> int:
        """Start a delivery for each due endpoint not already being served; how many started."""
        started = 0
        for endpoint in self.due_endpoints():
            with self._lock:
                if endpoint in self._busy or self._resting.get(endpoint, 0.0) > time.monotonic():
                    continue
                self._resting.pop(endpoint, None)
                self._busy.add(endpoint)
            self.executor.submit(self._serve, endpoint)
            started += 1
        return started

    def _serve(self, endpoint: Endpoint) -> None:
        """Deliver to ``endpoint`` for as long as it accepts and has a request's worth due: one
        request per round would cap an endpoint at 1,000 events per round."""
        try:
            while not self._stopping.is_set():
                attempt = self.deliver_next(endpoint)
                if attempt is None or attempt.result != "delivered" or not self._still_due(endpoint):
                    break
        except Exception:
            # PostgreSQL away, or a bug: the endpoint rests a while rather than failing every round.
            log.exception("callback delivery failed", extra={"tenant_id": endpoint.tenant_id})
            with self._lock:
                self._resting[endpoint] = time.monotonic() + UNEXPECTED_REST_SECONDS
        finally:
            with self._lock:
                self._busy.discard(endpoint)

    def _still_due(self, endpoint: Endpoint) -> bool:
        now = self.clock.now()
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(event_count), 0), min(created_at) FROM callback_events"
                " WHERE tenant_id = %s AND url = %s AND state = 'pending'",
                (endpoint.tenant_id, endpoint.url),
            ).fetchone()
        events, oldest = row if row else (0, None)
        full, ripe = self.due_rule(now)
        return bool(events) and (int(events) >= full or (oldest is not None and oldest <= ripe))

    def drain(self, timeout: float = 30.0) -> None:
        """Deliver until nothing is due (tests, the benchmark): rounds run in this thread."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            due = self.due_endpoints()
            if not due:
                return
            for endpoint in due:
                self.deliver_next(endpoint)

    # -- one request --------------------------------------------------------------------------

    def deliver_next(self, endpoint: Endpoint) -> Attempt | None:
        """Send ``endpoint``'s oldest waiting events (up to `MAX_EVENTS`) and record what happened."""
        now = self.clock.now()
        with self.pool.connection() as conn:
            state = conn.execute(
                "SELECT disabled_at, failures FROM callback_endpoints WHERE tenant_id = %s AND url = %s",
                (endpoint.tenant_id, endpoint.url),
            ).fetchone()
            disabled_at, failures = state if state else (None, 0)
            if disabled_at is not None:
                count = self._fail_waiting(
                    conn, endpoint, "the endpoint answered 410 Gone: callbacks to it are off"
                )
                return Attempt(endpoint, count, "disabled")
            given_up = self._give_up_stale(conn, endpoint, now)
            rows = self._head(conn, endpoint)
            if not rows:
                return Attempt(endpoint, given_up, "given_up") if given_up else None
            try:
                check_callback_url(
                    endpoint.url,
                    allow_http=self.settings.callback_allow_http,
                    own_api_url=self.settings.api_url,
                    resolve=self.resolve,
                )
            except CallbackUrlRefused as exc:
                return self._record_failure(
                    conn, endpoint, rows, failures, f"URL refused: {exc}", "refused", now
                )
            body, times = payloads.build_body(conn, rows)
            signature = signature_header(self._secrets(conn, endpoint.tenant_id, now), int(time.time()), body)
        # No connection is held while the receiver takes its time.
        try:
            answer = self.client.post(endpoint.url, content=body, headers={HEADER: signature})
            status, error = answer.status_code, None
            if not 200 <= status < 300:
                error = (
                    f"HTTP {status}: {_short(answer.text.strip())}"
                    if answer.text.strip()
                    else f"HTTP {status}"
                )
        except httpx.HTTPError as exc:
            status, error = 0, _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        with self.pool.connection() as conn:
            if 200 <= status < 300:
                return self._record_success(conn, endpoint, rows, times)
            if status == 410:
                return self._disable(conn, endpoint, rows, error or "HTTP 410")
            return self._record_failure(conn, endpoint, rows, failures, error or "no answer", "failed", now)

    def _secrets(self, conn: psycopg.Connection[Any], tenant_id: int, now: datetime) -> list[str]:
        """The tenant's secrets in force, read again after `SECRETS_CACHE_SECONDS` (a rotation's
        old secret stays valid for a day, so a request signed with it alone meanwhile verifies)."""
        cached = self._secret_cache.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < SECRETS_CACHE_SECONDS:
            return cached[1]
        found = secrets_in_force(conn, tenant_id, now)
        self._secret_cache[tenant_id] = (time.monotonic(), found)
        return found

    def _head(self, conn: psycopg.Connection[Any], endpoint: Endpoint) -> list[OutboxRow]:
        # Binary: a row's arrays hold 1,000 events; as text, PostgreSQL would format each time
        # and psycopg parse it again.
        cursor = conn.cursor(binary=True)
        return [OutboxRow(*record) for record in cursor.execute(_HEAD, (endpoint.tenant_id, endpoint.url))]

    def _give_up_stale(self, conn: psycopg.Connection[Any], endpoint: Endpoint, now: datetime) -> int:
        """Fail the endpoint's events that were tried and have waited past the retry window."""
        cutoff = now - timedelta(hours=self.settings.callback_retry_hours)
        row = conn.execute(
            """
            WITH gone AS (
                UPDATE callback_events
                SET state = 'failed', finished_at = %s,
                    last_error = 'not delivered within ' || %s::text || ' h; last: '
                                 || coalesce(last_error, 'no answer')
                WHERE tenant_id = %s AND url = %s AND state = 'pending' AND tries > 0 AND created_at < %s
                RETURNING event_count)
            SELECT coalesce(sum(event_count), 0) FROM gone
            """,
            (now, f"{self.settings.callback_retry_hours:g}", endpoint.tenant_id, endpoint.url, cutoff),
        ).fetchone()
        count = int(row[0]) if row else 0
        if count:
            CALLBACK_EVENTS.labels("failed").inc(count)
            log.warning("callback events given up", extra={"tenant_id": endpoint.tenant_id, "events": count})
        return count

    def _fail_waiting(self, conn: psycopg.Connection[Any], endpoint: Endpoint, error: str) -> int:
        row = conn.execute(
            """
            WITH gone AS (
                UPDATE callback_events SET state = 'failed', finished_at = now(), last_error = %s
                WHERE tenant_id = %s AND url = %s AND state = 'pending' RETURNING event_count)
            SELECT coalesce(sum(event_count), 0) FROM gone
            """,
            (error, endpoint.tenant_id, endpoint.url),
        ).fetchone()
        count = int(row[0]) if row else 0
        CALLBACK_EVENTS.labels("failed").inc(count)
        return count

    def _record_success(
        self,
        conn: psycopg.Connection[Any],
        endpoint: Endpoint,
        rows: list[OutboxRow],
        times: payloads.EventTimes,
    ) -> Attempt:
        now = self.clock.now()
        with conn.transaction():
            conn.execute(
                "UPDATE callback_events SET state = 'delivered', tries = tries + 1, finished_at = %s,"
                " last_error = NULL WHERE id = ANY(%s) AND state = 'pending'",
                (now, [r.id for r in rows]),
            )
            conn.execute(
                """
                INSERT INTO callback_endpoints (tenant_id, url, failures, last_attempt_at, last_success_at)
                VALUES (%s, %s, 0, %s, %s)
                ON CONFLICT (tenant_id, url) DO UPDATE SET failures = 0, next_attempt_at = NULL,
                    last_attempt_at = excluded.last_attempt_at, last_success_at = excluded.last_success_at,
                    last_error = NULL
                """,
                (endpoint.tenant_id, endpoint.url, now, now),
            )
        events = sum(r.event_count for r in rows)
        CALLBACK_REQUESTS.labels("delivered").inc()
        CALLBACK_EVENTS.labels("delivered").inc(events)
        for lag, count in times.lags(now).items():
            observe_n(CALLBACK_LAG_SECONDS, lag, count)
        return Attempt(endpoint, events, "delivered")

    def _record_failure(
        self,
        conn: psycopg.Connection[Any],
        endpoint: Endpoint,
        rows: list[OutboxRow],
        failures: int,
        error: str,
        result: str,
        now: datetime,
    ) -> Attempt:
        rest = backoff(failures + 1, timedelta(seconds=self.settings.callback_max_backoff_seconds))
        with conn.transaction():
            conn.execute(
                "UPDATE callback_events SET tries = tries + 1, last_error = %s WHERE id = ANY(%s)",
                (error, [r.id for r in rows]),
            )
            conn.execute(
                """
                INSERT INTO callback_endpoints
                    (tenant_id, url, failures, next_attempt_at, last_attempt_at, last_error)
                VALUES (%(tenant)s, %(url)s, 1, %(next)s, %(now)s, %(error)s)
                ON CONFLICT (tenant_id, url) DO UPDATE SET failures = callback_endpoints.failures + 1,
                    next_attempt_at = excluded.next_attempt_at, last_attempt_at = excluded.last_attempt_at,
                    last_error = excluded.last_error
                """,
                {
                    "tenant": endpoint.tenant_id,
                    "url": endpoint.url,
                    "next": now + rest,
                    "now": now,
                    "error": error,
                },
            )
        CALLBACK_REQUESTS.labels(result).inc()
        log.info(
            "callback request failed; backing off",
            extra={
                "tenant_id": endpoint.tenant_id,
                "error": error,
                "backoff_seconds": round(rest.total_seconds(), 1),
            },
        )
        return Attempt(endpoint, sum(r.event_count for r in rows), result, error)

    def _disable(
        self, conn: psycopg.Connection[Any], endpoint: Endpoint, rows: list[OutboxRow], error: str
    ) -> Attempt:
        now = self.clock.now()
        with conn.transaction():
            conn.execute(
                "UPDATE callback_events SET tries = tries + 1 WHERE id = ANY(%s)", ([r.id for r in rows],)
            )
            conn.execute(
                """
                INSERT INTO callback_endpoints (tenant_id, url, disabled_at, last_attempt_at, last_error)
                VALUES (%(tenant)s, %(url)s, %(now)s, %(now)s, %(error)s)
                ON CONFLICT (tenant_id, url) DO UPDATE SET disabled_at = excluded.disabled_at,
                    last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error
                """,
                {"tenant": endpoint.tenant_id, "url": endpoint.url, "now": now, "error": error},
            )
            count = self._fail_waiting(
                conn, endpoint, "the endpoint answered 410 Gone: callbacks to it are off"
            )
        CALLBACK_REQUESTS.labels("gone").inc()
        log.warning("callback endpoint answered 410 Gone; disabled", extra={"tenant_id": endpoint.tenant_id})
        return Attempt(endpoint, count, "gone", error)


class DispatcherLease:
    """The lease that makes one dispatcher process the active one: a row in PostgreSQL, renewed
    every `RENEW_SECONDS`, taken over by a standby once it has lapsed (`LEASE_SECONDS` after a
    holder died). A row, not an advisory lock, so it holds through PgBouncer's transaction mode."""

    LEASE_SECONDS = 5.0
    RENEW_SECONDS = 1.0

    def __init__(self, pool: ConnectionPool, holder: str) -> None:
        self.pool = pool
        self.holder = holder
        self._renewed_at = float("-inf")
        self._held = False

    def held(self) -> bool:
        """True while this process holds the lease (taking it if it has lapsed)."""
        if self._held and time.monotonic() - self._renewed_at < self.RENEW_SECONDS:
            return True
        started = time.monotonic()
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    """
                    INSERT INTO callback_dispatcher_lease (id, holder, until)
                    VALUES (1, %(holder)s, now() + make_interval(secs => %(ttl)s))
                    ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until
                    WHERE callback_dispatcher_lease.until < now()
                       OR callback_dispatcher_lease.holder = excluded.holder
                    RETURNING holder
                    """,
                    {"holder": self.holder, "ttl": self.LEASE_SECONDS},
                ).fetchone()
        except psycopg.Error:
            log.warning("callback dispatcher lease not renewed (PostgreSQL unreachable)")
            row = None
        was_held, self._held = self._held, row is not None
        if self._held:
            self._renewed_at = started
            if not was_held:
                log.info("callback dispatcher active")
        return self._held

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            with self.pool.connection() as conn:
                conn.execute("DELETE FROM callback_dispatcher_lease WHERE holder = %s", (self.holder,))
        except psycopg.Error:
            pass


def run_forever(
    dispatcher: Dispatcher, lease: DispatcherLease, stop: threading.Event, tick: float = 0.1
) -> None:
    """Deliver while this process holds the lease, until ``stop`` is set."""
    try:
        while not stop.is_set():
            if not lease.held():
                stop.wait(1.0)
                continue
            try:
                dispatcher.run_once()
            except Exception:
                log.exception("callback round failed")
                stop.wait(1.0)
            stop.wait(tick)
    finally:
        dispatcher.close()
        lease.release()
