"""Which rate limits hold for a batch: its channel's cap, and its tenant's and sender's, if set."""

from __future__ import annotations

import threading
import time

from psycopg import Connection
from psycopg_pool import ConnectionPool

from engine.config import Settings
from engine.dispatch.ratelimit import Limit, RateLimiter

#: Seconds a tenant's caps are cached by a worker (how soon a changed cap takes effect).
CACHE_SECONDS = 30.0


def channel_cap(settings: Settings, channel: str) -> float:
    return settings.channel(channel).rate_limit_per_second


class RatePolicy:
    def __init__(self, settings: Settings, pool: ConnectionPool, limiter: RateLimiter) -> None:
        self.settings = settings
        self.pool = pool
        self.limiter = limiter
        self._cache: dict[int, tuple[float, list[tuple[str | None, str, float]]]] = {}
        self._lock = threading.Lock()

    def limits(self, channel: str, tenant_id: int, sender: str) -> list[Limit]:
        """Every cap on ``channel`` that applies to this tenant and sender, channel's first."""
        aim = self.settings.rate_target_fraction
        limits = []
        cap = channel_cap(self.settings, channel)
        if cap > 0:
            limits.append(self.limiter.channel_limit(channel, cap * aim))
        for limit_sender, limit_channel, per_second in self._tenant_caps(tenant_id):
            if limit_channel != channel:
                continue
            if limit_sender is None:
                limits.append(self.limiter.tenant_limit(channel, tenant_id, per_second * aim))
            elif limit_sender == sender:
                limits.append(self.limiter.sender_limit(channel, tenant_id, sender, per_second * aim))
        return limits

    def effective_rate(self, channel: str, limits: list[Limit]) -> float:
        """The tightest cap now in force (0: none), the carrier's penalty included."""
        if not limits:
            return 0.0
        channel_key = self.limiter.keys.rate(channel, "channel")
        factor = self.limiter.factor(channel)
        return min(limit.per_second * (factor if limit.key == channel_key else 1.0) for limit in limits)

    def _tenant_caps(self, tenant_id: int) -> list[tuple[str | None, str, float]]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tenant_id)
        if hit and hit[0] > now:
            return hit[1]
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT sender, channel, per_second FROM rate_limits WHERE tenant_id = %s", (tenant_id,)
            ).fetchall()
        caps = [(sender, channel, float(per_second)) for sender, channel, per_second in rows]
        with self._lock:
            self._cache[tenant_id] = (now + CACHE_SECONDS, caps)
        return caps


CHANNELS = ("sms", "lms", "kakao")


def set_rate_limit(
    conn: Connection, tenant_id: int, channel: str, per_second: float, sender: str | None = None
) -> None:
    """Cap a tenant (or one of its senders) on a channel, below the channel's own cap."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if per_second <= 0:
        raise ValueError("per_second must be positive")
    conn.execute(
        """
        INSERT INTO rate_limits (tenant_id, sender, channel, per_second) VALUES (%s, %s, %s, %s)
        ON CONFLICT (tenant_id, sender, channel) DO UPDATE SET per_second = EXCLUDED.per_second
        """,
        (tenant_id, sender, channel, per_second),
    )


def clear_rate_limit(conn: Connection, tenant_id: int, channel: str, sender: str | None = None) -> bool:
    cur = conn.execute(
        "DELETE FROM rate_limits WHERE tenant_id = %s AND channel = %s AND sender IS NOT DISTINCT FROM %s",
        (tenant_id, channel, sender),
    )
    return cur.rowcount > 0


def list_rate_limits(conn: Connection, tenant_id: int) -> list[tuple[str | None, str, float]]:
    rows = conn.execute(
        "SELECT sender, channel, per_second FROM rate_limits WHERE tenant_id = %s"
        " ORDER BY channel, sender NULLS FIRST",
        (tenant_id,),
    ).fetchall()
    return [(sender, channel, float(per_second)) for sender, channel, per_second in rows]
