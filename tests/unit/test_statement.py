"""The pure parts of send statements: KST months and the HTML page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.clock import KST
from engine.errors import ValidationError
from engine.reporting.statement import ChannelCounts, ChargeRow, ReasonCount, Statement, parse_month
from engine.reporting.statement_render import render_html


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2026-11", datetime(2026, 11, 1, tzinfo=KST), datetime(2026, 12, 1, tzinfo=KST)),
        ("2026-12", datetime(2026, 12, 1, tzinfo=KST), datetime(2027, 1, 1, tzinfo=KST)),
    ],
)
def test_a_month_is_a_kst_calendar_month(month: str, start: datetime, end: datetime) -> None:
    assert parse_month(month) == (start, end)
    # 1 November 00:00 KST is still 31 October in UTC
    assert parse_month("2026-11")[0].astimezone(UTC) == datetime(2026, 10, 31, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-1", "11-2026", "2026/11", "", "1999-12"])
def test_a_malformed_month_is_refused_naming_the_field(month: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_month(month)
    assert caught.value.field == "month"
    assert "YYYY-MM" in caught.value.reason


def statement(charges: tuple[ChargeRow, ...] = ()) -> Statement:
    return Statement(
        tenant="<b>상점</b>",
        scope="month",
        subject="2026년 11월",
        period_start=datetime(2026, 11, 1, tzinfo=KST),
        period_end=datetime(2026, 11, 30, 23, 59, 59, tzinfo=KST),
        jobs=3,
        recipients=1500,
        channels=(ChannelCounts("sms", delivered=1000, failed=2), ChannelCounts(None, failed=7)),
        reasons=(ReasonCount("sms", "carrier_23", "<수신 거부>", 2),),
        charges=charges,
        issued_at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
    )


def test_statement_html_has_korean_labels_totals_and_escapes_text() -> None:
    # When a monthly statement is rendered
    page = render_html(statement())

    # Then it has the labels, the counts with thousands separators and a totals line
    assert '<html lang="ko">' in page and "<h1>발송내역서</h1>" in page
    assert "2026-11-01 00:00:00 ~ 2026-11-30 23:59:59" in page
    assert "<td>SMS</td>" in page and "<td>접수 거부</td>" in page
    assert '<td class="n">1,000</td>' in page
    assert '<tr class="total"><td>합계</td><td class="n">1,000</td><td class="n">9</td>' in page
    assert "2026-12-01 09:00:00" in page  # issued, in KST
    # And text from tenants and carriers cannot inject markup
    assert "&lt;b&gt;상점&lt;/b&gt;" in page and "<b>상점</b>" not in page
    assert "&lt;수신 거부&gt;" in page


def test_the_charges_section_appears_only_with_charges() -> None:
    # Given no charges (no balances yet), Then there is no charges section at all
    assert "요금 및 환불" not in render_html(statement())
    # Given charge and refund rows, Then they are listed with their sum
    page = render_html(statement((ChargeRow("SMS 발송", 1000, 9, 9000), ChargeRow("실패 환불", -2, 9, -18))))
    assert "요금 및 환불" in page and "SMS 발송" in page
    assert '<td colspan="3">합계</td><td class="n">8,982</td>' in page
