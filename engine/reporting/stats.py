"""Send statistics (통계): a tenant's messages per KST day or hour, per channel, with success rates
and the most common failure reasons, read from the pre-aggregated counters only.

The counters (``send_stats_hourly``, ``send_stats_reasons``) are written once per job when it
finishes; `engine.lifecycle.job_stats` says which hour, channel and column each message counts in.
A job still running is not in the statistics yet: they are exact for finished jobs, and never
scan recipient rows, so a year by day reads in milliseconds.

Definitions, per bucket (and in the totals):

- ``sent`` (발송): messages handed to a carrier and ended: delivered + failed + unknown +
  fallbacks (``failed`` includes ``expired``). Recipients refused at intake (``rejected``, 접수
  거부) and cancelled ones were never sent and are counted apart.
- ``success_rate``: delivered / sent (messages, as carriers count them: a KakaoTalk recipient
  delivered by its SMS fallback is one failed AlimTalk and one delivered SMS); null when nothing
  was sent.
- ``charged``: points the delivered and unknown messages cost (what settlement keeps).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from psycopg import Connection, sql

from engine import reason_codes
from engine.clock import KST
from engine.errors import ValidationError
from engine.inputs import parse_day
from engine.lifecycle.job_stats import CHANNELS, COUNT_COLUMNS, INTAKE
from engine.reporting.exports import BOM

#: Granularities a caller may ask for, and the longest range each may cover, in days.
MAX_DAYS: dict[str, int] = {"day": 400, "hour": 31}
#: Channels a caller may narrow the statistics to (refusals at intake have none).
FILTER_CHANNELS = tuple(channel for channel in CHANNELS if channel != INTAKE)
#: Days shown when no range is given: the last 7, today included.
DEFAULT_DAYS = 7
#: Failure reasons listed.
TOP_REASONS = 10


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """What the caller asked for: KST days ``first``..``last`` (both included)."""

    first: date
    last: date
    granularity: str
    channel: str | None = None

    @property
    def start(self) -> datetime:
        """The first bucket's start, a KST wall-clock time (no zone: the counters' own form)."""
        return datetime.combine(self.first, time())

    @property
    def end(self) -> datetime:
        """The start of the day after ``last`` (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time())

    def bucket_starts(self) -> Iterator[datetime]:
        step = timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)
        moment = self.start
        while moment < self.end:
            yield moment
            moment += step


def parse_query(
    today: date,
    first: str | None,
    last: str | None,
    granularity: str | None,
    channel: str | None,
) -> StatsQuery:
    """The query from its text parameters, or a ValidationError naming the one at fault. Without
    ``from`` and ``to`` the last `DEFAULT_DAYS` days up to ``today`` (KST) are shown; with one of
    them, the other is that many days away."""
    grain = granularity or "day"
    if grain not in MAX_DAYS:
        raise ValidationError("granularity", f"must be one of {', '.join(MAX_DAYS)}")
    if channel is not None and channel not in FILTER_CHANNELS:
        raise ValidationError("channel", f"must be one of {', '.join(FILTER_CHANNELS)}")
    start_day = parse_day("from", first)
    end_day = parse_day("to", last)
    span = timedelta(days=DEFAULT_DAYS - 1)
    if start_day is None and end_day is None:
        end_day = today
    if start_day is None:
        assert end_day is not None
        start_day = end_day - span
    if end_day is None:
        end_day = start_day + span
    if end_day < start_day:
        raise ValidationError("to", "is before from")
    days = (end_day - start_day).days + 1
    if days > MAX_DAYS[grain]:
        raise ValidationError(
            "to", f"at most {MAX_DAYS[grain]} days may be asked for by {grain} ({days} were)"
        )
    return StatsQuery(start_day, end_day, grain, channel)


@dataclass(slots=True)
class Counts:
    """Messages of one bucket (or of the whole range, or one channel)."""

    delivered: int = 0
    #: Failed for good, ``expired`` included.
    failed: int = 0
    #: Of ``failed``: retried until the channel's deadline without success.
    expired: int = 0
    unknown: int = 0
    fallbacks: int = 0
    cancelled: int = 0
    rejected: int = 0
    charged: Decimal = Decimal("0.00")

    @property
    def sent(self) -> int:
        return self.delivered + self.failed + self.unknown + self.fallbacks

    @property
    def success_rate(self) -> float | None:
        return round(self.delivered / self.sent, 4) if self.sent else None

    def add(self, other: Counts) -> None:
        for name in ("delivered", "failed", "expired", "unknown", "fallbacks", "cancelled", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.charged += other.charged

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "expired": self.expired,
            "unknown": self.unknown,
            "fallbacks": self.fallbacks,
            "cancelled": self.cancelled,
            "rejected": self.rejected,
            "success_rate": self.success_rate,
            "charged": f"{self.charged:.2f}",
        }


@dataclass(frozen=True, slots=True)
class Reason:
    #: The channel the failures were on (``intake`` for refusals): a provider's code means
    #: different things on SMS and on KakaoTalk (``carrier_3019``).
    channel: str
    code: str
    #: Korean where known (`engine.reason_codes`' catalogue, or the carrier's text when it is
    #: Korean), else the carrier's text, else the code.
    text: str
    failures: int
    #: Share of all failures of the range (failed, expired and refused at intake).
    share: float


@dataclass(slots=True)
class Stats:
    query: StatsQuery
    #: One per bucket of the range, empty ones included, in time order: (KST start, counts).
    buckets: list[tuple[datetime, Counts]]
    totals: Counts
    #: The range's counts per channel (``intake`` for refusals; only channels with messages).
    by_channel: dict[str, Counts] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.query.first.isoformat(),
            "to": self.query.last.isoformat(),
            "granularity": self.query.granularity,
            "channel": self.query.channel,
            "timezone": "Asia/Seoul",
            "buckets": [{"start": kst_iso(start), **counts.as_json()} for start, counts in self.buckets],
            "totals": self.totals.as_json(),
            "by_channel": {channel: counts.as_json() for channel, counts in self.by_channel.items()},
            "reasons": [
                {
                    "channel": r.channel,
                    "code": r.code,
                    "text": r.text,
                    "failures": r.failures,
                    "share": r.share,
                }
                for r in self.reasons
            ],
        }


def kst_iso(moment: datetime) -> str:
    """A KST wall-clock time as ISO 8601 with its offset (``2026-12-07T00:00:00+09:00``)."""
    return moment.replace(tzinfo=KST).isoformat()


def read_stats(conn: Connection[Any], tenant_id: int, query: StatsQuery) -> Stats:
    """The tenant's statistics for ``query``, from the counters."""
    bucket = sql.SQL("date_trunc('day', kst_hour)" if query.granularity == "day" else "kst_hour")
    scope = sql.SQL("tenant_id = {} AND kst_hour >= {} AND kst_hour < {}").format(
        tenant_id, query.start, query.end
    )
    if query.channel is not None:
        scope = sql.SQL("{} AND channel = {}").format(scope, query.channel)
    sums = sql.SQL(", ").join(
        sql.SQL("sum({})").format(sql.Identifier(c)) for c in (*COUNT_COLUMNS, "charged")
    )
    # One pass over the counters for both: per bucket, and per channel.
    found: dict[datetime, Counts] = {}
    by_channel: dict[str, Counts] = {}
    for row in conn.execute(
        sql.SQL(
            "SELECT {bucket}, channel, GROUPING(channel), {sums} FROM send_stats_hourly WHERE {scope}"
            " GROUP BY GROUPING SETS (({bucket}), (channel))"
        ).format(bucket=bucket, sums=sums, scope=scope)
    ):
        if row[2]:
            found[row[0]] = _counts(row[3:])
        else:
            by_channel[row[1]] = _counts(row[3:])
    totals = Counts()
    for counts in by_channel.values():
        totals.add(counts)
    buckets = [(start, found.get(start) or Counts()) for start in query.bucket_starts()]
    ordered = {channel: by_channel[channel] for channel in CHANNELS if channel in by_channel}
    return Stats(query, buckets, totals, ordered, _reasons(conn, tenant_id, query))


def _counts(values: tuple[Any, ...]) -> Counts:
    delivered, failed, expired, unknown, fallbacks, cancelled, rejected, charged = values
    return Counts(
        delivered=int(delivered),
        failed=int(failed) + int(expired),
        expired=int(expired),
        unknown=int(unknown),
        fallbacks=int(fallbacks),
        cancelled=int(cancelled),
        rejected=int(rejected),
        charged=Decimal(charged).quantize(Decimal("0.01")),
    )


def _reasons(conn: Connection[Any], tenant_id: int, query: StatsQuery) -> list[Reason]:
    channel = sql.SQL("") if query.channel is None else sql.SQL("AND channel = {}").format(query.channel)
    # max(reason_text): one of the texts the code came with; Hangul sorts after ASCII, so a
    # carrier's Korean text wins over an English one.
    rows = conn.execute(
        sql.SQL(
            """
            SELECT channel, reason_code, sum(failures), max(reason_text), sum(sum(failures)) OVER ()
            FROM send_stats_reasons
            WHERE tenant_id = {} AND kst_day >= {} AND kst_day <= {} {}
            GROUP BY 1, 2 ORDER BY 3 DESC, 2, 1 LIMIT {}
            """
        ).format(tenant_id, query.first, query.last, channel, TOP_REASONS)
    ).fetchall()
    return [
        Reason(where, code, reason_text(code, text, where), int(count), round(int(count) / int(total), 4))
        for where, code, count, text, total in rows
    ]


def reason_text(code: str, stored: str | None, channel: str | None = None) -> str:
    """What an operator reads for a reason code on ``channel``: its Korean text from the
    catalogue (`engine.reason_codes`: balsong's own codes, then the provider of the channel),
    the carrier's own text when it is Korean, the carrier's text, or the code itself."""
    own, sms, kakao = _korean_texts()
    providers = (kakao, sms) if channel == "kakao" else (sms, kakao)
    for texts in (own, *providers):
        if code in texts:
            return texts[code]
    return stored or code


@cache
def _korean_texts() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Korean texts by code: balsong's own, NHN Cloud SMS's, KakaoTalk AlimTalk's."""
    return (
        {reason.code: reason.ko for reason in reason_codes.OWN_REASONS},
        {reason.code: reason.ko for reason in reason_codes.sms_reasons()},
        {reason.code: reason.ko for reason in reason_codes.kakao_reasons()},
    )


#: Columns of the statistics CSV, in order.
CSV_HEADER = (
    "구간 시작(KST)",
    "발송",
    "성공",
    "실패",
    "만료(실패 중)",
    "결과 미수신",
    "대체발송",
    "취소",
    "접수 거부",
    "성공률(%)",
    "차감 포인트(P)",
)


def csv_bytes(stats: Stats) -> bytes:
    """The buckets as CSV for spreadsheets: UTF-8 with a byte-order mark (Excel reads Hangul
    then, as in the results exports), one line per bucket, then the range's totals. Every cell
    is a number or a time written here, so none can start a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    fmt = "%Y-%m-%d %H:%M" if stats.query.granularity == "hour" else "%Y-%m-%d"
    for start, counts in stats.buckets:
        writer.writerow(_csv_row(start.strftime(fmt), counts))
    writer.writerow(_csv_row("합계", stats.totals))
    return BOM + out.getvalue().encode()


def _csv_row(label: str, counts: Counts) -> list[str]:
    rate = counts.success_rate
    return [
        label,
        str(counts.sent),
        str(counts.delivered),
        str(counts.failed),
        str(counts.expired),
        str(counts.unknown),
        str(counts.fallbacks),
        str(counts.cancelled),
        str(counts.rejected),
        "" if rate is None else f"{rate * 100:.1f}",
        f"{counts.charged:.2f}",
    ]
