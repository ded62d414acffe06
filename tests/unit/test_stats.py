"""The pure parts of send statistics: the query's parameters, what a finished job's grouped rows
add to the counters, reason texts, the CSV, and the chart's geometry."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest

from api.console.stats import field_error, percent, points
from api.console.stats_chart import build_chart, nice_ceiling
from engine.accounts.billing import Prices
from engine.errors import ValidationError
from engine.lifecycle.job_stats import job_contribution
from engine.reporting.stats import (
    CSV_HEADER,
    Counts,
    Stats,
    StatsQuery,
    csv_bytes,
    parse_query,
    reason_text,
)

TODAY = date(2026, 12, 7)
PRICES = Prices(
    sms=Decimal(9), lms=Decimal(30), kakao=Decimal(8), fallback_sms=Decimal(10), fallback_lms=Decimal(31)
)


def refusal(call: object, *args: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_without_a_range_the_last_seven_kst_days_by_day_are_asked_for() -> None:
    # When nothing is given
    query = parse_query(TODAY, None, None, None, None)
    # Then the last 7 days, today included, by day, every channel
    assert (query.first, query.last, query.granularity, query.channel) == (
        date(2026, 12, 1),
        TODAY,
        "day",
        None,
    )
    # And one end alone fixes the other 6 days away
    assert parse_query(TODAY, "2026-11-01", None, "hour", "sms").last == date(2026, 11, 7)
    assert parse_query(TODAY, None, "2026-11-07", None, None).first == date(2026, 11, 1)


def test_bad_parameters_are_refused_naming_the_field() -> None:
    cases = [
        ((TODAY, None, None, "week", None), "granularity"),
        ((TODAY, None, None, None, "mms"), "channel"),
        ((TODAY, None, None, None, "intake"), "channel"),
        ((TODAY, "2026-13-01", None, None, None), "from"),
        ((TODAY, None, "07-12-2026", None, None), "to"),
        ((TODAY, "1999-12-31", "2000-01-01", None, None), "from"),
        ((TODAY, "2026-12-07", "2026-12-06", None, None), "to"),
    ]
    for args, field in cases:
        assert refusal(parse_query, *args).field == field, args


def test_a_range_may_cover_400_days_by_day_and_31_by_hour() -> None:
    # Given ranges at and one day past each limit
    assert parse_query(TODAY, "2025-11-03", "2026-12-07", "day", None).first == date(2025, 11, 3)
    assert "at most 400 days" in refusal(parse_query, TODAY, "2025-11-02", "2026-12-07", "day", None).reason
    assert parse_query(TODAY, "2026-11-07", "2026-12-07", "hour", None).granularity == "hour"
    error = refusal(parse_query, TODAY, "2026-11-06", "2026-12-07", "hour", None)
    assert error.field == "to" and "31" in error.reason


def test_an_hourly_query_has_a_bucket_per_kst_hour_of_its_days() -> None:
    query = StatsQuery(date(2026, 12, 6), date(2026, 12, 7), "hour")
    starts = list(query.bucket_starts())
    assert len(starts) == 48
    assert starts[0] == datetime(2026, 12, 6, 0) and starts[-1] == datetime(2026, 12, 7, 23)


def test_a_jobs_grouped_rows_become_its_counts_charges_and_reasons() -> None:
    # Given a Kakao job's rows grouped by (KST hour, channel, status, fallback row, reason code)
    nine, ten = datetime(2026, 12, 7, 9), datetime(2026, 12, 7, 10)
    rows = [
        (nine, "kakao", "delivered", False, None, None, 5),
        (nine, "kakao", "fallback", False, "carrier_3019", "카카오톡 사용자가 아님", 2),
        (nine, "kakao", "unknown", False, "no_report", "no result", 1),
        (ten, "sms", "delivered", True, None, None, 1),
        (ten, "lms", "failed", True, "carrier_23", "수신 거부", 1),
        (ten, "kakao", "expired", False, "expired", "not delivered before the retry deadline", 1),
        (ten, "kakao", "cancelled", False, "cancelled", "not sent", 3),
        (nine, None, "failed", False, "too_short", "the number is too short", 2),
    ]
    # When they are turned into the job's contribution
    found = job_contribution(rows, PRICES)

    # Then each message counts in its hour and channel, refusals at intake under "intake"
    assert found.hourly[(nine, "kakao")] == {
        "delivered": 5,
        "failed": 0,
        "expired": 0,
        "unknown": 1,
        "fallbacks": 2,
        "cancelled": 0,
        "rejected": 0,
    }
    assert found.hourly[(ten, "kakao")]["expired"] == 1 and found.hourly[(ten, "kakao")]["cancelled"] == 3
    assert found.hourly[(nine, "intake")]["rejected"] == 2
    assert found.hourly[(ten, "sms")]["delivered"] == 1 and found.hourly[(ten, "lms")]["failed"] == 1
    # And delivered and unknown messages are charged, fallbacks at their fallback price
    assert found.charged == {(nine, "kakao"): Decimal(6 * 8), (ten, "sms"): Decimal(10)}
    # And failures are counted by reason per KST day: failed, expired, refused; not fallbacks
    day = date(2026, 12, 7)
    assert found.reasons == {
        (day, "lms", "carrier_23"): 1,
        (day, "kakao", "expired"): 1,
        (day, "intake", "too_short"): 2,
    }
    # And a job from before balances is charged nothing
    assert job_contribution(rows, None).charged == {}


def test_reason_texts_are_korean_where_known() -> None:
    # balsong's own codes and the providers' have their Korean text from the catalogue, by channel:
    # the same provider code means one thing on KakaoTalk and another on SMS
    assert reason_text("too_short", "the number is too short", "intake") == "전화번호 자릿수 부족"
    assert "카카오톡 사용자 아님" in reason_text("carrier_3019", "not a KakaoTalk user", "kakao")
    assert "사전 등록" in reason_text("carrier_3019", "Sender number not pre-registered", "sms")
    assert reason_text("carrier_3015", "No transfer route available", "lms") == "전송 경로 없음"
    # And a code the catalogue does not know shows the carrier's text, else itself
    assert reason_text("carrier_23", "수신 거부", "lms") == "수신 거부"
    assert reason_text("carrier_9", None, "sms") == "carrier_9"


def test_counts_give_sent_and_the_success_rate() -> None:
    counts = Counts(delivered=95, failed=4, expired=1, unknown=1, fallbacks=0, rejected=7)
    assert counts.sent == 100
    assert counts.success_rate == 0.95
    assert Counts(rejected=3).success_rate is None
    assert Counts().as_json()["charged"] == "0.00"


def stats_of(query: StatsQuery, per_bucket: dict[datetime, Counts]) -> Stats:
    buckets = [(start, per_bucket.get(start, Counts())) for start in query.bucket_starts()]
    totals = Counts()
    for _, counts in buckets:
        totals.add(counts)
    return Stats(query, buckets, totals)


def test_the_csv_has_a_bom_a_korean_header_a_line_per_bucket_and_the_totals() -> None:
    # Given three days, one with messages
    query = StatsQuery(date(2026, 12, 5), date(2026, 12, 7), "day")
    busy = Counts(delivered=1_990, failed=10, charged=Decimal("17910.00"))
    stats = stats_of(query, {datetime(2026, 12, 6): busy})

    # When it is written as CSV
    raw = csv_bytes(stats)

    # Then Excel sees UTF-8, and the lines read back: header, three days, totals
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0] == list(CSV_HEADER)
    assert [line[0] for line in lines[1:]] == ["2026-12-05", "2026-12-06", "2026-12-07", "합계"]
    assert lines[2][1:4] == ["2000", "1990", "10"] and lines[2][9] == "99.5"
    assert lines[2][10] == "17910.00" and lines[1][9] == ""
    assert lines[4][1] == "2000"


def test_points_and_rates_read_as_korean_operators_write_them() -> None:
    assert points(Decimal("1234567.00")) == "1,234,567P"
    assert points(Decimal("12.50")) == "12.50P"
    assert percent(0.9512) == "95.1%" and percent(None) == "-"


def test_the_y_axis_ends_at_a_round_number() -> None:
    values = (0, 1, 3, 7, 10, 11, 45, 210, 999, 1001, 41_666, 41_666 * 24, 41_667 * 24)
    assert [nice_ceiling(v) for v in values] == [
        1,
        1,
        3,
        7,
        10,
        12,
        50,
        250,
        1000,
        1200,
        50_000,
        1_000_000,
        1_200_000,
    ]


def test_bars_stack_delivered_failed_and_the_rest_to_the_height_of_sent() -> None:
    # Given a week where one day sent 100 (80 delivered, 15 failed, 5 unknown) and one sent 50
    query = StatsQuery(date(2026, 12, 1), date(2026, 12, 7), "day")
    stats = stats_of(
        query,
        {
            datetime(2026, 12, 2): Counts(delivered=80, failed=15, unknown=5),
            datetime(2026, 12, 5): Counts(delivered=50),
        },
    )

    # When the chart is laid out
    chart = build_chart(stats)

    # Then there is a bar per day; the busiest fills the plot, the other half of it
    assert len(chart.bars) == 7
    full = chart.baseline - min(tick.y for tick in chart.ticks)
    tall, half = chart.bars[1], chart.bars[4]
    assert [s.kind for s in tall.segments] == ["delivered", "failed", "other"]
    assert sum(s.height for s in tall.segments) == pytest.approx(full)
    assert sum(s.height for s in half.segments) == pytest.approx(full / 2)
    # And segments stack from the baseline up without gaps
    assert tall.segments[0].y + tall.segments[0].height == pytest.approx(chart.baseline)
    assert tall.segments[1].y + tall.segments[1].height == pytest.approx(tall.segments[0].y)
    assert chart.bars[0].segments == ()
    # And what the chart says in words names the period, the totals and the busiest day
    assert "2026-12-01부터 2026-12-07까지 (KST)" in chart.description
    assert "발송 150건" in chart.description and "2026-12-02(100건)" in chart.description
    assert "2026-12-02 (KST): 발송 100건, 성공 80건, 실패 15건" in tall.title
    assert chart.title == "일별 발송 추이"
    # And the x labels never crowd: at most 6
    hourly = build_chart(stats_of(StatsQuery(date(2026, 11, 7), date(2026, 12, 7), "hour"), {}))
    assert len(hourly.bars) == 31 * 24 and len(hourly.x_labels) <= 6
    assert hourly.x_labels[0].label == "11-07 00시"
    one_day = build_chart(stats_of(StatsQuery(date(2026, 12, 7), date(2026, 12, 7), "hour"), {}))
    assert [label.label for label in one_day.x_labels] == ["00시", "04시", "08시", "12시", "16시", "20시"]


def test_the_console_says_in_korean_which_filter_is_wrong() -> None:
    too_long = refusal(parse_query, TODAY, "2026-10-01", "2026-12-07", "hour", None)
    expected = "입력값을 확인하세요 — 종료일(to): 시간별 조회는 최대 31일까지 할 수 있습니다."
    assert field_error(too_long, "hour") == expected
    backwards = refusal(parse_query, TODAY, "2026-12-07", "2026-12-01", None, None)
    assert "종료일이 시작일보다 앞섭니다" in field_error(backwards, None)
    assert "시작일(from): YYYY-MM-DD" in field_error(refusal(parse_query, TODAY, "x", None, None, None), None)
    assert "단위(granularity)" in field_error(refusal(parse_query, TODAY, None, None, "week", None), "week")


def test_contributions_of_one_tenants_jobs_merge_into_one() -> None:
    # Given two jobs' contributions sharing an hour and a reason
    nine = datetime(2026, 12, 7, 9)
    first = job_contribution([(nine, "sms", "delivered", False, None, None, 3)], PRICES)
    second = job_contribution(
        [
            (nine, "sms", "delivered", False, None, None, 2),
            (nine, "sms", "failed", False, "carrier_3015", "No transfer route available", 1),
        ],
        PRICES,
    )
    # When they are merged (one upsert per tenant: rows locked in one order)
    first.merge(second)
    # Then the counts, charges and reasons add up
    assert first.hourly[(nine, "sms")]["delivered"] == 5 and first.hourly[(nine, "sms")]["failed"] == 1
    assert first.charged[(nine, "sms")] == Decimal(45)
    assert first.reasons == {(date(2026, 12, 7), "sms", "carrier_3015"): 1}
