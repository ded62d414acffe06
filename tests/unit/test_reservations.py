"""Intake of ``kind`` and ``scheduled_at``: what a reservation may be, and the errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.errors import ValidationError
from engine.intake.intake import prepare_job
from engine.reporting.retention import first_kept_month

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 13:00 KST


def job(**extra: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "sender": "02-1234-5678",
        "body": "안내",
        "recipients": [{"phone": "01012345678"}],
        **extra,
    }


def prepare(**extra: Any) -> Any:
    return prepare_job(job(**extra), max_recipients=10, now=NOW, reservation_horizon_days=60)


def test_a_job_without_kind_is_manual_and_not_reserved() -> None:
    prepared = prepare()
    assert (prepared.kind, prepared.scheduled_at) == ("manual", None)
    assert prepare(kind="automatic").kind == "automatic"


def test_scheduled_at_with_an_offset_is_that_instant_and_makes_the_job_scheduled() -> None:
    prepared = prepare(scheduled_at="2026-11-24T09:00:00+09:00")
    assert prepared.kind == "scheduled"
    assert prepared.scheduled_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def test_scheduled_at_without_an_offset_is_read_as_korean_time() -> None:
    # Given "09:00" with no offset, When prepared, Then it is 09:00 KST (00:00 UTC)
    assert prepare(scheduled_at="2026-11-24T09:00:00").scheduled_at == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"scheduled_at": "2026-11-23T12:59:00+09:00"}, "scheduled_at", "future"),
        ({"scheduled_at": (NOW + timedelta(days=60, seconds=1)).isoformat()}, "scheduled_at", "60 days"),
        ({"scheduled_at": "tomorrow at nine"}, "scheduled_at", "ISO 8601"),
        ({"scheduled_at": 1764000000}, "scheduled_at", "ISO 8601"),
        ({"kind": "scheduled"}, "scheduled_at", "required"),
        ({"kind": "automatic", "scheduled_at": "2026-11-24T09:00:00+09:00"}, "kind", "scheduled"),
        ({"kind": "weekly"}, "kind", "one of"),
    ],
)
def test_bad_kind_or_reservation_time_is_refused_naming_the_field(
    extra: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        prepare(**extra)
    assert raised.value.field == field
    assert words in raised.value.reason


def test_the_last_moment_of_the_horizon_is_accepted() -> None:
    assert prepare(scheduled_at=(NOW + timedelta(days=60)).isoformat()).scheduled_at == NOW + timedelta(
        days=60
    )


def test_retention_keeps_the_month_that_is_not_wholly_past_the_period() -> None:
    # Given 365 days of retention on 2027-12-15, Then December 2026 is still partly within it
    assert first_kept_month(datetime(2027, 12, 15, tzinfo=UTC), 365).isoformat() == "2026-12-01"
