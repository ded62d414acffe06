"""Settings that choose how balsong runs past one machine: queue type, Redis Cluster, PgBouncer."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.redis_client import is_cluster_url


def test_queue_type_is_read_from_the_environment() -> None:
    # Given BALSONG_QUEUE_TYPE=quorum; When settings are read; Then queues are quorum
    settings = Settings.from_env({"BALSONG_QUEUE_TYPE": "quorum", "BALSONG_QUEUE_DELIVERY_LIMIT": "7"})
    assert settings.queue_type == "quorum"
    assert settings.queue_delivery_limit == 7


def test_an_unknown_queue_type_is_refused_naming_the_setting() -> None:
    # Given a queue type RabbitMQ has but balsong does not use; Then the error names the setting
    with pytest.raises(ValueError, match="BALSONG_QUEUE_TYPE: must be one of classic, quorum, not 'stream'"):
        Settings.from_env({"BALSONG_QUEUE_TYPE": "stream"})


def test_a_delivery_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="BALSONG_QUEUE_DELIVERY_LIMIT: must be at least 1"):
        Settings.from_env({"BALSONG_QUEUE_DELIVERY_LIMIT": "0"})


def test_a_redis_cluster_is_chosen_by_the_url_scheme() -> None:
    # Given URLs of one server and of a cluster node; Then only the latter selects a cluster
    assert is_cluster_url("redis+cluster://10.0.0.5:6379/0")
    assert is_cluster_url("rediss+cluster://redis.example:6380")
    assert not is_cluster_url("redis://127.0.0.1:6379/0")


def test_the_keys_one_rate_limit_script_touches_share_one_cluster_slot() -> None:
    # Given the buckets the rate limiter's Lua script reserves from together (engine.dispatch.ratelimit)
    from redis.crc import key_slot

    from engine.keys import Keys

    keys = Keys("balsong")
    for channel in ("sms", "lms", "kakao"):
        buckets = ["channel", "penalty", "tenant:7", "sender:7:0212345678"]
        # Then on Redis Cluster they are in one slot, so the script may use them at once
        slots = {key_slot(keys.rate(channel, bucket).encode()) for bucket in buckets}
        assert len(slots) == 1, channel
    # And a job's counters (one key, used by scripts and a MULTI/EXEC) carry the job's tag
    assert "{job:42}" in keys.job_counts(42)


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("False", False), ("0", False)])
def test_a_true_or_false_setting_reads_false_as_false(raw: str, expected: bool) -> None:
    # Given BALSONG_DATABASE_PGBOUNCER spelt as people (and settings_env) write it
    # Then it is read as meant (bool("false") would be True)
    assert Settings.from_env({"BALSONG_DATABASE_PGBOUNCER": raw}).database_pgbouncer is expected


def test_a_true_or_false_setting_refuses_anything_else() -> None:
    with pytest.raises(ValueError, match="BALSONG_DATABASE_PGBOUNCER: expected true or false, not 'maybe'"):
        Settings.from_env({"BALSONG_DATABASE_PGBOUNCER": "maybe"})
