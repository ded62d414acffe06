"""Redis leases: at most one scheduler replica runs a given duty at a time."""

from __future__ import annotations

import os
import socket

from redis import Redis

# Take the lease if free, or extend it if we hold it; 1 if we hold it afterwards.
_ACQUIRE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: Redis, key: str, owner: str, ttl_seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = int(ttl_seconds * 1000)

    def hold(self) -> bool:
        """Acquire or renew; True while this owner holds the lease. A lease whose holder was a
        process of this machine that is gone (a scheduler killed and started again) is taken at
        once, not after its time to live."""
        if self._acquire():
            return True
        raw: bytes | str | None = self.redis.get(self.key)  # type: ignore[assignment]
        holder = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if holder is not None and dead_here(holder):
            self.redis.eval(_RELEASE, 1, self.key, holder)
            return self._acquire()
        return False

    def _acquire(self) -> bool:
        return bool(self.redis.eval(_ACQUIRE_OR_RENEW, 1, self.key, self.owner, self.ttl_ms))

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.key, self.owner)


def dead_here(owner: str) -> bool:
    """True if ``owner`` (``host:pid``, as `engine.runtime.Runtime.worker_id` names a process)
    was a process of this machine that no longer runs. Anything else (another host, a pid that
    runs, perhaps reused, a name of another shape) is presumed alive: its lease lapses on time."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
