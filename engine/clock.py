"""The one clock every deadline reads; tests replace it to move time without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Protocol

from redis import Redis

from carriers import nhn_time


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


#: Korea Standard Time, in which operators read every timestamp: the carriers' own clock (one
#: definition, `carriers.nhn_time`; UTC+9 all year).
KST = nhn_time.KST


class SharedOffsetClock:
    """Wall-clock time plus an offset kept in Redis, read by every process: lets a test move
    the whole deployment (API, workers, scheduler) days ahead at once. Not for production."""

    #: Seconds an offset read is reused (``now`` is called on hot paths).
    CACHE_SECONDS = 0.2

    def __init__(self, redis: Redis, key: str) -> None:
        self.redis = redis
        self.key = key
        self._offset = 0.0
        self._read_at = float("-inf")
        self._lock = Lock()

    def now(self) -> datetime:
        mono = time.monotonic()
        with self._lock:
            if mono - self._read_at > self.CACHE_SECONDS:
                raw = self.redis.get(self.key)
                self._offset = float(raw) if raw else 0.0
                self._read_at = mono
            offset = self._offset
        return datetime.now(UTC) + timedelta(seconds=offset)

    def advance(self, delta: timedelta) -> None:
        """Move every process's clock forward by ``delta``."""
        self.redis.incrbyfloat(self.key, delta.total_seconds())
        with self._lock:
            self._read_at = float("-inf")
