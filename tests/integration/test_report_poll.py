"""`scheduler.report_poll` against the carrier simulator: a poll queues each page, moves its
cursor to the newest result it read, and keeps no cursor when Redis lost its data under it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from carriers.base import Batch, Channel, Recipient, SubmitOutcome
from engine.runtime import Runtime
from scheduler.report_overlap import RereadReports
from scheduler.report_poll import REPORT_OVERLAP, REPORT_SETTLE, poll_reports
from tests.support.services import isolated_settings
from tests.support.simulator import running_simulator

pytestmark = pytest.mark.integration


@pytest.fixture
def rt() -> Iterator[Runtime]:
    """A runtime of its own (database, key prefix) whose SMS carrier is a simulator of its own,
    with 2,500 recipients accepted and final at once (three pages of results)."""
    with isolated_settings() as base, running_simulator(result_delay_ms=0) as sim:
        settings = replace(base, sms_api_url=sim.url, sms_app_key=sim.app_key, sms_secret_key=sim.secret_key)
        runtime = Runtime(settings, pool_size=2)
        try:
            recipients = [Recipient(f"7-{i}", f"0105555{i:04d}") for i in range(2500)]
            for start in range(0, len(recipients), 1000):
                runtime.sms_carrier.submit(
                    Batch(Channel.SMS, "0212345678", "결과", recipients[start : start + 1000])
                )
            runtime.redis.set(runtime.keys.generation, "test-generation")
            yield runtime
        finally:
            runtime.close()


def queued_reports(rt: Runtime) -> int:
    """Reports on the result stream, over all its entries."""
    return sum(
        len(entry[b"d"]) and entry[b"d"].count(b'"delivered"')
        for _, entry in rt.redis.xrange(rt.keys.results)
    )


def poll(rt: Runtime, reread: RereadReports | None = None) -> None:
    poll_reports(rt, (Channel.SMS,), REPORT_SETTLE, REPORT_OVERLAP, reread, follow_results=True)


def test_a_poll_queues_every_report_a_page_at_a_time_and_follows_the_newest(rt: Runtime) -> None:
    # When the poll runs with results just filed
    poll(rt)

    # Then every report is queued, one stream entry per page, and the cursor stands at the newest
    # result read: not settle-behind now
    assert queued_reports(rt) == 2500
    assert rt.redis.xlen(rt.keys.results) == 3
    cursor = float(rt.redis.get(rt.keys.cursor("reports:sms")) or 0)
    assert datetime.now(UTC).timestamp() - cursor < REPORT_SETTLE.total_seconds()


def test_a_poll_that_redis_lost_its_data_under_keeps_no_cursor(rt: Runtime) -> None:
    # Given a carrier whose second page comes after Redis lost its data (the generation the
    # scheduler marks Redis with is gone, and set again: by a new value)
    carrier = rt.sms_carrier
    pages = carrier.report_pages

    def pages_across_a_loss(
        channel: Channel, since: datetime, until: datetime
    ) -> Iterator[list[SubmitOutcome]]:
        for number, page in enumerate(pages(channel, since, until)):
            if number == 1:
                rt.redis.set(rt.keys.generation, "after-the-loss")
            yield page

    carrier.report_pages = pages_across_a_loss  # type: ignore[method-assign]

    # When the poll runs
    poll(rt, RereadReports())

    # Then it leaves no cursor: the next poll reads an hour back, and queues every report again
    assert rt.redis.get(rt.keys.cursor("reports:sms")) is None
    carrier.report_pages = pages  # type: ignore[method-assign]
    rt.redis.delete(rt.keys.results)
    poll(rt)
    assert queued_reports(rt) == 2500
