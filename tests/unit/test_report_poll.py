"""`scheduler.report_poll`: where a poll that follows results leaves its cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carriers.base import Outcome, SubmitOutcome
from scheduler.report_poll import newest_result, next_cursor

NOW = datetime(2026, 12, 8, 1, 0, 0, tzinfo=UTC)
SETTLE = timedelta(seconds=2)


def report(seconds_ago: float | None) -> SubmitOutcome:
    at = None if seconds_ago is None else NOW - timedelta(seconds=seconds_ago)
    return SubmitOutcome("1-0", Outcome.DELIVERED, "1000", "성공", "r:0", at)


def test_the_newest_result_time_is_the_latest_of_the_pages_read() -> None:
    first = newest_result([report(5), report(3), report(None)], None)
    assert newest_result([report(4)], first) == NOW - timedelta(seconds=3)
    assert newest_result([], None) is None


@pytest.mark.parametrize(
    ("since_ago", "newest_ago", "cursor_ago"),
    [
        # Results flow: the cursor follows the newest one read, however close to now
        (10, 0.2, 0.2),
        # Only results from before the window's start (re-read overlap, a late filing): nothing
        # new flows, so the cursor trails now by the settle time, as a trailing poll's does
        (10, 11, 2),
        # Nothing read at all: the same
        (10, None, 2),
        # A cursor already closer to now than the settle time is never moved back
        (1, None, 1),
        # A result time ahead of this machine's clock: the cursor stops at now
        (10, -3, 0),
    ],
)
def test_a_following_poll_moves_its_cursor_to_the_newest_result_or_settle_behind_now(
    since_ago: float, newest_ago: float | None, cursor_ago: float
) -> None:
    since = NOW - timedelta(seconds=since_ago)
    newest = None if newest_ago is None else NOW - timedelta(seconds=newest_ago)
    assert next_cursor(since, NOW, newest, SETTLE) == NOW - timedelta(seconds=cursor_ago)
