"""What a job reserves: each recipient at its channel's price, Kakao at the dearer of its tries."""

from __future__ import annotations

from decimal import Decimal

from engine.accounts.billing import Prices, job_cost
from engine.intake.intake import PreparedJob, RecipientRow

PRICES = Prices(
    sms=Decimal("9"),
    lms=Decimal("30"),
    kakao=Decimal("8"),
    fallback_sms=Decimal("9.5"),
    fallback_lms=Decimal("31"),
)


def test_sms_and_lms_recipients_are_reserved_at_their_prices() -> None:
    assert job_cost(PRICES, {"sms": 10, "lms": 2}, None) == Decimal("150.00")


def test_a_kakao_recipient_with_a_fallback_reserves_the_dearer_of_the_two() -> None:
    assert job_cost(PRICES, {"kakao": 4}, None) == Decimal("32.00")
    assert job_cost(PRICES, {"kakao": 4}, "sms") == Decimal("38.00")
    assert job_cost(PRICES, {"kakao": 4}, "auto") == Decimal("124.00")


def test_prices_round_trip_through_the_job_row_without_floats() -> None:
    assert Prices.from_json(PRICES.as_json()) == PRICES
    assert PRICES.as_json()["fallback_sms"] == "9.5"


def test_opted_out_numbers_move_to_the_invalid_recipients_with_their_reason() -> None:
    job = PreparedJob("sms", "bulk", "0212345678", None, "(광고)", ())
    job.sms = [RecipientRow(f"0101234000{i}", None, None, "sms") for i in range(3)]
    moved = job.exclude({"01012340001"}, "opted_out", "opted out")
    assert moved == 1
    assert [row.phone for row in job.sms] == ["01012340000", "01012340002"]
    assert (job.invalid[0].phone, job.invalid[0].channel, job.invalid[0].reason_code) == (
        "01012340001",
        None,
        "opted_out",
    )
