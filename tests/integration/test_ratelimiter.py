"""The GCRA limiter on the real Redis: spacing, nested caps, back-off, hand-back."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from engine.config import Settings
from engine.dispatch.ratelimit import RateLimiter, Reservation, chunk_size
from engine.keys import Keys

pytestmark = pytest.mark.integration


@pytest.fixture
def limiter(settings: Settings) -> Iterator[RateLimiter]:
    redis = Redis.from_url(settings.redis_url)
    yield RateLimiter(redis, Keys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:8]}"), backoff_seconds=5)
    redis.close()


def test_reservations_are_spaced_by_their_cost(limiter: RateLimiter) -> None:
    # Given a 100/s cap, when five 10-recipient requests reserve at once
    cap = [limiter.channel_limit("sms", 100.0)]
    waits = [limiter.reserve("sms", 10, cap).wait for _ in range(5)]
    # Then each starts 0.1 s after the one before
    assert waits[0] == pytest.approx(0.0, abs=0.01)
    assert [round(b - a, 2) for a, b in itertools.pairwise(waits)] == [0.1, 0.1, 0.1, 0.1]


def test_the_tightest_of_nested_caps_holds(limiter: RateLimiter) -> None:
    # Given a channel at 1000/s and one tenant held to 10/s
    channel = limiter.channel_limit("sms", 1000.0)
    tenant = limiter.tenant_limit("sms", 7, 10.0)
    # When the tenant sends twice, Then its second request waits for its own cap
    first = limiter.reserve("sms", 5, [channel, tenant])
    assert first.reserved and first.wait == pytest.approx(0.0, abs=0.01)
    second = limiter.reserve("sms", 5, [channel, tenant])
    assert not second.reserved and second.wait == pytest.approx(0.5, abs=0.02)
    # ... without booking the channel ahead: another tenant is held only by the channel
    other = limiter.reserve("sms", 5, [channel])
    assert other.reserved and other.wait == pytest.approx(0.005, abs=0.005)


def test_a_429_halves_the_channel_rate(limiter: RateLimiter) -> None:
    cap = [limiter.channel_limit("sms", 100.0)]
    assert limiter.penalise("sms") == 0.5
    limiter.reserve("sms", 10, cap)
    assert limiter.reserve("sms", 10, cap).wait == pytest.approx(0.2, abs=0.01)
    assert limiter.penalise("sms") == 0.25


def test_a_wait_longer_than_worth_holding_reserves_nothing(limiter: RateLimiter) -> None:
    # Given a cap booked 2 s ahead
    cap = [limiter.channel_limit("sms", 10.0)]
    limiter.reserve("sms", 20, cap)
    # When a request would wait longer than it is willing to, it is told how long, and
    # takes nothing (the next one still waits the same)
    refused = limiter.reserve("sms", 10, cap, longest_wait=1.0)
    assert not refused.reserved and refused.wait == pytest.approx(2.0, abs=0.02)
    taken = limiter.reserve("sms", 10, cap, longest_wait=5.0)
    assert taken.reserved and taken.wait == pytest.approx(2.0, abs=0.02)


def test_no_limits_means_no_wait(limiter: RateLimiter) -> None:
    assert limiter.reserve("sms", 1000, []) == Reservation(True, 0.0)


@pytest.mark.parametrize(("per_second", "size"), [(300, 3), (5000, 50), (50, 1), (0, 1000), (10**6, 1000)])
def test_chunks_are_a_hundredth_of_a_second(per_second: float, size: int) -> None:
    assert chunk_size(per_second, 0.01) == size


def test_after_redis_lost_its_data_reservations_start_past_anything_booked_before(
    settings: Settings,
) -> None:
    redis = Redis.from_url(settings.redis_url)
    keys = Keys(f"{settings.redis_prefix}:{uuid.uuid4().hex[:8]}")
    limiter = RateLimiter(redis, keys, hold_after_loss_seconds=1.0)
    cap = [limiter.channel_limit("sms", 100)]
    try:
        # Given a channel in use (its first reservation held, as after any loss)
        assert limiter.reserve("sms", 10, cap).wait == pytest.approx(1.0, abs=0.05)
        # When Redis loses its data (its keys gone: the bookings ahead and the marker)
        redis.delete(*redis.keys(f"{keys.prefix}:*"))
        # Then the next reservation starts past anything booked before, not now
        assert limiter.reserve("sms", 10, cap).wait == pytest.approx(1.0, abs=0.05)
        # And the one after it queues behind it at the cap
        assert limiter.reserve("sms", 10, cap).wait == pytest.approx(1.1, abs=0.05)
    finally:
        redis.close()
