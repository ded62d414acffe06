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


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def isolated_settings(**overrides: object) -> Iterator[Settings]:
    """Settings pointing at a fresh database, key prefix and vhost, removed afterwards."""
    name = f"balsong_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    settings = Settings.from_env(
        {},
        database_url=ADMIN_DATABASE_URL.rsplit("/", 1)[0] + "/" + name,
        redis_url=REDIS_URL,
        redis_prefix=name,
        broker_url=f"amqp://guest:guest@{AMQP_HOST}/{name}",
        **overrides,
    )
    try:
        yield settings
    finally:
        _rabbitmqctl("delete_vhost", name)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.delete(key)
        client.close()
        with psycopg.connect(ADMIN_DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read ``settings``."""
    from dataclasses import fields

    return {f"BALSONG_{f.name.upper()}": str(getattr(settings, f.name)) for f in fields(settings)}
