"""Retention never holds up intake: dropping an old month's partition waits for that month's
readers, while jobs keep being stored into the current month."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.intake.intake import prepare_job
from engine.intake.job_store import StoredJob
from engine.reporting.retention import purge_expired, recipient_partitions
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration

OLD = datetime(2024, 1, 15, 3, 0, tzinfo=UTC)


def store(conn: psycopg.Connection, tenant_id: int, when: datetime, phone: str) -> StoredJob:
    prepared = prepare_job(
        {"channel": "sms", "sender": "02-1234-5678", "body": "보관", "recipients": [{"phone": phone}]},
        max_recipients=10,
        now=when,
    )
    return store_prepared(conn, Settings.from_env(), tenant_id, prepared, now=when)


def purge_waiting(settings: Settings) -> bool:
    """Is the retention connection waiting for a lock (whatever statement it runs)?"""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'retention-test' AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_dropping_a_month_waits_for_its_readers_but_never_blocks_intake(settings: Settings) -> None:
    # Given a job from January 2024 (its own monthly partition), this month's and next month's
    # partitions made ahead (as the scheduler does), and a reader of the old job mid-transaction
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        this_month = date.today().replace(day=1)
        for month in (this_month, (this_month + timedelta(days=32)).replace(day=1)):
            conn.execute("SELECT ensure_recipients_partition(%s)", (month,))
        tenant_id = create_tenant(conn, "retention-engine")
        top_up(conn, tenant_id, Decimal(1000))
        add_sender(conn, tenant_id, "0212345678")
        old = store(conn, tenant_id, OLD, "01080000001")
    reader = psycopg.connect(settings.database_url)
    reader.execute("SELECT count(*) FROM recipients WHERE job_id = %s", (old.job_id,)).fetchone()

    # When retention runs now (the month is wholly older than 365 days) ...
    purged: list[object] = []

    def purge() -> None:
        with psycopg.connect(
            settings.database_url, autocommit=True, application_name="retention-test"
        ) as conn:
            purged.append(purge_expired(conn, datetime.now(UTC), 365))

    worker = threading.Thread(target=purge)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not purge_waiting(settings) and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        # ... and, while the drop waits for the reader, intake stores a job into this month
        assert purge_waiting(settings), "dropping the old month waits for its reader"
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '30s'")  # blocked intake fails here, it does not hang
            new = store(conn, tenant_id, datetime.now(UTC), "01080000002")
            fresh = conn.execute("SELECT status FROM recipients WHERE job_id = %s", (new.job_id,)).fetchall()
        assert fresh == [("queued",)]
    finally:
        reader.commit()
        reader.close()
        worker.join(timeout=120)

    # Then, the reader gone, the month's partition and its job are dropped; the new job stays
    assert purged and old.job_id in purged[0].job_ids  # type: ignore[attr-defined]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        months = [month for month, _ in recipient_partitions(conn)]
        assert date(2024, 1, 1) not in months
        assert conn.execute("SELECT count(*) FROM jobs WHERE id = %s", (old.job_id,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM jobs WHERE id = %s", (new.job_id,)).fetchone() == (1,)
