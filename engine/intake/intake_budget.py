"""Intake budget: how much job-request intake may be in flight at once, so that large bodies
cannot exhaust the API's memory.

Two budgets, each of request bytes in flight and of concurrent intakes:

- **per tenant**, shared by every API process: a Redis hash per tenant of *leases*, one per
  intake in progress (``lease id -> "expiry ms:bytes"``), taken and checked in one Lua script.
  A lease expires ``ttl`` after its last renewal (the API renews it while the intake runs), so
  an API process killed mid-intake frees its tenant's budget within ``ttl``, never leaks it;
  expired leases are dropped whenever the hash is next touched. Time is Redis's own clock,
  the one clock every API process shares. If Redis is unreachable the intake goes on (logged):
  the per-process budget still bounds memory.
- **per API process** (`ProcessBudget`): plain counters, for many tenants together.

An intake alone in its budget is always admitted, whatever its size (up to the request size
limit): the byte budget limits what runs *together*, never how large one job may be.

A request with a Content-Length reserves that many bytes up front; a chunked one reserves
`FIRST_CHUNKED_BYTES`, then twice what it holds whenever its bytes pass that (a handful of
Redis calls for the largest body), and is refused when a step does not fit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from engine.errors import IntakeLimited
from engine.keys import Keys

log = logging.getLogger(__name__)

#: A chunked body (no Content-Length) first reserves this many bytes of budget.
FIRST_CHUNKED_BYTES = 256 * 1024
#: Retry-After of a refusal, in seconds: intakes in flight take seconds, not minutes.
RETRY_AFTER_SECONDS = 2

# Take (or grow) lease ARGV[1] to ARGV[2] bytes if the tenant's other live leases leave room.
# Returns {1} or {0, what was exceeded}.
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl_ms = tonumber(ARGV[3])
local count, total = 0, 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local expiry, bytes = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if tonumber(expiry) <= now_ms then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] ~= ARGV[1] then
    count = count + 1
    total = total + tonumber(bytes)
  end
end
if count > 0 then
  local max_bytes, max_concurrent = tonumber(ARGV[4]), tonumber(ARGV[5])
  if max_concurrent > 0 and count + 1 > max_concurrent then return {0, 'concurrent'} end
  if max_bytes > 0 and total + tonumber(ARGV[2]) > max_bytes then return {0, 'bytes'} end
end
redis.call('HSET', KEYS[1], ARGV[1], (now_ms + ttl_ms) .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {1}
"""

# Extend lease ARGV[1] by ARGV[2] ms if it is still held; 1 if it was.
_RENEW = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local bytes = string.match(value, ':(%d+)$')
redis.call('HSET', KEYS[1], ARGV[1], (now_ms + tonumber(ARGV[2])) .. ':' .. bytes)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    #: Request bytes in flight at once (0: no limit).
    max_bytes_in_flight: int
    #: Intakes at once (0: no limit).
    max_concurrent: int


def _refusal(scope: str, what: str, limits: BudgetLimits) -> IntakeLimited:
    whose = "for this tenant" if scope == "tenant" else "on this server"
    if what == "concurrent":
        return IntakeLimited(
            f"{scope}_intake_concurrency",
            f"more than {limits.max_concurrent} job submissions in progress at once"
            f" {whose}; retry after the others finish",
            retry_after_seconds=RETRY_AFTER_SECONDS,
            limit=f"intake_max_concurrent_per_{scope}",
        )
    return IntakeLimited(
        f"{scope}_intake_bytes",
        f"more than {limits.max_bytes_in_flight:,} bytes of job requests in flight at once"
        f"{' for this tenant' if scope == 'tenant' else ' on this server'}; retry after the others finish",
        retry_after_seconds=RETRY_AFTER_SECONDS,
        limit=f"intake_max_bytes_in_flight_per_{scope}",
    )


class TenantLease:
    """One intake's share of its tenant's budget, in Redis (see the module docstring).

    Parameters:
      ttl_seconds: the lease lapses this long after it was last taken, grown or renewed.
    """

    def __init__(
        self, redis: Redis, keys: Keys, tenant_id: int, limits: BudgetLimits, ttl_seconds: float
    ) -> None:
        self.redis = redis
        self.key = keys.intake_budget(tenant_id)
        self.limits = limits
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.lease_id = uuid.uuid4().hex
        self.bytes = 0

    def take(self, total_bytes: int) -> None:
        """Hold ``total_bytes`` (the first call takes the lease, later ones grow it).

        Raises:
          IntakeLimited: the tenant's other intakes leave no room for this one.
        """
        try:
            answer = self.redis.eval(
                _TAKE,
                1,
                self.key,
                self.lease_id,
                total_bytes,
                self.ttl_ms,
                self.limits.max_bytes_in_flight,
                self.limits.max_concurrent,
            )
        except RedisError as exc:
            log.warning("intake budget not checked: Redis unavailable (%s)", exc)
            return
        if int(answer[0]) != 1:
            what = answer[1].decode() if isinstance(answer[1], bytes) else str(answer[1])
            raise _refusal("tenant", what, self.limits)
        self.bytes = total_bytes

    def renew(self) -> None:
        try:
            self.redis.eval(_RENEW, 1, self.key, self.lease_id, self.ttl_ms)
        except RedisError as exc:
            log.warning("intake lease not renewed: Redis unavailable (%s)", exc)

    def release(self) -> None:
        try:
            self.redis.hdel(self.key, self.lease_id)
        except RedisError as exc:
            log.warning("intake lease not released (it lapses by itself): %s", exc)


class ProcessBudget:
    """This API process's budget, for every tenant together; used from its event loop only."""

    def __init__(self, limits: BudgetLimits) -> None:
        self.limits = limits
        self.bytes_in_flight = 0
        self.concurrent = 0

    def enter(self, reserved_bytes: int) -> None:
        """Count one more intake of ``reserved_bytes``.

        Raises:
          IntakeLimited: this process is at its budget.
        """
        if self.concurrent:
            if self.limits.max_concurrent and self.concurrent + 1 > self.limits.max_concurrent:
                raise _refusal("process", "concurrent", self.limits)
            self._check_bytes(reserved_bytes)
        self.concurrent += 1
        self.bytes_in_flight += reserved_bytes

    def grow(self, more_bytes: int) -> None:
        """Reserve ``more_bytes`` more for an intake already counted."""
        if self.concurrent > 1:
            self._check_bytes(more_bytes)
        self.bytes_in_flight += more_bytes

    def leave(self, reserved_bytes: int) -> None:
        self.concurrent -= 1
        self.bytes_in_flight -= reserved_bytes

    def _check_bytes(self, more: int) -> None:
        if self.limits.max_bytes_in_flight and self.bytes_in_flight + more > self.limits.max_bytes_in_flight:
            raise _refusal("process", "bytes", self.limits)
