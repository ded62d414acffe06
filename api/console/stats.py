"""The console's statistics page (통계): the tenant's messages per KST day or hour, as a chart
and a table, the most common failure reasons, and the same table as CSV.

It reads what ``GET /v1/stats`` reads (`engine.reporting.stats`, the pre-aggregated counters)
and needs the same scope (`api.scopes`, ``Action.VIEW_STATS``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console import labels
from api.console.routes import _render
from api.console.session import ConsoleSession, same_origin, session_for
from api.console.stats_chart import bucket_label, build_chart
from api.scopes import Action
from engine.clock import KST
from engine.errors import ValidationError
from engine.lifecycle.job_stats import INTAKE
from engine.reporting import stats
from engine.runtime import get_runtime

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=[Depends(same_origin)])
StatsSession = Annotated[ConsoleSession, Depends(session_for(Action.VIEW_STATS))]

#: Channel names on the page; refusals at intake have a line of their own.
CHANNEL_LABELS = {**{c: labels.CHANNEL[c] for c in stats.FILTER_CHANNELS}, INTAKE: "접수 거부"}
GRANULARITIES = {"day": "일별", "hour": "시간별"}

_FROM = Query(alias="from", description="first KST day, YYYY-MM-DD")
_TO = Query(alias="to", description="last KST day, included, YYYY-MM-DD")


def points(value: Decimal) -> str:
    """Points as Korean operators write them: ``12,345P``, ``12,345.50P``."""
    text = f"{value:,.2f}"
    return f"{text.removesuffix('.00')}P"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


#: What the page calls each parameter.
FIELD_LABELS = {"from": "시작일", "to": "종료일", "granularity": "단위", "channel": "채널"}


def field_error(exc: ValidationError, granularity: str | None) -> str:
    """The refusal of a filter in Korean, naming the field as the form and the API do."""
    label = f"{FIELD_LABELS.get(exc.field, exc.field)}({exc.field})"
    if "before from" in exc.reason:
        reason = "종료일이 시작일보다 앞섭니다."
    elif exc.reason.startswith("at most"):
        grain = granularity if granularity in stats.MAX_DAYS else "day"
        reason = f"{GRANULARITIES[grain]} 조회는 최대 {stats.MAX_DAYS[grain]}일까지 할 수 있습니다."
    elif exc.field in ("from", "to"):
        reason = "YYYY-MM-DD 형식의 날짜(2000~2100년, KST)를 입력하세요."
    else:
        reason = "목록에 있는 값을 고르세요."
    return f"입력값을 확인하세요 — {label}: {reason}"


def _query(
    first: str | None, last: str | None, granularity: str | None, channel: str | None
) -> stats.StatsQuery:
    today = get_runtime().clock.now().astimezone(KST).date()
    return stats.parse_query(today, first or None, last or None, granularity or None, channel or None)


@router.get("/stats")
def stats_page(
    request: Request,
    session: StatsSession,
    first: Annotated[str | None, _FROM] = None,
    last: Annotated[str | None, _TO] = None,
    granularity: str | None = None,
    channel: str | None = None,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "session": session,
        "filters": {
            "from": first or "",
            "to": last or "",
            "granularity": granularity or "day",
            "channel": channel or "",
        },
        "granularities": list(GRANULARITIES.items()),
        "channels": [(c, CHANNEL_LABELS[c]) for c in stats.FILTER_CHANNELS],
        "channel_labels": CHANNEL_LABELS,
        "max_days": stats.MAX_DAYS,
        "result": None,
    }
    try:
        query = _query(first, last, granularity, channel)
    except ValidationError as exc:
        context["error"] = field_error(exc, granularity)
        return _render(request, "stats.html", status_code=422, **context)
    rt = get_runtime()
    with rt.read_pool.connection() as conn:
        result = stats.read_stats(conn, session.principal.tenant_id, query)
    context["filters"] = {
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        "granularity": query.granularity,
        "channel": query.channel or "",
    }
    context.update(
        result=result,
        chart=build_chart(result),
        rows=[(bucket_label(start, query.granularity), counts) for start, counts in result.buckets],
        unit=GRANULARITIES[query.granularity],
        export_url="/console/stats/export?" + urlencode({k: v for k, v in context["filters"].items() if v}),
        points=points,
        percent=percent,
    )
    return _render(request, "stats.html", **context)


@router.get("/stats/export")
def stats_export(
    session: StatsSession,
    first: Annotated[str | None, _FROM] = None,
    last: Annotated[str | None, _TO] = None,
    granularity: str | None = None,
    channel: str | None = None,
) -> Response:
    """The page's table as CSV (UTF-8 with a byte-order mark, like the results exports)."""
    query = _query(first, last, granularity, channel)
    rt = get_runtime()
    with rt.read_pool.connection() as conn:
        result = stats.read_stats(conn, session.principal.tenant_id, query)
    name = f"balsong-stats-{query.first:%Y%m%d}-{query.last:%Y%m%d}-{query.granularity}"
    if query.channel:
        name += f"-{query.channel}"
    return Response(
        stats.csv_bytes(result),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"',
            "Cache-Control": "no-store",
        },
    )
