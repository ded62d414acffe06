"""Reading the simulator's ledger as a time series: how fast recipients arrived at the carrier."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any


def arrival_times(ledger: Iterable[dict[str, Any]], prefix: str | None = None) -> list[float]:
    """Sorted arrival times (epoch seconds) of ledger entries, optionally only references
    starting with ``prefix`` (``"<job id>-"``)."""
    return sorted(e["accepted_at"] for e in ledger if prefix is None or e["reference"].startswith(prefix))


def max_window_count(times: Sequence[float], window: float = 1.0) -> int:
    """Most arrivals in any ``window``-long interval (every interval starting at an arrival)."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
    return best


def steady_rate(times: Sequence[float], trim: float = 1.0) -> float:
    """Mean arrivals per second between the first and last arrival, leaving out ``trim``
    seconds at each end (start-up and the tail)."""
    if len(times) < 2:
        return 0.0
    start, end = times[0] + trim, times[-1] - trim
    inside = bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
    return inside / (end - start) if end > start else 0.0
