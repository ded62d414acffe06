"""Per-channel rate limits shared by every worker: GCRA in one atomic Redis script.

Each limit is a bucket holding its *theoretical arrival time* (TAT): the moment from which the
next recipient may be sent. Reserving ``cost`` recipients starts at ``max(now, TAT of every
applicable bucket)`` and moves each bucket's TAT by ``cost / rate``; the caller waits until the
start (never raises, never burns a retry). Time is Redis's own ``TIME``, so workers on machines
with skewed clocks still share one timeline.

Buckets of one channel share the hash tag ``{rate:<channel>}`` (one Redis Cluster slot): the
channel's own cap (the carrier contract), and optional caps for a tenant or one of its senders.

A carrier's 429 halves the channel's rate for a while (``penalise``): multiplicative decrease,
and the rate recovers when the penalty expires.

Redis losing its data loses the TATs, and with them the reservations booked ahead (workers
sleeping until their start): sending from "now" again would put those and the new ones in the
same second at the carrier. Each channel keeps a marker key that never expires; a reservation
that finds it missing (Redis restarted empty, or a channel's very first use) starts
``hold_after_loss`` later, past anything booked before, and sets it again.

Smoothness: a reservation is spent as one request, so a request of ``cost`` recipients is a
burst of ``cost``. To keep every 1-second window within ``smoothing`` of the cap, callers send
at most ``chunk_size(rate)`` recipients per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis import Redis

from engine.keys import Keys

# KEYS: penalty key, marker key, then one TAT key per bucket. ARGV: cost, the longest wait (µs)
# worth reserving for, the 1-based index among the buckets of the channel's own (the penalty
# slows it; 0: none), the longest wait (µs) a narrower cap may impose and still reserve, the
# hold (µs) after a lost marker, then one rate per bucket. A wait beyond the longest reserves
# nothing (the caller hands its work back rather than hold capacity it cannot use yet).
# Returns "<1 if reserved, else 0>:<wait in microseconds>" (text: Lua numbers lose precision
# past 2^53).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local longest = tonumber(ARGV[2])
local penalised = tonumber(ARGV[3]) + 2
local factor = tonumber(redis.call('GET', KEYS[1]) or '1')
local start = now
if redis.call('EXISTS', KEYS[2]) == 0 then
  start = now + tonumber(ARGV[5])
  redis.call('SET', KEYS[2], '1')
end
for i = 3, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat > start then start = tat end
end
-- A narrower cap (a tenant's, a sender's) that is not due yet reserves nothing: booking the
-- shared channel ahead for it would idle the channel for everyone else until then.
local own = now
for i = 3, #KEYS do
  if i ~= penalised then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat > own then own = tat end
  end
end
if own - now > tonumber(ARGV[4]) then return '0:' .. string.format('%d', own - now) end
if start - now > longest then return '0:' .. string.format('%d', start - now) end
for i = 3, #KEYS do
  local rate = tonumber(ARGV[i + 3])
  if i == penalised then rate = rate * factor end
  local tat = start + math.ceil(cost * 1000000 / rate)
  -- Keep the key only as long as it matters.
  redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return '1:' .. string.format('%d', start - now)
"""

_PENALISE = """
local factor = tonumber(redis.call('GET', KEYS[1]) or '1') * tonumber(ARGV[1])
if factor < tonumber(ARGV[2]) then factor = tonumber(ARGV[2]) end
redis.call('SET', KEYS[1], tostring(factor), 'PX', ARGV[3])
return tostring(factor)
"""


#: After Redis lost its data, reservations start this much later: past what was booked before
#: (under smoothing, a booking lies at most a fraction of a second ahead).
RATE_HOLD_AFTER_LOSS_SECONDS = 1.0
#: A tenant's or sender's own cap books the channel only when it is due within this long.
NARROW_CAP_HOLD_MICROSECONDS = 20_000


@dataclass(frozen=True, slots=True)
class Reservation:
    #: True if the capacity is booked: send after ``wait`` seconds. False: nothing is booked;
    #: wait ``wait`` seconds and ask again (or hand the work back if that is too long).
    reserved: bool
    wait: float


@dataclass(frozen=True, slots=True)
class Limit:
    """A cap in recipients per second on one bucket."""

    key: str
    per_second: float


def chunk_size(per_second: float, smoothing: float, maximum: int = 1000) -> int:
    """Recipients per request under a cap, so that one request is at most ``smoothing`` of a
    second's worth (a 300/s cap at 1 % goes out 3 at a time, not 1000 every 3.3 s)."""
    if per_second <= 0:
        return maximum
    return max(1, min(maximum, math.floor(per_second * smoothing)))


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        backoff_factor: float = 0.5,
        backoff_floor: float = 0.05,
        backoff_seconds: float = 10.0,
        hold_after_loss_seconds: float = 0.0,
    ) -> None:
        self.redis = redis
        self.hold_after_loss_us = int(hold_after_loss_seconds * 1_000_000)
        self.keys = keys
        self.backoff_factor = backoff_factor
        self.backoff_floor = backoff_floor
        self.backoff_ms = int(backoff_seconds * 1000)
        self._reserve = redis.register_script(_RESERVE)
        self._penalise = redis.register_script(_PENALISE)

    def channel_limit(self, channel: str, per_second: float) -> Limit:
        return Limit(self.keys.rate(channel, "channel"), per_second)

    def tenant_limit(self, channel: str, tenant_id: int, per_second: float) -> Limit:
        return Limit(self.keys.rate(channel, f"tenant:{tenant_id}"), per_second)

    def sender_limit(self, channel: str, tenant_id: int, sender: str, per_second: float) -> Limit:
        return Limit(self.keys.rate(channel, f"sender:{tenant_id}:{sender}"), per_second)

    def reserve(self, channel: str, cost: int, limits: list[Limit], longest_wait: float = 5.0) -> Reservation:
        """Reserve ``cost`` recipients under every limit; how long to wait before sending them.

        A carrier's penalty slows the channel's own limit (if it has one). Nothing is reserved
        (``reserved`` False) when a tenant's or sender's own cap is not due yet, or when the wait
        would be longer than ``longest_wait``: the caller waits that long and asks again, or
        hands its work back. No limits: sent at once."""
        if not limits:
            return Reservation(True, 0.0)
        channel_key = self.keys.rate(channel, "channel")
        penalised = next((i for i, limit in enumerate(limits, 1) if limit.key == channel_key), 0)
        keys = [
            self.keys.rate(channel, "penalty"),
            self.keys.rate(channel, "marker"),
            *(limit.key for limit in limits),
        ]
        args = [
            cost,
            int(longest_wait * 1_000_000),
            penalised,
            NARROW_CAP_HOLD_MICROSECONDS,
            self.hold_after_loss_us,
            *(limit.per_second for limit in limits),
        ]
        reserved, _, waited = self._reserve(keys=keys, args=args).decode().partition(":")
        return Reservation(reserved == "1", int(waited) / 1_000_000)

    def penalise(self, channel: str) -> float:
        """The carrier said "too many requests": slow the channel down; returns the new factor."""
        factor = self._penalise(
            keys=[self.keys.rate(channel, "penalty")],
            args=[self.backoff_factor, self.backoff_floor, self.backoff_ms],
        )
        return float(factor)

    def factor(self, channel: str) -> float:
        """The channel's current share of its cap (1 unless penalised)."""
        raw = self.redis.get(self.keys.rate(channel, "penalty"))
        return float(raw) if raw else 1.0
