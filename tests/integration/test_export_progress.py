"""An export tells its caller how many rows it has produced (`balsong export`'s progress bar),
exactly, in both formats, without changing what it writes."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from engine.accounts.tenants import create_tenant
from engine.reporting import exports
from engine.reporting.export_xlsx import xlsx_chunks
from tests.support.results import RECIPIENTS, seed_job

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_counts_its_rows_and_writes_the_same_file(conn: psycopg.Connection, fmt: str) -> None:
    # Given a finished job of six recipients (two of them with a fallback message)
    tenant_id = create_tenant(conn, f"export-progress-{uuid.uuid4().hex[:6]}")
    job = exports.find_job(conn, tenant_id, seed_job(conn, tenant_id))
    chunks = exports.csv_chunks if fmt == "csv" else xlsx_chunks
    # When it is exported with a progress callback, and without
    seen: list[int] = []
    counted = b"".join(chunks(conn, job, unmasked=False, progress=seen.append))
    plain = b"".join(chunks(conn, job, unmasked=False))
    # Then the callback ends at the job's row count, never going back, and the file is the same
    assert seen and seen[-1] == len(RECIPIENTS) == job.total
    assert seen == sorted(seen)
    if fmt == "csv":
        assert counted == plain
    else:  # a ZIP carries times: compare sizes, not bytes
        assert abs(len(counted) - len(plain)) < 64
