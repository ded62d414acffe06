"""The carriers read NHN's dates and KakaoTalk's "delivered" codes one way, wherever they come
from (the result APIs, the webhooks, the simulator)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carriers.base import Outcome
from carriers.nhn_alimtalk import _row_outcome
from carriers.nhn_alimtalk_codes import DELIVERED_CODES
from carriers.nhn_time import KST, kst_minute, kst_second, parse_kst
from carriers.webhooks import message_results, parse_envelope


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07 21:05:09", datetime(2026, 12, 7, 12, 5, 9, tzinfo=UTC)),
        ("2026-12-07 21:05:09.5", datetime(2026, 12, 7, 12, 5, 9, 500_000, tzinfo=UTC)),
        ("2026-12-07 21:05", datetime(2026, 12, 7, 12, 5, tzinfo=UTC)),
        ("2026-12-07", datetime(2026, 12, 6, 15, 0, tzinfo=UTC)),
        ("0001-01-01 00:00:00", None),
        ("9999-12-31 23:59:59.9", None),
        ("2026-02-30 10:00:00", None),
        ("2026-12-07 21:05:09.x", None),
        ("", None),
        (None, None),
        (20261207, None),
    ],
)
def test_nhn_dates_are_read_as_kst_or_not_at_all(text: object, expected: datetime | None) -> None:
    assert parse_kst(text) == expected


def test_nhn_dates_are_written_in_kst() -> None:
    moment = datetime(2026, 12, 7, 12, 5, 9, tzinfo=UTC)
    assert kst_second(moment) == "2026-12-07 21:05:09"
    assert kst_minute(moment) == "2026-12-07 21:05"
    assert kst_minute(datetime(2026, 12, 7, 12, 6, tzinfo=UTC), ceil=True) == "2026-12-07 21:05"
    assert moment.astimezone(KST).utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize("code", sorted(DELIVERED_CODES))
def test_every_delivered_code_is_delivered_by_webhook_and_by_the_result_api(code: str) -> None:
    hook = {"recipientGroupingKey": "7-1", "resultCode": code, "receiveDate": "2026-12-07 21:05:09"}
    results, bad = message_results(parse_envelope({"hooksId": "h", "event": "x", "hooks": [hook]}))
    assert bad == [] and [r.outcome for r in results] == [Outcome.DELIVERED]
    row = {"requestId": "r", "recipientSeq": 1, "resultCode": code, "receiveDate": "2026-12-07 21:05:09"}
    assert _row_outcome(row, "7-1").outcome is Outcome.DELIVERED
