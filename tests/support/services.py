"""Isolation of a test session on the real PostgreSQL, Redis and RabbitMQ.

Each session gets its own database, Redis key prefix and RabbitMQ vhost, so test runs (and a
demo running beside them) never collide. A missing service fails the session; it never skips.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis
from psycopg import sql

from engine.config import Settings

ADMIN_DATABASE_URL = os.environ.get(
    "BALSONG_TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BALSONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_HOST = os.environ.get("BALSONG_TEST_AMQP_HOST", "127.0.0.1:5672")


def _rabbitmqctl(*args: str, node: str | None = None) -> None:
    target = ["-n", node] if node else []
    subprocess.run(["rabbitmqctl", "-q", *target, *args], check=True, capture_output=True, timeout=60)


@contextmanager
def isolated_settings(
    *,
    admin_database_url: str = ADMIN_DATABASE_URL,
    redis_url: str = REDIS_URL,
    amqp_host: str = AMQP_HOST,
    rabbitmq_node: str | None = None,
    **overrides: object,
) -> Iterator[Settings]:
    """Settings pointing at a fresh database, key prefix and vhost, removed afterwards (on the
    machine's servers, or on others such as the fault suite's private ones)."""
    name = f"balsong_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _rabbitmqctl("add_vhost", name, node=rabbitmq_node)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*", node=rabbitmq_node)
    overrides.setdefault("env", "development")
    settings = Settings.from_env(
        {},
        database_url=admin_database_url.rsplit("/", 1)[0] + "/" + name,
        redis_url=redis_url,
        redis_prefix=name,
        broker_url=f"amqp://guest:guest@{amqp_host}/{name}",
        **overrides,
    )
    try:
        yield settings
    finally:
        _rabbitmqctl("delete_vhost", name, node=rabbitmq_node)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.delete(key)
        client.close()
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read ``settings``."""
    from dataclasses import fields

    return {f"BALSONG_{f.name.upper()}": str(getattr(settings, f.name)) for f in fields(settings)}
