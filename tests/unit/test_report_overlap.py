"""A poll drops the re-read reports its last poll queued, and only those (scheduler.report_overlap)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carriers.base import Channel, Outcome, SubmitOutcome
from scheduler.report_overlap import RereadReports

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def report(reference: str, at: datetime | None, code: str = "0") -> SubmitOutcome:
    return SubmitOutcome(reference, Outcome.DELIVERED, code, "ok", f"req:{reference}", at)


def test_reports_the_last_poll_queued_in_the_overlap_are_dropped() -> None:
    reread = RereadReports()
    first = [report("a", T0), report("b", T0 + timedelta(seconds=1.5)), report("c", None)]
    assert reread.new(Channel.SMS, None, first) == first
    reread.remember(Channel.SMS, 100.0, first, next_start=T0 + timedelta(seconds=1))
    again = [
        report("b", T0 + timedelta(seconds=1.5)),
        report("c", None),
        report("d", T0 + timedelta(seconds=2)),
    ]
    assert reread.new(Channel.SMS, 100.0, again) == [again[2]]


def test_a_report_changed_since_is_not_dropped() -> None:
    reread = RereadReports()
    reread.remember(Channel.SMS, 100.0, [report("a", T0, code="3015")], next_start=T0)
    later = [report("a", T0, code="0")]
    assert reread.new(Channel.SMS, 100.0, later) == later


def test_nothing_is_dropped_when_the_cursor_is_not_the_one_written() -> None:
    reread = RereadReports()
    seen = [report("a", T0)]
    reread.remember(Channel.SMS, 100.0, seen, next_start=T0)
    assert reread.new(Channel.SMS, None, seen) == seen  # Redis lost its data
    assert reread.new(Channel.SMS, 99.0, seen) == seen  # another replica polled since
    assert reread.new(Channel.LMS, 100.0, seen) == seen  # another channel
