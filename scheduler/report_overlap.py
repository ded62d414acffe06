"""Reports a poll reads again: each poll re-reads the tail of the last window (its overlap), so
that a result the carrier filed late is not missed. Those re-read reports that the last poll
already queued are dropped here rather than sent through the result stream and the flusher
again: with SMS's 1 s overlap every 2 s they were a third of all reports read, with KakaoTalk's
60 s nearly all, and each cost the scheduler as much as a new one.

What is remembered is tied to the cursor the poll wrote: if Redis no longer holds that cursor
(Redis lost its data, and the result stream with it; another scheduler replica polled since),
nothing is dropped and the re-read reports are queued again, which is harmless. Reports are
remembered only once the poll that read them has queued them and moved its cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from carriers.base import Channel, SubmitOutcome

ReportKey = tuple[str, str | None, str, datetime | None]


def _key(report: SubmitOutcome) -> ReportKey:
    return report.reference, report.carrier_id, report.code, report.result_at


class RereadReports:
    def __init__(self) -> None:
        #: channel -> (the cursor its last poll wrote, the keys of what it read past the next start).
        self._tails: dict[Channel, tuple[float, frozenset[ReportKey]]] = {}

    def new(
        self, channel: Channel, cursor: float | None, reports: Sequence[SubmitOutcome]
    ) -> Sequence[SubmitOutcome]:
        """``reports`` less those the last poll of ``channel`` queued, if ``cursor`` (read from
        Redis now) is still the one that poll wrote."""
        tail = self._tails.get(channel)
        if tail is None or cursor is None or tail[0] != cursor:
            return reports
        seen = tail[1]
        return [r for r in reports if _key(r) not in seen]

    def remember(
        self, channel: Channel, cursor: float, reports: Iterable[SubmitOutcome], next_start: datetime
    ) -> None:
        """Call once ``reports`` are queued and ``cursor`` written: the next poll re-reads from
        ``next_start``."""
        self._tails[channel] = (
            cursor,
            frozenset(_key(r) for r in reports if r.result_at is None or r.result_at >= next_start),
        )
