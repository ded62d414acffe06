"""The statistics page's bar chart, laid out on the server: an SVG of one bar per bucket whose
height is the messages sent, stacked delivered (bottom), then failed, then the rest (unknown
results and KakaoTalk messages handed to SMS/LMS). No script draws it, so it prints, works
without JavaScript and passes the strict Content-Security-Policy (presentation attributes only,
no inline style)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.reporting.stats import Counts, Stats

#: The drawing's own coordinates (it scales to its box).
WIDTH = 640
HEIGHT = 300
LEFT = 64
RIGHT = 8
TOP = 12
BOTTOM = 40
#: Text size in the drawing's coordinates (about 14 px where the chart is 560 px wide).
FONT_SIZE = 16
#: Most labels under the x axis (the rest are left out so they never overlap).
MAX_X_LABELS = 6


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # delivered | failed | other
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    segments: tuple[Segment, ...]
    #: What a pointer over the bar shows (its SVG <title>).
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class XLabel:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    font_size: int
    baseline: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    x_labels: tuple[XLabel, ...]
    #: The SVG's <title> and <desc>: what a screen reader says instead of the picture.
    title: str
    description: str


def nice_ceiling(value: int) -> int:
    """The y axis's top: ``value`` itself up to 10, above it the first of 1, 1.2, 1.5, 2, 2.5, 3,
    4, 5, 6, 8 and 10 times its power of ten at or above it (210 -> 250), so the tallest bar
    fills most of the plot and the axis reads in round numbers; 1 when nothing was sent."""
    if value <= 10:
        return max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
        if round(step * magnitude) >= value:
            return round(step * magnitude)
    return 10 * magnitude


def bucket_label(start: datetime, granularity: str) -> str:
    return start.strftime("%Y-%m-%d %H시" if granularity == "hour" else "%Y-%m-%d")


def short_label(start: datetime, granularity: str, one_day: bool = False) -> str:
    """A label under the x axis: ``12-07`` by day, ``12-07 09시`` by hour (``09시`` within a day)."""
    if granularity == "hour":
        return start.strftime("%H시" if one_day else "%m-%d %H시")
    return start.strftime("%m-%d")


def describe(counts: Counts) -> str:
    rate = counts.success_rate
    text = f"발송 {counts.sent:,}건, 성공 {counts.delivered:,}건, 실패 {counts.failed:,}건"
    other = counts.unknown + counts.fallbacks
    if other:
        text += f", 결과 미수신·대체발송 {other:,}건"
    if rate is not None:
        text += f", 성공률 {rate * 100:.1f}%"
    return text


def build_chart(stats: Stats) -> Chart:
    """The chart of ``stats``'s buckets."""
    grain = stats.query.granularity
    buckets = stats.buckets
    top = nice_ceiling(max((counts.sent for _, counts in buckets), default=0))
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = float(TOP + plot_height)
    slot = plot_width / max(len(buckets), 1)
    gap = slot * 0.2 if slot >= 4 else 0.0
    bars = []
    for index, (start, counts) in enumerate(buckets):
        y = baseline
        segments = []
        for kind, value in (
            ("delivered", counts.delivered),
            ("failed", counts.failed),
            ("other", counts.unknown + counts.fallbacks),
        ):
            if value <= 0:
                continue
            height = plot_height * value / top
            y -= height
            segments.append(Segment(kind, round(y, 2), round(height, 2)))
        bars.append(
            Bar(
                round(LEFT + index * slot + gap / 2, 2),
                round(slot - gap, 2),
                tuple(segments),
                f"{bucket_label(start, grain)} (KST): {describe(counts)}",
            )
        )
    halves = [top // 2] if top % 2 == 0 else []  # odd tops (up to 9) have no whole half
    ticks = tuple(
        Tick(value, round(baseline - plot_height * value / top, 2), f"{value:,}")
        for value in (0, *halves, top)
    )
    every = max(1, -(-len(buckets) // MAX_X_LABELS))
    one_day = stats.query.first == stats.query.last
    x_labels = tuple(
        XLabel(round(LEFT + index * slot + slot / 2, 2), short_label(start, grain, one_day))
        for index, (start, _) in enumerate(buckets)
        if index % every == 0
    )
    unit = "시간별" if grain == "hour" else "일별"
    period = f"{stats.query.first:%Y-%m-%d}부터 {stats.query.last:%Y-%m-%d}까지 (KST)"
    description = f"{period} {unit} 발송 건수 막대그래프. 합계: {describe(stats.totals)}."
    busiest = max(buckets, key=lambda bucket: bucket[1].sent, default=None)
    if busiest is not None and busiest[1].sent:
        description += (
            f" 가장 많이 보낸 구간은 {bucket_label(busiest[0], grain)}({busiest[1].sent:,}건)입니다."
        )
    return Chart(
        WIDTH,
        HEIGHT,
        LEFT,
        WIDTH - RIGHT,
        FONT_SIZE,
        baseline,
        tuple(bars),
        ticks,
        x_labels,
        f"{unit} 발송 추이",
        description,
    )
