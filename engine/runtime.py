"""The shared resources of one balsong process, built once on first use (after any fork).

Each process (API, worker, scheduler) holds one connection pool, one Redis client and one carrier
adapter per provider; they are thread-safe and shared by its threads. Nothing is built at import
time: a forked worker process builds its own on its first message.

Building it also tunes the process's garbage collector for bulk work (`tune_garbage_collector`).
Python collects its youngest generation every 700 new container objects, and the whole heap
each time the survivors have grown it by a quarter. A 200,000-recipient request decodes into a
million dicts, lists and strings; a report poll reads tens of thousands of rows a second: the
default spent as long in the collector as in the work (intake's classification of 200,000
recipients: 1.15 s at 700, 0.73 s at 10,000, 0.64 s with the collector off). balsong's own data
holds few reference cycles, so collecting the young generation less often costs little memory.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from psycopg_pool import ConnectionPool
from redis import Redis

from carriers.base import Carrier

if TYPE_CHECKING:
    from carriers.nhn_alimtalk import NhnAlimtalkCarrier
from engine.clock import Clock, SharedOffsetClock, SystemClock
from engine.config import Settings, get_settings
from engine.cursors import CursorCodec
from engine.db import make_pool
from engine.dispatch.rate_policy import RatePolicy
from engine.dispatch.ratelimit import RATE_HOLD_AFTER_LOSS_SECONDS, RateLimiter
from engine.dispatch.sending import BatchSender
from engine.dispatch.worker_leases import WorkerLease
from engine.keys import Keys
from engine.lifecycle.results import ResultRecorder
from engine.lifecycle.retries import RetryLedger
from engine.redis_client import make_redis


@dataclass
class Runtime:
    settings: Settings
    pool_size: int = 10

    @cached_property
    def clock(self) -> Clock:
        if self.settings.clock == "shared":
            return SharedOffsetClock(self.redis, self.keys.clock_offset)
        return SystemClock()

    @cached_property
    def pool(self) -> ConnectionPool:
        return make_pool(self.settings, max_size=self.pool_size)

    @cached_property
    def read_pool(self) -> ConnectionPool:
        """Connections for read-only queries that may lag the primary: the replica of
        ``database_read_url`` if there is one, else the primary's pool."""
        if not self.settings.database_read_url:
            return self.pool
        return make_pool(
            self.settings, max_size=self.pool_size, name="balsong-read", url=self.settings.database_read_url
        )

    @cached_property
    def redis(self) -> Redis:
        return make_redis(self.settings.redis_url)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)

    @cached_property
    def cursors(self) -> CursorCodec:
        return CursorCodec(self.settings.cursor_secret)

    @cached_property
    def sms_carrier(self) -> Carrier:
        from carriers.nhn_sms import NhnSmsCarrier

        s = self.settings
        return NhnSmsCarrier(s.sms_api_url, s.sms_app_key, s.sms_secret_key, s.carrier_timeout_seconds)

    @cached_property
    def kakao_carrier(self) -> NhnAlimtalkCarrier:
        from carriers.nhn_alimtalk import NhnAlimtalkCarrier

        s = self.settings
        return NhnAlimtalkCarrier(
            s.kakao_api_url,
            s.kakao_app_key,
            s.kakao_secret_key,
            s.kakao_sender_key,
            s.carrier_timeout_seconds,
        )

    @cached_property
    def recorder(self) -> ResultRecorder:
        return ResultRecorder(self.redis, self.keys)

    @cached_property
    def retry_ledger(self) -> RetryLedger:
        return RetryLedger(self.redis, self.keys)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        s = self.settings
        return RateLimiter(
            self.redis,
            self.keys,
            backoff_seconds=s.rate_backoff_seconds,
            hold_after_loss_seconds=RATE_HOLD_AFTER_LOSS_SECONDS,
        )

    @cached_property
    def rate_policy(self) -> RatePolicy:
        return RatePolicy(self.settings, self.pool, self.rate_limiter)

    @cached_property
    def batch_sender(self) -> BatchSender:
        from metrics import CARRIER_THROTTLED

        return BatchSender(
            self.carrier_for,
            self.recorder,
            self.clock,
            self.rate_policy,
            on_throttled=lambda channel: CARRIER_THROTTLED.labels(channel).inc(),
            holds_lease=self._holds_lease,
        )

    def _holds_lease(self, lease_id: str) -> bool:
        """Whether a batch claimed under ``lease_id`` is still this process's to send. A process
        that never took a lease (a test driving the claim by hand) is not fenced."""
        lease = self.__dict__.get("lease")
        return lease is None or lease.holds(lease_id)

    @cached_property
    def lease(self) -> WorkerLease:
        """This process's worker lease: batches are claimed under it (worker processes only)."""
        return WorkerLease(self.pool.connection, self.settings.worker_lease_seconds)

    @cached_property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def carrier_for(self, channel: str) -> Carrier:
        """The adapter that sends ``channel`` (SMS and LMS both go through the SMS API)."""
        return self.kakao_carrier if channel == "kakao" else self.sms_carrier

    def close(self) -> None:
        if self.__dict__.get("read_pool") is self.__dict__.get("pool"):
            self.__dict__.pop("read_pool", None)  # the primary's pool: closed once, below
        lease = self.__dict__.pop("lease", None)
        if lease is not None:
            lease.stop()
        for name in ("read_pool", "pool", "redis", "sms_carrier", "kakao_carrier"):
            resource = self.__dict__.pop(name, None)
            if resource is not None:
                resource.close()


#: New container objects between collections of the youngest generation (Python's default: 700).
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Collect the young generation every `YOUNG_GENERATION_THRESHOLD` objects (never more often
    than the process was already set to)."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_GENERATION_THRESHOLD), middle, old)


_lock = threading.Lock()
_runtime: Runtime | None = None
_pid: int | None = None


def get_runtime() -> Runtime:
    """This process's runtime; a forked child builds a fresh one rather than share sockets."""
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            tune_garbage_collector()
            settings = get_settings()
            _runtime = Runtime(settings, pool_size=settings.pool_size)
            _pid = os.getpid()
        return _runtime
