"""Storing a prepared job as POST /v1/jobs does (`engine.intake.job_store.store_job`), for tests
that make their jobs without the API."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg import Connection

from engine.config import Settings
from engine.intake.intake import PreparedJob
from engine.intake.job_store import PartitionCache, StoredJob, store_job


def store_prepared(
    conn: Connection, settings: Settings, tenant_id: int, job: PreparedJob, *, now: datetime | None = None
) -> StoredJob:
    """Store ``job`` for the tenant, without an Idempotency-Key, at ``now`` (default: now)."""
    return store_job(
        conn,
        tenant_id=tenant_id,
        job=job,
        now=now or datetime.now(UTC),
        idempotency_key=None,
        partitions=PartitionCache(),
        settings=settings,
    )
