"""Storing jobs with COPY: what goes in comes back out exactly, whatever the text holds."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.errors import ValidationError
from engine.intake.intake import CLASSIFY_CHUNK, prepare_job
from tests.support.stored_jobs import store_prepared

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
        stored = store_prepared(conn, settings, tenant_id, job)

        # Then every value reads back exactly as given
        rows = conn.execute(
            'SELECT seq, phone, member_id, "values", status, reason_code FROM recipients'
            " WHERE job_id = %s ORDER BY seq",
            (stored.job_id,),
        ).fetchall()
    assert [r[3] for r in rows[: len(TRICKY)]] == [[value, "x"] for value in TRICKY]
    assert [r[2] for r in rows[: len(TRICKY)]] == [member_id(value) for value in TRICKY]
    assert rows[-1][1:] == ("bad,phone\\", None, None, "failed", "invalid_character")


def mixed_request(count: int) -> dict[str, object]:
    """SMS recipients, every seventh one's long name making it LMS, every eleventh number bad,
    every thirteenth a repeat of the one before."""
    recipients = []
    for i in range(count):
        phone = f"010{30_000_000 + i - (1 if i % 13 == 12 else 0):08d}"
        name = "긴이름" * 40 if i % 7 == 6 else f"고객{i}"
        recipients.append({"phone": "010-12" if i % 11 == 10 else phone, "variables": {"name": name}})
    return {
        "channel": "auto",
        "sender": "02-1234-5678",
        "body": "#{name}님 안녕하세요",
        "recipients": recipients,
    }


def stored_rows(conn: psycopg.Connection, job_id: int) -> list[tuple[object, ...]]:
    return conn.execute(
        'SELECT seq, phone, "values", channel, status, reason_code FROM recipients WHERE job_id = %s'
        " ORDER BY seq",
        (job_id,),
    ).fetchall()


def test_a_job_classified_while_it_is_stored_stores_the_same_rows(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "copy-in-steps")
        add_sender(conn, tenant_id, "0212345678")
        top_up(conn, tenant_id, Decimal(1_000_000))
        # Given one request of SMS, LMS, bad and repeated numbers over several classification steps
        request = mixed_request(3 * CLASSIFY_CHUNK + 5)

        # When it is stored classified first, and classified while it is stored
        whole_job = prepare_job(request, max_recipients=100_000)
        whole = store_prepared(conn, settings, tenant_id, whole_job).job_id
        deferred = prepare_job(request, max_recipients=100_000, defer_classification=True)
        assert deferred.unclassified is not None
        in_steps = store_prepared(conn, settings, tenant_id, deferred).job_id

        # Then both jobs hold the same rows, SMS first, then LMS, then the refused, and the same
        # counts
        rows = stored_rows(conn, in_steps)
        counts = (
            "SELECT total, sms_count, lms_count, invalid_count, duplicates_removed FROM jobs WHERE id = %s"
        )
        assert conn.execute(counts, (in_steps,)).fetchone() == conn.execute(counts, (whole,)).fetchone()
    assert rows == stored_rows_of(settings, whole)
    channels = [channel for _, _, _, channel, _, _ in rows]
    assert channels == sorted(channels, key=lambda c: {"sms": 0, "lms": 1, None: 2}[c])
    assert {"sms", "lms", None} == set(channels)


def stored_rows_of(settings: Settings, job_id: int) -> list[tuple[object, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return stored_rows(conn, job_id)


def test_a_request_error_found_while_storing_stores_nothing(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "copy-in-steps-refused")
        add_sender(conn, tenant_id, "0212345678")
        top_up(conn, tenant_id, Decimal(100_000))
        # Given a request whose recipient after the first classification steps holds a control
        # character in its number (the request's error, not a bad number)
        request = mixed_request(2 * CLASSIFY_CHUNK + 5)
        request["recipients"].append({"phone": "010\x001234", "variables": {"name": "x"}})  # type: ignore[attr-defined]
        job = prepare_job(request, max_recipients=100_000, defer_classification=True)
        before = conn.execute("SELECT count(*) FROM recipients").fetchone()

        # When it is stored, the request is refused naming that recipient, and nothing is stored
        with pytest.raises(ValidationError) as refused:
            store_prepared(conn, settings, tenant_id, job)
        assert refused.value.field == f"recipients[{2 * CLASSIFY_CHUNK + 5}].phone"
        assert conn.execute("SELECT count(*) FROM recipients").fetchone() == before
        assert conn.execute("SELECT count(*) FROM jobs WHERE tenant_id = %s", (tenant_id,)).fetchone() == (0,)
