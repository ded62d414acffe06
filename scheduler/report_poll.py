"""Polling a carrier's result API for the final results of what we sent (the scheduler's report
polls; KakaoTalk results come by webhook first).

Each poll reads the results filed since its channel's cursor (kept in Redis), queues each page
on the result stream as it comes (`engine.lifecycle.reports.ingest_reports`; the flusher applies
them), and moves the cursor. Windows are in the carrier's time, the wall clock, not balsong's
injected clock (which only deadlines read, and which tests move).

Where the cursor moves, two ways:

- Trailing (KakaoTalk, whose result query has minute precision): a poll reads up to ``settle``
  behind now, so results still being written are not skipped, and the cursor moves there.
- Following results (SMS and LMS): a poll reads up to now, and while results flow the cursor
  moves to the newest result it read, never past it. Results are read within one poll interval
  of being filed, not ``settle`` later; one filed late, behind the newest, is still inside the
  next poll's overlap. A poll that reads nothing new moves the cursor to ``settle`` behind now,
  as a trailing poll would.

Either way each poll re-reads ``overlap`` before its cursor, so that a result filed late is not
missed; `scheduler.report_overlap` drops what the last poll already queued.

Reports queued on the result stream are lost if Redis loses its data before the flusher applies
them; the cursors go with them, and a poll without a cursor reads an hour back. A poll that Redis
lost its data under (its generation changed: the pages queued before went to the old Redis, the
cursor to the new one) removes the cursor it wrote, for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from carriers.base import Channel, SubmitOutcome
from engine.lifecycle.reports import ingest_reports
from engine.runtime import Runtime
from scheduler.read_ahead import read_ahead
from scheduler.report_overlap import RereadReports

log = logging.getLogger(__name__)

#: SMS/LMS polls re-read this much before their cursor (re-reading is harmless: applying a
#: report twice changes nothing).
REPORT_OVERLAP = timedelta(seconds=1)
#: How far behind now a poll that found nothing new leaves its cursor.
REPORT_SETTLE = timedelta(seconds=2)
KAKAO_REPORT_OVERLAP = timedelta(seconds=60)
#: Where a poll starts when it has no cursor (a fresh or wiped Redis).
REPORT_START_BACK = timedelta(hours=1)


def poll_reports(
    rt: Runtime,
    channels: tuple[Channel, ...],
    settle: timedelta,
    overlap: timedelta,
    reread: RereadReports | None = None,
    *,
    follow_results: bool = False,
) -> None:
    """Ask the carrier for final results since each channel's cursor and queue them for the
    flusher; ``follow_results``: move the cursors with the results (see the module's text)."""
    # Redis's generation (`scheduler.duties.watch_redis_generation`): a cursor is kept only if
    # Redis kept the reports queued before it.
    generation = rt.redis.get(rt.keys.generation)
    if generation is None:
        return  # Redis is new or lost its data: the scheduler marks it within a second
    now = datetime.now(UTC)
    until = now if follow_results else now - settle
    for channel in channels:
        cursor_key = rt.keys.cursor(f"reports:{channel.value}")
        raw = rt.redis.get(cursor_key)
        cursor = float(raw) if raw else None
        since = datetime.fromtimestamp(cursor, UTC) if cursor is not None else until - REPORT_START_BACK
        carrier = rt.carrier_for(channel.value)
        read: list[SubmitOutcome] = []
        newest: datetime | None = None
        # Each page is queued as it comes, so the flusher applies the first pages of a burst
        # while the poll still reads the rest (and the next page is fetched meanwhile).
        for page in read_ahead(carrier.report_pages(channel, since - overlap, until)):
            fresh = reread.new(channel, cursor, page) if reread else page
            ingest_reports(rt, carrier.name, "poll", fresh)
            read.extend(page)
            newest = newest_result(fresh, newest)
        moved_to = next_cursor(since, now, newest, settle) if follow_results else until
        rt.redis.set(cursor_key, moved_to.timestamp())
        if rt.redis.get(rt.keys.generation) != generation:
            # Redis lost its data while this poll ran: the reports it queued before may be gone
            # with the result stream (and the cursor written to the new Redis) so the cursor must
            # not say they were read. Without one, the next poll reads an hour back.
            log.warning("Redis lost its data during a report poll; reading its window again")
            rt.redis.delete(cursor_key)
            return
        if reread is not None:
            reread.remember(channel, moved_to.timestamp(), read, moved_to - overlap)


def newest_result(reports: Sequence[SubmitOutcome], newest: datetime | None) -> datetime | None:
    """The latest result time among ``reports`` and ``newest``."""
    for report in reports:
        if report.result_at is not None and (newest is None or report.result_at > newest):
            newest = report.result_at
    return newest


def next_cursor(since: datetime, now: datetime, newest: datetime | None, settle: timedelta) -> datetime:
    """Where a following poll that started at ``since`` leaves its cursor: at the newest result
    it read if that lies past ``since`` (results flow), else ``settle`` behind ``now`` (never
    back before ``since``, never past ``now``)."""
    if newest is not None and newest > since:
        return min(newest, now)
    return max(since, now - settle)
