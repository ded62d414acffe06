"""The scheduler loop: periodic duties, each under a Redis lease so replicas never double up.

A duty is a name, an interval and a callable. The callable returns True when it did a full
page of work and wants to run again at once (the flusher under load), else anything falsy.
One failing duty is logged and retried at its next interval; it never stops the others.
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

from engine.keys import Keys
from engine.leases import Lease

log = logging.getLogger(__name__)


@dataclass
class Duty:
    name: str
    interval_seconds: float
    run: Callable[[], object]
    next_due: float = 0.0


class Scheduler:
    def __init__(self, redis: Redis, keys: Keys, duties: Sequence[Duty], owner: str) -> None:
        self.duties = list(duties)
        self.leases = {
            d.name: Lease(redis, keys.lease(d.name), owner, ttl_seconds=max(10.0, d.interval_seconds * 5))
            for d in self.duties
        }

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            wait = self.tick()
            stop.wait(wait)
        for lease in self.leases.values():
            with contextlib.suppress(RedisError):
                lease.release()

    def tick(self) -> float:
        """Run every due duty once; return how long to sleep until the next one is due."""
        now = time.monotonic()
        for duty in self.duties:
            if duty.next_due > now:
                continue
            again = False
            try:
                if self.leases[duty.name].hold():
                    again = bool(duty.run())
            except Exception:
                log.exception("scheduler duty failed", extra={"duty": duty.name})
            duty.next_due = now if again else time.monotonic() + duty.interval_seconds
        return max(0.0, min(d.next_due for d in self.duties) - time.monotonic())
