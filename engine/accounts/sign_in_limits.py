"""Throttling of API-key guesses: console sign-ins and API calls with a key not yet known good.

Every attempt whose key must be looked up in PostgreSQL first takes a place in two Redis
counters — one of the client (its IP address; an IPv6 address by its /64) and one of the key's
visible prefix (``engine.accounts.tenants.key_prefix``) — in one atomic script, before the lookup. When
either counter is at its limit the attempt is refused (:class:`~engine.errors.SignInThrottled`,
429 with ``Retry-After``) without touching the database, so a flood costs a Redis call per
request and at most ``limit`` lookups per window, however many requests run at once. A lookup
that finds the key gives its places back: only failures count.

A key found good is remembered (by hash) for :data:`KNOWN_GOOD_SECONDS` and then skips both
counters: a flood from elsewhere, even one aimed at the key's prefix, never locks out a key that
has been used lately; a key never used yet is locked out by a flood on its own prefix for at most
one window. Counters are fixed windows that start at a bucket's first failure.

Operators' sign-ins (email and password) take a place in the client's counter only
(`SignInThrottle.admit_client`); each account counts its own failures and locks itself
(`engine.accounts.operators`), and no password is ever remembered as good.

If Redis is unreachable, attempts go on unthrottled (logged): the API must not stop
authenticating because the throttle's store is down, and PostgreSQL still decides every key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from engine.accounts.tenants import key_prefix
from engine.config import Settings
from engine.errors import SignInThrottled
from engine.keys import Keys

log = logging.getLogger(__name__)

#: A key found good skips the throttle for this long after its last successful lookup.
KNOWN_GOOD_SECONDS = 7 * 24 * 3600

# KEYS: known-good marker, client counter, key-prefix counter. ARGV: client limit, prefix limit,
# window in ms. Returns -1 (a known-good key: go ahead, nothing counted), 0 (go ahead, a place
# taken in each counter with a limit) or the ms until the full counter's window ends.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local window = tonumber(ARGV[3])
for i = 2, 3 do
  local limit = tonumber(ARGV[i - 1])
  if limit > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') >= limit then
    local left = redis.call('PTTL', KEYS[i])
    if left < 0 then left = window end
    return left
  end
end
for i = 2, 3 do
  if tonumber(ARGV[i - 1]) > 0 and redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
return 0
"""

# KEYS: known-good marker, client counter, key-prefix counter. ARGV: marker lifetime in s, and
# 1 if the attempt took places in the counters. Those are given back (never below zero), and the
# key is remembered as good (unless the lifetime is 0: an operator's sign-in, see admit_client).
# An attempt admitted as known-good took no place and gives none back: else a caller's own good
# key, used between guesses, would wipe out their failures.
_SUCCEEDED = """
if ARGV[2] == '1' then
  for i = 2, 3 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
  end
end
if tonumber(ARGV[1]) > 0 then redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[1])) end
return 0
"""


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Failed key lookups allowed per window (0: no limit)."""

    failures_per_client: int
    failures_per_key_prefix: int
    window_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLimits:
        return cls(
            failures_per_client=settings.sign_in_failures_per_client,
            failures_per_key_prefix=settings.sign_in_failures_per_key_prefix,
            window_seconds=settings.sign_in_window_seconds,
        )


def client_bucket(address: str | None) -> str:
    """The client counter's name for an address: IPv4 whole, IPv6 by its /64 (one host holds a
    whole /64 and may use any address in it)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Attempt:
    """One admitted key lookup: tell it whether the key was found."""

    def __init__(
        self,
        throttle: SignInThrottle | None,
        keys: list[str],
        known_good: bool = False,
        remember: bool = True,
    ) -> None:
        self._throttle = throttle
        self._keys = keys
        self._known_good = known_good
        self._remember = remember

    def succeeded(self) -> None:
        if self._throttle is not None:
            self._throttle.release(self._keys, counted=not self._known_good, remember=self._remember)

    def failed(self) -> None:
        """A key remembered as good is no more (revoked): it is throttled like any other again."""
        if self._throttle is not None and self._known_good:
            self._throttle.forget(self._keys[0])


class SignInThrottle:
    """Admits or refuses key lookups (see the module doc)."""

    def __init__(self, redis: Redis, keys: Keys, limits: SignInLimits) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        self._admit = redis.register_script(_ADMIT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def admit(self, client: str | None, api_key: str) -> Attempt:
        """Take a place for a lookup of ``api_key`` asked by ``client`` (an IP address).

        Raises:
          SignInThrottled: the client or the key's prefix is over its limit; nothing was counted.
        """
        if self.limits.failures_per_client <= 0 and self.limits.failures_per_key_prefix <= 0:
            return Attempt(None, [])
        prefix_hash = hashlib.sha256(key_prefix(api_key).encode()).hexdigest()[:32]
        redis_keys = [
            self.keys.sign_in("good", hashlib.sha256(api_key.encode()).hexdigest()),
            self.keys.sign_in("client", client_bucket(client)),
            self.keys.sign_in("prefix", prefix_hash),
        ]
        window_ms = max(1, int(self.limits.window_seconds * 1000))
        try:
            wait_ms = int(
                self._admit(
                    keys=redis_keys,
                    args=[self.limits.failures_per_client, self.limits.failures_per_key_prefix, window_ms],
                )
            )
        except RedisError as exc:
            log.warning("sign-in attempts not throttled: Redis unavailable (%s)", exc)
            return Attempt(None, [])
        if wait_ms > 0:
            raise SignInThrottled(retry_after_seconds=max(1, math.ceil(wait_ms / 1000)))
        return Attempt(self, redis_keys, known_good=wait_ms < 0)

    def admit_client(self, client: str | None) -> Attempt:
        """Take a place for an operator's sign-in (email and password) asked by ``client``: in the
        client's counter only. Each account locks itself after its own failures
        (`engine.accounts.operators`), and nothing is remembered as good: a password is not a
        key, and one account's success must not let its address guess others' unthrottled.

        Raises:
          SignInThrottled: the client is over its limit; nothing was counted.
        """
        if self.limits.failures_per_client <= 0:
            return Attempt(None, [])
        redis_keys = [
            self.keys.sign_in("good", "operators-never-known-good"),
            self.keys.sign_in("client", client_bucket(client)),
            self.keys.sign_in("prefix", "operators-not-counted"),
        ]
        window_ms = max(1, int(self.limits.window_seconds * 1000))
        try:
            wait_ms = int(self._admit(keys=redis_keys, args=[self.limits.failures_per_client, 0, window_ms]))
        except RedisError as exc:
            log.warning("sign-in attempts not throttled: Redis unavailable (%s)", exc)
            return Attempt(None, [])
        if wait_ms > 0:
            raise SignInThrottled(retry_after_seconds=max(1, math.ceil(wait_ms / 1000)))
        return Attempt(self, redis_keys, remember=False)

    def release(self, redis_keys: list[str], *, counted: bool, remember: bool = True) -> None:
        try:
            self._succeeded(
                keys=redis_keys, args=[KNOWN_GOOD_SECONDS if remember else 0, 1 if counted else 0]
            )
        except RedisError as exc:
            log.warning("sign-in success not recorded: Redis unavailable (%s)", exc)

    def forget(self, marker: str) -> None:
        try:
            self.redis.delete(marker)
        except RedisError as exc:
            log.warning("revoked key not forgotten by the sign-in throttle: Redis unavailable (%s)", exc)
