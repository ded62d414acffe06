"""PostgreSQL connections: one pool per process, built on first use, and schema migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from engine.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "balsong",
    url: str | None = None,
) -> ConnectionPool:
    """A connection pool to ``url`` (the primary by default); connections are opened in the
    background and checked on checkout.

    Safe behind PgBouncer in transaction mode: no unit of work keeps session state past its
    transaction (advisory locks are transaction-scoped, there is no SET, LISTEN or temporary
    table), the time zone is a startup parameter PgBouncer tracks, and with
    ``database_pgbouncer`` no statement is prepared on the server.
    """
    kwargs: dict[str, Any] = {
        # Autocommit: every multi-statement unit of work opens an explicit transaction. UTC so
        # partition bounds and KST conversions are explicit.
        "autocommit": True,
        "options": "-c timezone=UTC",
        "connect_timeout": max(1, int(settings.database_timeout_seconds)),
    }
    if settings.database_pgbouncer:
        # psycopg prepares a query after its 5th execution on a connection; behind a
        # transaction-mode pooler the next execution may reach a server session without it.
        kwargs["prepare_threshold"] = None
    pool = ConnectionPool(
        url or settings.database_url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        check=ConnectionPool.check_connection,
        # With the database down, a caller waits this long for a connection, then gets
        # PoolTimeout (the API's 503), rather than the pool's default 30 s.
        timeout=settings.database_timeout_seconds,
        kwargs=kwargs,
    )
    pool.open(wait=False)
    return pool


def sqlalchemy_url(database_url: str | None = None) -> str:
    """The database URL in the form SQLAlchemy (used only by Alembic) wants for psycopg 3."""
    url = database_url or get_settings().database_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (creating the database itself if it is missing)."""
    from alembic import command
    from alembic.config import Config

    url = database_url or get_settings().database_url
    create_database_if_missing(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    command.upgrade(config, revision)


def create_database_if_missing(database_url: str) -> None:
    """Create the database named in ``database_url`` if the server does not have it yet."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(database_url)
    name = params.get("dbname") or "postgres"
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
