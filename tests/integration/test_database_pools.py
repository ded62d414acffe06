"""Connection pools past one machine: PgBouncer in transaction mode and a read replica.

Behind PgBouncer in transaction mode, consecutive transactions of one client connection may run
on different server sessions, so nothing may rely on session state: no server-side prepared
statement, no session advisory lock, no SET, LISTEN or temporary table.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import Settings
from engine.db import make_pool
from engine.runtime import Runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

#: SQL that leaves state in a server session beyond its transaction (balsong writes SQL keywords
#: in upper case, so a docstring's "Set ..." is not taken for a statement).
SESSION_STATE = re.compile(
    r"pg_(try_)?advisory_lock(_shared)?\(|[\"']\s*(SET(?!\s+LOCAL)|RESET|LISTEN|PREPARE|DISCARD)\s|CREATE\s+TEMP"
)
#: The one module allowed a session: retention's DETACH ... CONCURRENTLY cannot run in a
#: transaction block, so its lock_timeout is a session setting. The scheduler, which runs it,
#: connects to the primary directly, not through PgBouncer (docs/scaling.md, deploy/k8s).
SESSION_ALLOWED = ("engine/reporting/retention.py",)


def prepared_statements(pool_settings: Settings, *, executions: int) -> int:
    """Server-side prepared statements after running one query ``executions`` times."""
    pool = make_pool(pool_settings, max_size=1)
    try:
        with pool.connection() as conn:
            for _ in range(executions):
                conn.execute("SELECT count(*) FROM jobs WHERE id = %s", (1,))
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            assert row is not None
            return int(row[0])
    finally:
        pool.close()


def test_behind_pgbouncer_no_statement_is_prepared_on_the_server(settings: Settings) -> None:
    # Given a query run ten times on one pooled connection
    # When the pool is not told about PgBouncer, Then psycopg prepared it (after the 5th time)
    assert prepared_statements(replace(settings, database_pgbouncer=False), executions=10) >= 1
    # When it is, Then nothing was prepared, so any server session can run the next execution
    assert prepared_statements(replace(settings, database_pgbouncer=True), executions=10) == 0


def test_no_code_keeps_session_state_across_transactions() -> None:
    # Given every module that talks to PostgreSQL; Then none uses session-scoped state
    offenders = []
    for package in ("engine", "actors", "api", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            if str(path.relative_to(ROOT)) in SESSION_ALLOWED:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SESSION_STATE.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "session state breaks PgBouncer transaction mode:\n" + "\n".join(offenders)


def test_read_heavy_queries_use_the_replica_when_one_is_set(settings: Settings) -> None:
    # Given no read URL, Then reads share the primary's pool
    plain = Runtime(settings, pool_size=2)
    try:
        assert plain.read_pool is plain.pool
    finally:
        plain.close()
    # Given a read URL (here the server's postgres database stands in for a replica)
    replica_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    runtime = Runtime(replace(settings, database_read_url=replica_url), pool_size=2)
    try:
        # Then the read pool connects there, and the primary's pool to the primary
        with runtime.read_pool.connection() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("postgres",)
        primary_name = settings.database_url.rsplit("/", 1)[1]
        with runtime.pool.connection() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (primary_name,)
    finally:
        runtime.close()
