"""Redis leases: at most one scheduler replica runs a given duty at a time."""

from __future__ import annotations

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
        """Acquire or renew; True while this owner holds the lease."""
        return bool(self.redis.eval(_ACQUIRE_OR_RENEW, 1, self.key, self.owner, self.ttl_ms))

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.key, self.owner)
