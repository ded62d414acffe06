"""The Redis client of a process: one server, or a Redis Cluster.

A ``redis+cluster://host:port`` (or ``rediss+cluster://``) URL names one node of a Redis Cluster;
the client discovers the others and routes each command to the node holding its key's slot.
Every multi-key operation balsong makes (a Lua script, a MULTI/EXEC transaction) touches keys of
one hash slot — see `engine.keys` — so it runs unchanged on a cluster. Non-transactional pipelines
may span slots: the cluster client splits them per node.
"""

from __future__ import annotations

from typing import Any, cast

from redis import Redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

#: URL schemes that select Redis Cluster, and the plain scheme each stands for.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}


def is_cluster_url(url: str) -> bool:
    return url.startswith(tuple(CLUSTER_SCHEMES))


def make_redis(url: str, *, timeout_seconds: float | None = None) -> Redis:
    """A client for ``url``, checked every 30 s while idle and kept alive by TCP keepalive.

    With ``timeout_seconds``, connecting and each command give up after that long, once, with no
    retry (for a probe that must answer quickly whether Redis is reachable).

    A cluster client is returned typed as `Redis`: `RedisCluster` has the same command methods
    (both are built from redis-py's command mixins) for every command balsong sends, and engine
    modules take one client type rather than a union at each call site.
    """
    options: dict[str, Any] = {"health_check_interval": 30, "socket_keepalive": True}
    if timeout_seconds is not None:
        options.update(
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
    for scheme, plain in CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            return cast(Redis, RedisCluster.from_url(plain + url[len(scheme) :], **options))
    return Redis.from_url(url, **options)
