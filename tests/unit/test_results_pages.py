"""The results pages' rules that need no server: deletion dates, Korean advice, the job list's
CSV cells, the recipient search's bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from api.console import labels
from engine import reason_codes
from engine.errors import ValidationError
from engine.reporting import job_list_export, phone_search
from engine.reporting.retention import deletion_at, first_kept_month

CREATED = (
    datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    # 2027-01-01 00:30 KST is still December in UTC, the partitions' month.
    datetime(2026, 12, 31, 15, 30, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2027, 2, 28, 23, 59, 59, tzinfo=UTC),
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
)


@pytest.mark.parametrize("created", CREATED)
@pytest.mark.parametrize("days", [365, 90, 1])
def test_the_deletion_date_is_when_the_retention_rule_first_drops_the_jobs_month(
    created: datetime, days: int
) -> None:
    # Given a job's creation and the retention period
    month = created.date().replace(day=1)
    deleted = deletion_at(created, days)
    # Then a second before it the purge keeps the job's month, and from it on it drops it
    assert first_kept_month(deleted - timedelta(seconds=1), days) <= month
    assert first_kept_month(deleted, days) > month
    # And the results are kept at least the period, at most a month longer
    assert timedelta(days=days) <= deleted - created <= timedelta(days=days + 31)


def test_a_job_of_december_2026_is_deleted_on_the_first_of_2028() -> None:
    assert deletion_at(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), 365) == datetime(2028, 1, 1, tzinfo=UTC)


def every_reason() -> list[reason_codes.Reason]:
    return [*reason_codes.OWN_REASONS, *reason_codes.sms_reasons(), *reason_codes.kakao_reasons()]


def test_every_reason_code_has_korean_advice() -> None:
    missing = [reason.code for reason in every_reason() if reason_codes.advice(reason.code) is None]
    assert missing == []
    assert reason_codes.advice("no_such_code") is None


@pytest.mark.parametrize(
    ("code", "fix", "resend"),
    [
        ("empty", "recipient", False),
        ("too_short", "recipient", False),
        ("carrier_-2312", "sender", True),  # SMS: sender number empty or not registered
        ("carrier_3019", "sender", True),  # SMS: not pre-registered (번호 사전 등록제)
        ("carrier_-3005", "content", True),  # AlimTalk: template not approved
        ("opted_out", None, False),
        ("no_report", None, False),
        ("carrier_3006", None, False),  # SMS: 착신 거절
        ("expired", None, True),
    ],
)
def test_advice_says_what_to_fix_and_whether_a_resend_helps(code: str, fix: str | None, resend: bool) -> None:
    found = reason_codes.advice(code)
    assert found is not None
    assert (found.fix, found.resend) == (fix, resend)
    assert found.text and all(
        "\uac00" <= ch <= "\ud7a3" for ch in found.text if ch.isalpha() and not ch.isascii()
    )


def test_every_fix_with_a_page_links_to_it() -> None:
    fixes = {reason_codes.advice(r.code).fix for r in every_reason()}  # type: ignore[union-attr]
    assert fixes <= {"recipient", "content", None, *labels.FIX_LINKS}
    assert labels.FIX_LINKS["sender"][0] == "/console/senders"
    assert labels.FIX_LINKS["money"][0] == "/console/money"


def test_korean_display_of_points_periods_and_days() -> None:
    assert labels.points("1234") == "1,234.00 P"
    assert labels.period(365) == "1년"
    assert labels.period(730) == "2년"
    assert labels.period(90) == "90일"
    assert labels.day("2027-12-31T23:30:00+00:00") == "2028-01-01"  # KST


def job(**changes: object) -> dict[str, object]:
    counts = dict.fromkeys(("total", "delivered", "failed", "expired", "in_flight", "queued", "cancelled"), 0)
    base: dict[str, object] = {
        "id": 7,
        "sent_at": "2026-12-07T18:00:01+09:00",
        "scheduled_at": None,
        "created_at": "2026-12-07T17:59:59+09:00",
        "kind": "manual",
        "channel": "auto",
        "sender": "0212345678",
        "title": None,
        "body": "안녕하세요",
        "template_code": None,
        "status": "partially_failed",
        "counts": {**counts, "total": 3, "delivered": 1, "failed": 1, "expired": 1, "unknown": 0},
        "charged": "27.00",
        "refunded": "18.00",
        "origin": "console",
    }
    return {**base, **changes}


def test_a_job_list_row_says_it_in_korean_in_kst() -> None:
    row = job_list_export.row(job(), 365)
    assert len(row) == len(job_list_export.HEADER)
    cells = dict(zip(job_list_export.HEADER, row, strict=True))
    assert cells["발송 일시(KST)"] == "2026-12-07 18:00:01"
    assert cells["유형"] == "수동" and cells["채널"] == "자동(SMS/LMS)" and cells["상태"] == "일부 실패"
    assert (cells["실패"], cells["차감 포인트"], cells["환불 포인트"]) == ("2", "27.00", "18.00")
    assert cells["접수 경로"] == "콘솔"
    assert cells["결과 삭제 예정일(KST)"] == "2028-01-01"


def test_a_job_list_row_guards_text_against_formulas() -> None:
    row = job_list_export.row(job(body='=HYPERLINK("http://x")', title="+1", template_code="@T"), 365)
    cells = dict(zip(job_list_export.HEADER, row, strict=True))
    assert cells["내용"].startswith("'=")
    assert cells["제목"] == "'+1" and cells["템플릿 코드"] == "'@T"


def test_a_recipient_search_covers_at_most_31_days_of_one_whole_number() -> None:
    phone_search.PhoneSearch("010-1234-5678", date(2026, 12, 1), date(2026, 12, 31))
    with pytest.raises(ValidationError) as too_long:
        phone_search.PhoneSearch("010-1234-5678", date(2026, 11, 30), date(2026, 12, 31))
    assert too_long.value.field == "to"
    with pytest.raises(ValidationError) as backwards:
        phone_search.PhoneSearch("010-1234-5678", date(2026, 12, 2), date(2026, 12, 1))
    assert backwards.value.field == "to"
    with pytest.raises(ValidationError) as four_digits:
        phone_search.PhoneSearch("5678", date(2026, 12, 1), date(2026, 12, 1))
    assert four_digits.value.field == "phone"
