"""NHN Cloud's clock, as every NHN API (SMS, KakaoTalk Bizmessage, their webhooks) writes it:
Korea Standard Time (UTC+9 all year, no daylight saving), ``yyyy-MM-dd HH:mm[:ss[.fff]]``.

One place for the zone, for reading and writing those dates, and for the query windows the
adapters keep to; the adapters, the webhook parser and the simulator all use it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

#: The providers' clock.
KST = timezone(timedelta(hours=9), "KST")
#: The longest window the list and result APIs search ("Search is possible within 31 days").
PROVIDER_MAX_WINDOW = timedelta(days=31)
#: The longest window our queries ask for: a day under the providers' limit.
MAX_QUERY_WINDOW = timedelta(days=30)
#: Widening of query windows against clock skew between us and the provider.
CLOCK_SLACK = timedelta(minutes=10)

#: Layouts a date may come in, most precise first (a fraction of a second is read apart).
_LAYOUTS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def kst_second(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in KST."""
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def kst_minute(moment: datetime, *, ceil: bool = False) -> str:
    """``yyyy-MM-dd HH:mm`` in KST; with ``ceil``, the minute holding the instant just before
    ``moment`` (the APIs' end minutes are inclusive)."""
    if ceil:
        moment -= timedelta(microseconds=1)
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M")


def parse_kst(text: object) -> datetime | None:
    """A provider's date (``2018-08-10 10:06:42[.123]``, ``2018-08-10 10:06`` or ``2018-08-10``,
    KST) as an aware UTC datetime; None when absent or unreadable: not a date, or one Python
    cannot hold in UTC (year 0001 in KST lies before the first UTC instant; 9999-12-31 leaves no
    room for a fraction)."""
    if not text or not isinstance(text, str):
        return None
    whole, _, fraction = text.strip().partition(".")
    moment = _parse_whole(whole)
    if moment is None:
        return None
    if fraction:
        if not (fraction.isascii() and fraction.isdigit()):
            return None
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


@lru_cache(maxsize=4096)
def _parse_whole(whole: str) -> datetime | None:
    # A page of reports shares a handful of distinct seconds; strptime is slow, so parse each once.
    for layout in _LAYOUTS:
        try:
            moment = datetime.strptime(whole, layout).replace(tzinfo=KST).astimezone(UTC)
        except ValueError:
            continue
        except OverflowError:
            return None
        return moment if moment.year < 9999 else None
    return None
