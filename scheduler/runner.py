"""The scheduler: periodic duties, each under a Redis lease so replicas never double up.

A duty is a name, an interval and a callable. Intervals run from start to start: a run that took
longer than its interval (a report poll that read a burst) is followed at once, not after another
whole interval. The callable returns True when it did a full page of work and wants to run again
at once (the flusher under load), else anything falsy. Each duty
runs in its own thread, so a slow one (a long report poll) never delays another (the flusher).
A failing duty is logged and retried at its next interval; it never stops the others.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from engine.dispatch.leases import Lease
from engine.keys import Keys

log = logging.getLogger(__name__)


@dataclass
class Duty:
    name: str
    interval_seconds: float
    run: Callable[[], object]


class Scheduler:
    def __init__(self, redis: Redis, keys: Keys, duties: Sequence[Duty], owner: str) -> None:
        self.duties = list(duties)
        self.leases = {
            d.name: Lease(redis, keys.lease(d.name), owner, ttl_seconds=max(10.0, d.interval_seconds * 5))
            for d in self.duties
        }

    def run_forever(self, stop: threading.Event) -> None:
        """Run every duty in its own thread until ``stop`` is set; then release the leases."""
        threads = [
            threading.Thread(target=self._loop, args=(duty, stop), name=f"duty:{duty.name}", daemon=True)
            for duty in self.duties
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for lease in self.leases.values():
            with contextlib.suppress(RedisError):
                lease.release()

    def run_once(self, duty: Duty) -> bool:
        """Run ``duty`` once if this replica holds (or takes) its lease; True to run it again at once."""
        try:
            return self.leases[duty.name].hold() and bool(duty.run())
        except Exception:
            log.exception("scheduler duty failed", extra={"duty": duty.name})
            return False

    def _loop(self, duty: Duty, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            if not self.run_once(duty):
                stop.wait(max(0.0, duty.interval_seconds - (time.monotonic() - started)))
