"""Storing jobs with COPY: what goes in comes back out exactly, whatever the text holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.intake.intake import prepare_job
from engine.intake.job_store import PartitionCache, store_job

pytestmark = pytest.mark.integration

TRICKY = ["back\\slash", 'quote"d', "tab\there", "new\nline", "comma,{brace}", "NULL", "\\N", "", "한글 이름"]


def member_id(value: str) -> str | None:
    """An identifier carries no control character (intake refuses one: `engine.inputs`)."""
    return value.replace("\t", " ").replace("\n", " ") or None


def test_values_with_copy_special_characters_round_trip(settings: Settings) -> None:
    # Given a job whose variable values hold every character COPY and array literals treat specially
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "copy-escaping")
        add_sender(conn, tenant_id, "0212345678")
        top_up(conn, tenant_id, Decimal(1000))
        recipients = [
            {"phone": f"0101234{i:04d}", "variables": {"a": value, "b": "x"}, "member_id": member_id(value)}
            for i, value in enumerate(TRICKY)
        ]
        recipients.append({"phone": "bad,phone\\", "variables": {"a": "1", "b": "2"}})
        job = prepare_job(
            {"channel": "lms", "sender": "02-1234-5678", "body": "#{a} #{b}", "recipients": recipients},
            max_recipients=100,
        )

        # When it is stored
        stored = store_job(
            conn,
            tenant_id=tenant_id,
            job=job,
            now=datetime.now(UTC),
            idempotency_key=None,
            partitions=PartitionCache(),
            settings=settings,
        )

        # Then every value reads back exactly as given
        rows = conn.execute(
            'SELECT seq, phone, member_id, "values", status, reason_code FROM recipients'
            " WHERE job_id = %s ORDER BY seq",
            (stored.job_id,),
        ).fetchall()
    assert [r[3] for r in rows[: len(TRICKY)]] == [[value, "x"] for value in TRICKY]
    assert [r[2] for r in rows[: len(TRICKY)]] == [member_id(value) for value in TRICKY]
    assert rows[-1][1:] == ("bad,phone\\", None, None, "failed", "invalid_character")
